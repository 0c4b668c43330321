//! Backups and restore drills against the real database, KMS and S3.

use shared::backup::{BackupError, BackupService};

use crate::support::TestContext;

async fn service(ctx: &TestContext) -> BackupService {
    let backup_key = local::ensure_key(&ctx.clients.kms, &format!("alias/b-{}", uuid::Uuid::new_v4().simple())).await.unwrap();
    let config = backup::Config {
        common: ctx.common(),
        owner: shared::config::OwnerConfig {
            user: ctx.stack.owner_user.clone(),
            password: shared::config::PasswordSource::Plain(ctx.stack.owner_password.clone()),
        },
        operator: Default::default(),
        backup_key_id: backup_key,
        max_archive_bytes: 64 * 1024 * 1024,
    };
    backup::service_with(&config, ctx.pool.clone(), ctx.stack.owner_password.clone(), ctx.stack.app_password.clone(), &ctx.clients)
}

/// Some of everything, including personal data that must never appear in plaintext.
async fn gallery_data(ctx: &TestContext) {
    let (artist, _) = ctx.artist_with_token("Ada Copper").await;
    let client = ctx.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE artists SET email = 'ada.secret@example.org', bio = 'Tab\there, newline\nthere, backslash \\ too' WHERE id = $1",
            &[&artist],
        )
        .await
        .unwrap();
    for i in 0..5 {
        let new = shared::domain::NewArtwork {
            title: format!("Plate {i}"),
            slug: None,
            description: Some("Ætsning — «copper»".into()),
            medium: None,
            year: Some(2020 + i),
            width_mm: None,
            height_mm: None,
        };
        let a = shared::db::insert_artwork(&client, artist, &new, &format!("plate-{i}")).await.unwrap();
        shared::db::insert_edition(
            &client,
            a.id,
            &shared::domain::NewEdition { edition_size: 10, paper: "Rag".into(), price_minor: 1000, currency: "EUR".into() },
        )
        .await
        .unwrap();
    }
    let entry = shared::db::AuditEntry {
        actor: "token:t",
        action: "artwork.create",
        target: "artwork:x",
        request_id: None,
        detail: serde_json::json!({ "n": 1 }),
    };
    shared::db::append_audit(&client, &entry).await.unwrap();
}

#[tokio::test]
async fn a_backup_is_encrypted_and_the_drill_restores_it() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let service = service(&ctx).await;

    let summary = service.backup().await.expect("backup");
    assert_eq!(summary.row_counts["artworks"], 5);
    assert_eq!(summary.row_counts["audit_log"], 1);

    let object = ctx.clients.s3.get_object().bucket(&ctx.storage.backups_bucket).key(&summary.object_key).send().await.unwrap();
    assert_eq!(object.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"), "stored with SSE-KMS on top of the envelope");
    let bytes = object.body.collect().await.unwrap().to_vec();
    assert!(bytes.starts_with(shared::backup::envelope::MAGIC));
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(!haystack.contains("ada.secret@example.org") && !haystack.contains("Plate 3"), "no plaintext in the file");

    let counts = service.restore_drill().await.expect("drill");
    assert_eq!(counts["artworks"], 5);
    assert_eq!(counts["print_editions"], 5);
    let client = ctx.pool.get().await.unwrap();
    let row = client.query_one("SELECT status, row_counts FROM restore_drills ORDER BY started_at DESC LIMIT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "succeeded");
    let leftovers: i64 =
        client.query_one("SELECT count(*) FROM pg_database WHERE datname LIKE 'restore_drill_%'", &[]).await.unwrap().get(0);
    assert!(leftovers == 0 || leftovers < 3, "scratch databases are dropped (others may be mid-drill)");
}

#[tokio::test]
async fn a_restore_reproduces_the_data_exactly() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let service = service(&ctx).await;
    let summary = service.backup().await.unwrap();
    let record = { shared::db::latest_succeeded_backup(&ctx.pool.get().await.unwrap()).await.unwrap().unwrap() };
    assert_eq!(record.id, summary.id);
    let (_, archive) = service.open(&record).await.unwrap();

    // Restore into a brand-new database, as after losing the original.
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let owner = shared::config::DbConfig { user: ctx.stack.owner_user.clone(), ..ctx.db.clone() };
    let admin = shared::db::connect(&shared::config::DbConfig { name: "postgres".into(), ..owner.clone() }, &ctx.stack.owner_password)
        .await
        .unwrap();
    admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
    let mut target = shared::db::connect(&shared::config::DbConfig { name, ..owner }, &ctx.stack.owner_password).await.unwrap();
    shared::db::migrate(&mut target).await.unwrap();
    service.restore_into(&mut target, &archive).await.unwrap();

    let source = ctx.pool.get().await.unwrap();
    for (table, order) in shared::db::BACKUP_TABLES {
        let q = format!("SELECT COALESCE(string_agg(t::text, '|' ORDER BY {order}), '') FROM {table} t");
        let a: String = source.query_one(&q, &[]).await.unwrap().get(0);
        let b: String = target.query_one(&q, &[]).await.unwrap().get(0);
        assert_eq!(a, b, "{table} differs after restore");
    }
    // The audit log's identity continues after the restored rows.
    target
        .execute("INSERT INTO audit_log (actor, action, target) VALUES ('a', 'b', 'c')", &[])
        .await
        .expect("identity sequence was advanced");
}

#[tokio::test]
async fn a_tampered_backup_is_refused_and_the_drill_reports_it() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let service = service(&ctx).await;
    let summary = service.backup().await.unwrap();

    let object = ctx.clients.s3.get_object().bucket(&ctx.storage.backups_bucket).key(&summary.object_key).send().await.unwrap();
    let mut bytes = object.body.collect().await.unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    ctx.clients.s3.put_object().bucket(&ctx.storage.backups_bucket).key(&summary.object_key).body(bytes.into()).send().await.unwrap();

    let err = service.restore_drill().await.expect_err("tampering must be detected");
    assert!(matches!(err, BackupError::Tampered), "{err}");
    assert!(!err.is_retryable());
    let client = ctx.pool.get().await.unwrap();
    let row = client.query_one("SELECT status, error FROM restore_drills ORDER BY started_at DESC LIMIT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "failed");
    assert!(row.get::<_, String>(1).contains("integrity"));

    // Through the handler the drill's verdict is recorded, not retried.
    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent<backup::Detail> =
        serde_json::from_str(include_str!("../../events/scheduled-restore-drill.json")).unwrap();
    let out = backup::scheduled(event.detail.task, &service).await.expect("a failed drill is a result, not a retry");
    assert!(out["drill_failed"].as_str().unwrap().contains("integrity"), "{out}");
}

#[tokio::test]
async fn a_drill_without_any_backup_fails_loudly() {
    let ctx = TestContext::new().await;
    let service = service(&ctx).await;
    assert!(matches!(service.restore_drill().await, Err(BackupError::NoBackup)));
}

/// On RDS the migrations create the application role without a login; the
/// migrate task gives it the password from its secret, so a deployment needs
/// no SQL typed by hand. A fresh NOLOGIN role stands in for it here.
#[tokio::test]
async fn migrating_gives_the_application_role_its_login() {
    let ctx = TestContext::new().await;
    let mut service = service(&ctx).await;
    let role = format!("gallery_app_{}", uuid::Uuid::new_v4().simple());
    let owner = shared::db::connect(&service.admin.db, &service.admin.password).await.unwrap();
    owner.batch_execute(&format!("CREATE ROLE \"{role}\" NOLOGIN")).await.unwrap();
    let password = secrecy::SecretString::from(uuid::Uuid::new_v4().to_string());
    let as_role = shared::config::DbConfig { user: role.clone(), ..ctx.db.clone() };
    assert!(shared::db::connect(&as_role, &password).await.is_err(), "a NOLOGIN role cannot connect");

    service.admin.app_role = role.clone();
    service.admin.app_password = password.clone();
    service.migrate().await.unwrap();
    let client = shared::db::connect(&as_role, &password).await.expect("the role logs in with its secret's password");
    client.simple_query("SELECT 1").await.unwrap();
    drop(client);
    // A throwaway cluster: a role left behind by a still-closing session is harmless.
    let _ = owner.batch_execute(&format!("DROP ROLE \"{role}\"")).await;
}
