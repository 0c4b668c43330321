//! The database promises: TLS with verification, no plaintext, migrations,
//! least privilege on the audit log, typed and bounded failures.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use shared::config::DbConfig;
use shared::db::{self, AuditEntry};

use crate::support::{stack_env, TestContext};

#[tokio::test]
async fn tls_connection_works_and_is_encrypted() {
    let ctx = TestContext::new().await;
    let client = ctx.pool.get().await.expect("pooled TLS connection");
    let row = client
        .query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>("ssl"), "the session must be encrypted");
    let version: String = row.get("version");
    assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");
}

#[tokio::test]
async fn server_name_is_verified() {
    let stack = stack_env();
    // The server certificate names `localhost` only: the same server reached as
    // 127.0.0.1 must be refused by certificate verification.
    let by_ip = DbConfig { host: "127.0.0.1".into(), name: "postgres".into(), ..stack.db.clone() };
    let err =
        db::connect(&by_ip, &stack.app_password).await.expect_err("host name mismatch must fail");
    let text = format!("{err:?}");
    assert!(text.contains("NotValidForName") || text.contains("certificate"), "{text}");
    assert!(err.is_retryable(), "a TLS failure is an I/O-level error");

    let by_name = DbConfig { name: "postgres".into(), ..stack.db.clone() };
    db::connect(&by_name, &stack.app_password).await.expect("localhost matches the certificate");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let stack = stack_env();
    let dir = std::env::temp_dir().join(format!("other-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // A well-formed CA that did not sign the server's certificate.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let path = dir.join("ca.pem");
    std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
    let cfg = DbConfig { ca_bundle: path, name: "postgres".into(), ..stack.db.clone() };
    let err = db::connect(&cfg, &stack.app_password).await.expect_err("unknown issuer must fail");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn plaintext_connections_are_refused() {
    let stack = stack_env();
    let mut pg = tokio_postgres::Config::new();
    pg.host(&stack.db.host)
        .port(stack.db.port)
        .dbname("postgres")
        .user(&stack.db.user)
        .password(secrecy::ExposeSecret::expose_secret(&stack.app_password));
    pg.ssl_mode(tokio_postgres::config::SslMode::Disable).connect_timeout(Duration::from_secs(5));
    let Err(err) = pg.connect(tokio_postgres::NoTls).await else {
        panic!("plaintext must be refused")
    };
    let text = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_else(|| err.to_string());
    assert!(text.contains("no encryption"), "{text}");
}

#[tokio::test]
async fn migrations_apply_once_and_rerun_as_no_op() {
    let ctx = TestContext::new().await; // applied V1 on an empty database
    let applied_again =
        local::migrate(&ctx.db, &ctx.stack.owner_user, &ctx.stack.owner_password).await.unwrap();
    assert!(
        applied_again.is_empty(),
        "re-running migrations must change nothing: {applied_again:?}"
    );
    let client = ctx.owner_pool().get().await.unwrap();
    let tables: Vec<String> =
        crate::support::strings(&client, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
            .await;
    for t in [
        "api_tokens",
        "artists",
        "artworks",
        "audit_log",
        "backups",
        "images",
        "print_editions",
        "restore_drills",
        "print_sales",
        "artwork_slugs",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
}

#[tokio::test]
async fn the_api_can_append_to_but_not_rewrite_the_audit_log() {
    let ctx = TestContext::new().await;
    let client = ctx.pool.get().await.unwrap();
    let entry = AuditEntry {
        actor: "token:test",
        action: "artwork.create",
        target: "artwork:x",
        request_id: Some("req-1"),
        detail: serde_json::json!({}),
    };
    db::append_audit(&client, &entry).await.expect("INSERT is granted");
    for sql in [
        "UPDATE audit_log SET actor = 'someone-else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = client.batch_execute(sql).await.expect_err(sql);
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err}");
    }
    let n: i64 = client.query_one("SELECT count(*) FROM audit_log", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn an_unreachable_database_is_a_bounded_retryable_error() {
    let stack = stack_env();
    // A port nothing listens on, and a host that drops packets are both covered by the
    // connect timeout; the refused port answers at once.
    let port = crate::support::closed_port();
    let cfg = DbConfig {
        port,
        connect_timeout: Duration::from_secs(2),
        name: "postgres".into(),
        ..stack.db.clone()
    };
    let pool = db::pool(&cfg, &SecretString::from("x")).unwrap();
    let started = Instant::now();
    let err = db::ping(&pool).await.expect_err("nothing listens there");
    assert!(err.is_retryable(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "must not hang");
}

#[tokio::test]
async fn editions_can_never_be_oversold() {
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Oversold Artist").await;
    let client = ctx.pool.get().await.unwrap();
    let new = shared::domain::NewArtwork::titled("Limited");
    let artwork = db::insert_artwork(&client, artist, &new.validate().unwrap()).await.unwrap();
    let edition = db::insert_edition(
        &client,
        artwork.id,
        &shared::domain::NewEdition {
            edition_size: 2,
            paper: "Rag".into(),
            price_minor: 100,
            currency: "EUR".into(),
        }
        .validate()
        .unwrap(),
    )
    .await
    .unwrap();
    let (after, sales) = db::record_sale(&client, edition.id, 2, None).await.unwrap().unwrap();
    assert_eq!(after.sold_count, 2);
    assert_eq!(sales.iter().map(|s| s.print_number).collect::<Vec<_>>(), [1, 2]);
    assert!(
        db::record_sale(&client, edition.id, 1, None).await.unwrap().is_none(),
        "a third sale must be refused"
    );
    // The schema's CHECK holds even for SQL that skips the guard.
    let err = client
        .execute("UPDATE print_editions SET sold_count = sold_count + 1", &[])
        .await
        .expect_err("oversold");
    assert_eq!(err.code().map(|c| c.code()), Some("23514"));
}

#[tokio::test]
async fn the_api_soft_deletes_and_only_retention_purges() {
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Careful").await;
    let client = ctx.pool.get().await.unwrap();
    let live = db::insert_artwork(
        &client,
        artist,
        &shared::domain::NewArtwork::titled("Live").validate().unwrap(),
    )
    .await
    .unwrap();
    let gone = db::insert_artwork(
        &client,
        artist,
        &shared::domain::NewArtwork::titled("Gone").validate().unwrap(),
    )
    .await
    .unwrap();
    client
        .execute(
            "UPDATE artworks SET deleted_at = now() - interval '40 days' WHERE id = $1",
            &[&gone.id],
        )
        .await
        .unwrap();
    for sql in [
        "DELETE FROM artworks",
        "DELETE FROM artists",
        "DELETE FROM print_editions",
        "DELETE FROM images",
        "DELETE FROM api_tokens",
        "UPDATE api_tokens SET scope = 'admin', artist_id = NULL",
        "UPDATE api_tokens SET token_sha256 = repeat('0', 64)",
    ] {
        let err = client.execute(sql, &[]).await.expect_err(sql);
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err}");
    }
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    let err = db::purge_artwork(&client, gone.id, cutoff).await.expect_err("the API never purges");
    assert!(format!("{err:?}").contains("42501"), "{err:?}");
    let client = ctx.pool_as(crate::support::RETENTION).get().await.unwrap();
    assert!(
        !db::purge_artwork(&client, live.id, cutoff).await.unwrap(),
        "a live artwork is never purged"
    );
    assert!(db::purge_artwork(&client, gone.id, cutoff).await.unwrap());
    assert!(db::artwork_with_deleted(&client, gone.id, false).await.unwrap().is_none());
    assert!(db::artwork_with_deleted(&client, live.id, false).await.unwrap().is_some());
}

/// A password rotated while a function is warm (RDS rotates the master
/// secret on its own schedule; the runbook rotates the others): the next new
/// connection is refused with the old password, so the pool reads the secret
/// once more and connects with the new one, and so does the owner's.
#[tokio::test]
async fn a_rotated_password_is_read_again_from_its_secret() {
    use secrecy::ExposeSecret;
    let ctx = TestContext::new().await;
    let role = format!("rotating_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let owner = db::connect(&ctx.owner_db(), &ctx.stack.owner_password).await.unwrap();
    owner
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'first-password'; GRANT CONNECT ON DATABASE \"{}\" TO {role}",
            ctx.db.name
        ))
        .await
        .unwrap();
    let secrets = &ctx.clients.secrets;
    let secret = secrets
        .create_secret()
        .name(format!("t-{role}"))
        .secret_string(r#"{"password":"first-password"}"#)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let db = DbConfig {
        user: role.clone(),
        password: shared::config::PasswordSource::SecretArn(secret.clone()),
        pool_size: 1,
        ..ctx.db.clone()
    };
    let common = shared::config::Common { db: db.clone(), ..ctx.common() };
    let (clients, pool) = shared::connect::connect(&common).await.expect("cold start");
    let first = pool.get().await.expect("connects with the first password");
    first.query_one("SELECT 1", &[]).await.unwrap();
    // The warm connection goes away (an idle timeout, a recycle) ...
    drop(deadpool_postgres::Object::take(first));

    // ... and the password is rotated meanwhile.
    owner.batch_execute(&format!("ALTER ROLE {role} PASSWORD 'second-password'")).await.unwrap();
    secrets
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(r#"{"password":"second-password"}"#)
        .send()
        .await
        .unwrap();
    let again = pool.get().await.expect("the pool reads the rotated password and connects");
    again.query_one("SELECT 1", &[]).await.unwrap();

    // The owner's lazily read password: cached, refused after a rotation, read again.
    let lazy = shared::aws::LazyPassword::new(
        clients.clone(),
        shared::config::PasswordSource::SecretArn(secret.clone()),
    );
    assert_eq!(lazy.get().await.unwrap().expose_secret(), "second-password");
    owner.batch_execute(&format!("ALTER ROLE {role} PASSWORD 'third-password'")).await.unwrap();
    secrets
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(r#"{"password":"third-password"}"#)
        .send()
        .await
        .unwrap();
    let as_owner =
        backup::Login { db: DbConfig { name: "postgres".into(), ..db.clone() }, password: lazy };
    let proven = as_owner.role().await.expect("the owner's rotated password is read again");
    assert_eq!(proven.password.expose_secret(), "third-password");
}

/// One role per function, each refused what its code never runs: a
/// compromised function cannot reach beyond its job. The audit log is
/// append-only for all of them; only retention may call the owner's purge
/// and erasure functions, and even those keep a year of audit entries.
#[tokio::test]
async fn every_function_role_is_refused_what_its_code_never_runs() {
    use crate::support::{API, BACKUP_RECORDS, PROCESSOR, RETENTION};
    let ctx = TestContext::new().await;
    let everyone_refused = [
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "CREATE TABLE intruder (id int)",
        "DROP TABLE artworks",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DELETE FROM artists",
        "DELETE FROM artworks",
        "DELETE FROM print_sales",
        "UPDATE print_sales SET price_minor = 0",
        "UPDATE api_tokens SET scope = 'admin', artist_id = NULL",
    ];
    let cases: [(&str, Vec<&str>); 4] = [
        (
            API,
            vec![
                "SELECT purge_audit_before(now())",
                "SELECT erase_artist(gen_random_uuid())",
                "SELECT purge_deleted_artwork(gen_random_uuid(), now())",
                "SELECT purge_image(gen_random_uuid())",
                "SELECT purge_dead_tokens(now())",
                "SELECT purge_backup_records_before(now())",
                "SELECT count(*) FROM backups",
                "INSERT INTO backups (id, object_key, status) VALUES (gen_random_uuid(), 'x', 'running')",
                "DELETE FROM idempotency_keys",
                "DELETE FROM images",
                "DELETE FROM api_tokens",
            ],
        ),
        (
            PROCESSOR,
            vec![
                "SELECT email FROM artists",
                "SELECT bio FROM artists",
                "SELECT count(*) FROM api_tokens",
                "SELECT count(*) FROM audit_log",
                "INSERT INTO artworks (id, artist_id, title, slug) VALUES (gen_random_uuid(), gen_random_uuid(), 'x', 'x')",
                "UPDATE artworks SET status = 'published'",
                "UPDATE images SET alt_text = 'x'",
                "UPDATE images SET artwork_id = gen_random_uuid()",
                "UPDATE images SET deleted_at = now()",
                "SELECT purge_image(gen_random_uuid())",
                "SELECT erase_artist(gen_random_uuid())",
                "SELECT count(*) FROM erasures",
                "SELECT count(*) FROM operator_proofs",
            ],
        ),
        (
            RETENTION,
            vec![
                "SELECT email FROM artists",
                "UPDATE artists SET email = 'x@example.org'",
                "UPDATE artworks SET status = 'published'",
                "INSERT INTO api_tokens (id, token_sha256, scope, expires_at) VALUES (gen_random_uuid(), repeat('0', 64), 'admin', now())",
                "INSERT INTO backups (id, object_key, status) VALUES (gen_random_uuid(), 'x', 'running')",
                "UPDATE backups SET status = 'succeeded'",
                "DELETE FROM images",
            ],
        ),
        (
            BACKUP_RECORDS,
            vec![
                "SELECT email FROM artists",
                "SELECT count(*) FROM artworks",
                "SELECT count(*) FROM audit_log",
                "SELECT count(*) FROM api_tokens",
                "SELECT purge_audit_before(now())",
                "SELECT purge_backup_records_before(now())",
                "DELETE FROM backups",
                "INSERT INTO erasures (id, artist_id, requested_by) VALUES (gen_random_uuid(), gen_random_uuid(), 'x')",
            ],
        ),
    ];
    for (role, refused) in cases {
        let client = ctx.pool_as(role).get().await.unwrap();
        for sql in everyone_refused.iter().chain(refused.iter()) {
            let err = client.batch_execute(sql).await.expect_err(&format!("{role}: {sql}"));
            // 42501: insufficient privilege (42809 is not a table: the
            // owner's objects are out of reach in the same way).
            let code = err.code().map(|c| c.code().to_owned()).unwrap_or_default();
            assert!(code == "42501", "{role}: {sql}: {err}");
        }
    }
    // Even retention keeps a year of audit entries, whatever cutoff it passes.
    let owner = db::connect(&ctx.owner_db(), &ctx.stack.owner_password).await.unwrap();
    owner
        .batch_execute(
            "INSERT INTO audit_log (actor, action, target, at) VALUES \
             ('a', 'recent', 't', now() - interval '300 days'), ('a', 'old', 't', now() - interval '400 days')",
        )
        .await
        .unwrap();
    let retention = ctx.pool_as(RETENTION).get().await.unwrap();
    let purged = db::purge_audit(&retention, chrono::Utc::now()).await.unwrap();
    assert_eq!(purged, 1, "only the entry older than a year goes");
    let left =
        crate::support::strings(&ctx.pool.get().await.unwrap(), "SELECT action FROM audit_log")
            .await;
    assert_eq!(left, ["recent"]);
}

/// Slow and failed statements are logged without the values they carried:
/// a unique violation's DETAIL would quote the duplicate email, a slow
/// statement's parameters the person it looked up. The local stack keeps
/// PostgreSQL's log (what RDS exports to CloudWatch) beside its CA bundle.
#[tokio::test]
async fn postgres_logs_no_value_a_statement_carried() {
    let ctx = TestContext::new().await;
    let client = ctx.owner_pool().get().await.unwrap();
    let email = format!("{}@log-check.invalid", uuid::Uuid::new_v4().simple());
    let insert = "INSERT INTO artists (id, name, email) VALUES ($1, 'Log Check', $2)";
    client.execute(insert, &[&uuid::Uuid::new_v4(), &email]).await.unwrap();
    let duplicate = client.execute(insert, &[&uuid::Uuid::new_v4(), &email]).await;
    assert!(duplicate.is_err(), "the duplicate email must be refused");
    let marker = format!("slow-{}", uuid::Uuid::new_v4().simple());
    client.query_one("SELECT pg_sleep(1.1), $1::text", &[&marker]).await.unwrap();

    let log = ctx.db.ca_bundle.with_file_name("postgres.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if (text.contains("artists_email_key") && text.contains("pg_sleep"))
            || Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains("artists_email_key"), "the violation is logged: {}", log.display());
    assert!(text.contains("pg_sleep"), "the slow statement is logged: {}", log.display());
    assert!(!text.contains(&email), "an email reached PostgreSQL's log");
    assert!(!text.contains(&marker), "a bound parameter reached PostgreSQL's log");
}
