//! The operator tool end to end: `gallery-ops` (the real binary) signs an
//! identity proof with an assumed role's credentials and invokes the real
//! function binary through the Lambda `Invoke` API; the function proves the
//! caller with STS (the emulator) and runs the task. The emulator checks no
//! signatures, so what STS alone enforces (a proof signed for another task is
//! refused) is covered by the proof's unit tests; the role check, the refusals
//! and the audit trail are checked here.

use std::process::Output;

use secrecy::ExposeSecret;
use serde_json::Value;

use crate::lambda_runtime::{Running, OPERATOR_ROLE};
use crate::support::{strings, TestContext};

/// Temporary credentials of `role`'s session `session`, from the emulator's STS.
async fn assume(ctx: &TestContext, role: &str, session: &str) -> aws_sdk_sts::types::Credentials {
    let sts = aws_sdk_sts::Client::new(&ctx.clients.sdk);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::123456789012:role/{role}"))
        .role_session_name(session)
        .send()
        .await
        .unwrap();
    out.credentials().unwrap().clone()
}

/// Runs `gallery-ops ARGS` as `credentials` against `running`'s Invoke API.
async fn ops(
    ctx: &TestContext,
    running: &Running,
    credentials: &aws_sdk_sts::types::Credentials,
    args: &[&str],
) -> Output {
    let env = [
        ("AWS_ACCESS_KEY_ID".to_owned(), credentials.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), credentials.secret_access_key().to_owned()),
        ("AWS_SESSION_TOKEN".to_owned(), credentials.session_token().to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), ctx.stack.aws.endpoint_url.clone().unwrap()),
        ("AWS_ENDPOINT_URL_LAMBDA".to_owned(), running.runtime.invoke_endpoint()),
    ];
    gallery_ops(ctx, env, args).await
}

/// The real `gallery-ops` binary with only `env` (and a home of its own).
async fn gallery_ops(
    ctx: &TestContext,
    env: impl IntoIterator<Item = (String, String)>,
    args: &[&str],
) -> Output {
    let home = std::env::temp_dir().join(format!("ops-home-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    let out = tokio::process::Command::new(local::runtime_api::binary("gallery-ops"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_REGION", &ctx.region)
        .envs(env)
        .args(args)
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    out
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "gallery-ops failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn count(ctx: &TestContext, sql: &str) -> String {
    strings(&ctx.pool.get().await.unwrap(), sql).await.remove(0)
}

#[tokio::test]
async fn an_operator_bootstraps_the_first_admin_and_manages_tokens() {
    let ctx = TestContext::new().await;
    let api = Running::start(&ctx, "api").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;

    let out =
        json(&ops(&ctx, &api, &alice, &["admin", "bootstrap", "--label", "gallery owner"]).await);
    let token = out["result"]["token"].as_str().unwrap();
    assert!(token.starts_with("cpg_"), "{out}");
    assert_eq!(
        out["caller"],
        format!("arn:aws:sts::123456789012:assumed-role/{OPERATOR_ROLE}/alice")
    );
    // The token works: only its digest is stored.
    let digest = shared::domain::token_digest(token);
    assert_eq!(
        count(&ctx, &format!("SELECT count(*)::text FROM api_tokens WHERE token_sha256 = '{digest}' AND scope = 'admin'")).await,
        "1"
    );

    // A second bootstrap is refused while an admin exists…
    let again = ops(&ctx, &api, &alice, &["admin", "bootstrap", "--label", "second"]).await;
    assert!(!again.status.success());
    assert!(stderr(&again).contains("a live admin token exists"), "{}", stderr(&again));
    assert_eq!(count(&ctx, "SELECT count(*)::text FROM api_tokens").await, "1");
    // …unless forced with a reason.
    let forced = json(
        &ops(
            &ctx,
            &api,
            &alice,
            &[
                "admin",
                "bootstrap",
                "--label",
                "second",
                "--force",
                "--reason",
                "owner lost the first",
            ],
        )
        .await,
    );
    let second_id = forced["result"]["token_id"].as_str().unwrap().to_owned();

    let listed = json(&ops(&ctx, &api, &alice, &["tokens", "list"]).await);
    let tokens = listed["result"]["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        !listed.to_string().contains("cpg_") && !listed.to_string().contains(&digest),
        "no secrets in a listing"
    );

    let revoked = json(
        &ops(&ctx, &api, &alice, &["tokens", "revoke", &second_id, "--reason", "rotated"]).await,
    );
    assert_eq!(revoked["result"]["revoked"], second_id.as_str());
    let twice =
        ops(&ctx, &api, &alice, &["tokens", "revoke", &second_id, "--reason", "rotated"]).await;
    assert!(stderr(&twice).contains("NotFound"), "{}", stderr(&twice));

    // Every task is in the audit log under the operator's IAM identity.
    let actors = strings(
        &ctx.pool.get().await.unwrap(),
        "SELECT actor || ' ' || action FROM audit_log ORDER BY id",
    )
    .await;
    let me = format!("operator:arn:aws:sts::123456789012:assumed-role/{OPERATOR_ROLE}/alice");
    for action in ["ops.bootstrap_admin", "ops.list_tokens", "ops.revoke_token"] {
        assert!(actors.contains(&format!("{me} {action}")), "{action} missing from {actors:?}");
    }
}

#[tokio::test]
async fn callers_outside_the_operator_role_and_bad_arguments_change_nothing() {
    let ctx = TestContext::new().await;
    let api = Running::start(&ctx, "api").await;
    let mallory = assume(&ctx, "copper-gallery-api", "mallory").await;
    let out = ops(&ctx, &api, &mallory, &["admin", "bootstrap", "--label", "mine now"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("AccessDenied")
            && stderr(&out).contains("not the gallery's operator role"),
        "{}",
        stderr(&out)
    );

    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;
    for (args, message) in [
        (
            &["tokens", "create", "--scope", "artist", "--label", "x"][..],
            "an artist token needs --artist",
        ),
        (
            &["tokens", "create", "--scope", "admin", "--label", "x", "--expires-in-days", "9999"]
                [..],
            "--expires-in-days",
        ),
        (&["admin", "bootstrap", "--label", "x", "--force"][..], "--reason"),
        (&["tokens", "revoke", "not-a-uuid", "--reason", "x"][..], "invalid value"),
    ] {
        let out = ops(&ctx, &api, &alice, args).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let artist = uuid::Uuid::new_v4().to_string();
    let out = ops(
        &ctx,
        &api,
        &alice,
        &["tokens", "create", "--scope", "artist", "--artist", &artist, "--label", "x"],
    )
    .await;
    assert!(stderr(&out).contains("not found: artist"), "{}", stderr(&out));
    assert_eq!(count(&ctx, "SELECT count(*)::text FROM api_tokens").await, "0");
    let unproven =
        count(&ctx, "SELECT count(*)::text FROM audit_log WHERE actor LIKE '%mallory%'").await;
    assert_eq!(unproven, "0", "an unproven caller leaves no audit entry (CloudTrail has the call)");
}

#[tokio::test]
async fn an_operator_runs_a_backup_and_a_drill_now_and_reads_their_history() {
    let ctx = TestContext::new().await;
    ctx.artist_with_token("Ada Copper").await;
    let backup = Running::start(&ctx, "backup").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;

    let run = json(&ops(&ctx, &backup, &alice, &["backup", "run"]).await);
    let backup_id = run["result"]["backup_id"].as_str().unwrap().to_owned();
    let drill = json(&ops(&ctx, &backup, &alice, &["backup", "drill"]).await);
    assert_eq!(drill["result"]["restored"]["artists"], 1, "{drill}");
    let history = json(&ops(&ctx, &backup, &alice, &["backup", "history", "--limit", "5"]).await);
    assert_eq!(history["result"]["backups"][0]["id"], backup_id.as_str());
    assert_eq!(history["result"]["backups"][0]["status"], "succeeded");
    assert_eq!(history["result"]["drills"][0]["status"], "succeeded");
    assert_eq!(history["result"]["drills"][0]["backup_id"], backup_id.as_str());
    // The Sunday check of the oldest kept backup, on demand: with a newer
    // backup taken, the first one is restored too.
    ops(&ctx, &backup, &alice, &["backup", "run"]).await;
    let older = json(&ops(&ctx, &backup, &alice, &["backup", "drill", "--older"]).await);
    assert_eq!(older["result"]["copies"]["older"]["verified"], true, "{older}");
    assert_eq!(older["result"]["copies"]["older"]["backup_id"], backup_id.as_str(), "{older}");

    let audited = strings(
        &ctx.pool.get().await.unwrap(),
        "SELECT action FROM audit_log WHERE actor LIKE 'operator:%alice' ORDER BY id",
    )
    .await;
    assert_eq!(
        audited,
        [
            "ops.run_backup",
            "ops.run_restore_drill",
            "ops.backup_history",
            "ops.run_backup",
            "ops.run_older_backup_drill"
        ]
    );

    // A task sent to the wrong function is refused by name.
    let wrong = ops(
        &ctx,
        &backup,
        &alice,
        &["--function-prefix", "copper-gallery", "retention", "preview"],
    )
    .await;
    assert!(!wrong.status.success());
}

#[tokio::test]
async fn an_operator_previews_a_retention_sweep_without_deleting() {
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Ada Copper").await;
    let client = ctx.pool.get().await.unwrap();
    // An artwork deleted long ago, with an image: the sweep would purge it.
    let artwork = uuid::Uuid::new_v4();
    client
        .execute(
            "INSERT INTO artworks (id, artist_id, title, slug, deleted_at) VALUES ($1, $2, 'Gone', 'gone', now() - interval '90 days')",
            &[&artwork, &artist],
        )
        .await
        .unwrap();
    let image = uuid::Uuid::new_v4();
    let key = shared::domain::original_key(artwork, image, "gone.jpg");
    client
        .execute(
            "INSERT INTO images (id, artwork_id, original_key) VALUES ($1, $2, $3)",
            &[&image, &artwork, &key],
        )
        .await
        .unwrap();
    shared::aws::storage::ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id)
        .put(&ctx.storage.originals_bucket, &key, vec![1; 4], "image/jpeg")
        .await
        .unwrap();
    let retention = Running::start(&ctx, "retention").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;
    let preview = json(&ops(&ctx, &retention, &alice, &["retention", "preview"]).await);
    let report = &preview["result"]["report"];
    assert_eq!(report["dry_run"], true, "{preview}");
    assert_eq!(report["rules"]["deleted-artworks"]["items"], 1, "{preview}");
    assert_eq!(report["buckets"][&ctx.storage.originals_bucket]["versions"], 1);
    assert_eq!(report["sample_keys"][0], format!("{}/{key}", ctx.storage.originals_bucket));
    assert_eq!(
        count(&ctx, "SELECT count(*)::text FROM artworks").await,
        "1",
        "a preview deletes nothing"
    );
}

#[tokio::test]
async fn an_operator_prints_the_policy_and_erases_an_artist_through_the_retention_function() {
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Ada Leaving").await;
    let retention = Running::start(&ctx, "retention").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;
    let policy = json(&ops(&ctx, &retention, &alice, &["retention", "policy"]).await);
    let rules: Vec<&str> = policy["result"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"backups") && rules.contains(&"artist-personal-data"), "{policy}");

    let id = artist.to_string();
    let unconfirmed = ops(&ctx, &retention, &alice, &["artists", "erase", &id]).await;
    assert!(!unconfirmed.status.success(), "an erasure must be confirmed");
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--confirm"));
    let erased =
        json(&ops(&ctx, &retention, &alice, &["artists", "erase", &id, "--confirm"]).await);
    assert!(erased["result"]["erasure"]["completed_at"].is_string(), "{erased}");
    assert_eq!(erased["result"]["erasure"]["rows_deleted"]["artists"], 1);
    assert_eq!(
        count(&ctx, &format!("SELECT count(*)::text FROM artists WHERE id = '{id}'")).await,
        "0"
    );
    let listed = json(&ops(&ctx, &retention, &alice, &["artists", "erasures"]).await);
    assert_eq!(listed["result"]["erasures"][0]["artist_id"], id.as_str());
    let who =
        count(&ctx, "SELECT actor FROM audit_log WHERE action = 'artist.erasure_requested'").await;
    assert!(who.starts_with("operator:") && who.contains("alice"), "{who}");
}

#[tokio::test]
async fn an_operator_adds_the_first_artist_and_issues_their_token() {
    let ctx = TestContext::new().await;
    let api = Running::start(&ctx, "api").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;
    let create = [
        "artists",
        "create",
        "--name",
        "Ada Copper",
        "--email",
        "ada@example.org",
        "--website",
        "https://ada.example.org",
    ];
    let created = json(&ops(&ctx, &api, &alice, &create).await);
    let artist = created["result"]["artist_id"].as_str().unwrap().to_owned();
    let token = json(
        &ops(
            &ctx,
            &api,
            &alice,
            &[
                "tokens",
                "create",
                "--scope",
                "artist",
                "--artist",
                &artist,
                "--label",
                "Ada's phone",
            ],
        )
        .await,
    );
    assert!(token["result"]["token"].as_str().unwrap().starts_with("cpg_"));
    let listed = json(&ops(&ctx, &api, &alice, &["artists", "list"]).await);
    assert_eq!(listed["result"]["artists"][0]["email"], "ada@example.org");
    assert_eq!(listed["result"]["artists"][0]["live_tokens"], 1);

    // The same email twice, or a bad one, changes nothing.
    let again = ops(
        &ctx,
        &api,
        &alice,
        &["artists", "create", "--name", "Ada again", "--email", "ADA@example.org"],
    )
    .await;
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    let bad =
        ops(&ctx, &api, &alice, &["artists", "create", "--name", "X", "--email", "not an email"])
            .await;
    assert!(stderr(&bad).contains("--email"), "{}", stderr(&bad));
    assert_eq!(count(&ctx, "SELECT count(*)::text FROM artists").await, "1");
    // The email is personal data: the audit log names the artist by id only.
    let leaked = count(
        &ctx,
        "SELECT count(*)::text FROM audit_log WHERE detail::text ILIKE '%ada@example%'",
    )
    .await;
    assert_eq!(leaked, "0");
}

#[tokio::test]
async fn an_operator_migrates_the_database_through_the_backup_function() {
    let ctx = TestContext::new().await;
    let backup = Running::start(&ctx, "backup").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;
    let out = json(&ops(&ctx, &backup, &alice, &["database", "migrate"]).await);
    assert_eq!(
        out["result"]["applied"],
        serde_json::json!([]),
        "the test database is already current: {out}"
    );
    assert_eq!(
        out["result"]["logins"],
        serde_json::json!([
            "gallery_backup_records",
            "gallery_backup",
            "gallery_api",
            "gallery_processor",
            "gallery_retention"
        ])
    );
    assert_eq!(
        count(&ctx, "SELECT count(*)::text FROM audit_log WHERE action = 'ops.migrate_database'")
            .await,
        "1"
    );
}

/// docs/backup-restore.md's restore commands, executed as written: the
/// runbook an operator follows at 3 a.m. cannot drift from the tool.
#[tokio::test]
async fn the_restore_runbook_runs_as_written() {
    let ctx = TestContext::new().await;
    ctx.artist_with_token("Ada Copper").await;
    let backup = Running::start(&ctx, "backup").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;
    json(&ops(&ctx, &backup, &alice, &["backup", "run"]).await);

    let text = std::fs::read_to_string(format!(
        "{}/../docs/backup-restore.md",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let section = text.split("\n## Restore\n").nth(1).unwrap().split("\n## ").next().unwrap();
    let lines: Vec<&str> =
        section.lines().map(str::trim).filter(|l| l.starts_with("gallery-ops ")).collect();
    assert!(lines.iter().any(|l| l.contains("backup restore")), "the runbook shows the restore");
    let owner = shared::config::DbConfig {
        user: ctx.stack.owner_user.clone(),
        name: "postgres".into(),
        ..ctx.db.clone()
    };
    let admin = shared::db::connect(&owner, &ctx.stack.owner_password).await.unwrap();
    admin.batch_execute("DROP DATABASE IF EXISTS gallery_restored WITH (FORCE)").await.unwrap();
    let mut last = Value::Null;
    for line in &lines {
        let words = crate::docs::shell_words(line);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        last = json(&ops(&ctx, &backup, &alice, &args).await);
    }
    assert_eq!(last["result"]["database"], "gallery_restored", "{last}");
    assert_eq!(last["result"]["rows"]["artists"], 1, "{last}");
    let restored = shared::config::DbConfig { name: "gallery_restored".into(), ..owner };
    let client = shared::db::connect(&restored, &ctx.stack.owner_password).await.unwrap();
    let name: String = client.query_one("SELECT name FROM artists", &[]).await.unwrap().get(0);
    assert_eq!(name, "Ada Copper");
    drop(client);
    // The recovery step of every other path, through the same tool, audited.
    let replayed = json(
        &ops(
            &ctx,
            &backup,
            &alice,
            &["database", "replay-erasures", "--database", "gallery_restored"],
        )
        .await,
    );
    assert_eq!(replayed["result"]["database"], "gallery_restored", "{replayed}");
    assert_eq!(replayed["result"]["artists_present"], 0, "{replayed}");
    let audited = strings(
        &ctx.pool.get().await.unwrap(),
        "SELECT action FROM audit_log WHERE action = 'ops.replay_erasures'",
    )
    .await;
    assert_eq!(audited.len(), 1);
    // Production itself is refused unless named twice with a reason.
    let production = ctx.db.name.clone();
    let refused = ops(
        &ctx,
        &backup,
        &alice,
        &["backup", "restore", "latest", "--database", &production, "--replace"],
    )
    .await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--confirm-production"), "{}", stderr(&refused));
    let mismatched = ops(
        &ctx,
        &backup,
        &alice,
        &[
            "backup",
            "restore",
            "latest",
            "--database",
            &production,
            "--confirm-production",
            "other",
            "--reason",
            "r",
        ],
    )
    .await;
    assert!(
        stderr(&mismatched).contains("must name the --database again"),
        "{}",
        stderr(&mismatched)
    );
    admin.batch_execute("DROP DATABASE IF EXISTS gallery_restored WITH (FORCE)").await.unwrap();
}

/// The proof is bound to the invoked function's own account: a role of the
/// same name in another account, which STS names truthfully, is refused.
#[tokio::test]
async fn a_same_named_role_in_another_account_is_refused() {
    let ctx = TestContext::new().await;
    let api = Running::start(&ctx, "api").await;
    let sts = aws_sdk_sts::Client::new(&ctx.clients.sdk);
    let twin = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::999999999999:role/{OPERATOR_ROLE}"))
        .role_session_name("mallory")
        .send()
        .await
        .unwrap()
        .credentials()
        .unwrap()
        .clone();
    let out = ops(&ctx, &api, &twin, &["admin", "bootstrap", "--label", "mine now"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("AccessDenied") && stderr(&out).contains("999999999999"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&ctx, "SELECT count(*)::text FROM api_tokens").await, "0");
}

/// Every proof runs one task: the same invocation sent again (captured from a
/// log or the wire, within STS's window) is refused before anything runs.
#[tokio::test]
async fn a_captured_invocation_cannot_be_replayed() {
    let ctx = TestContext::new().await;
    let api = Running::start(&ctx, "api").await;
    let alice = assume(&ctx, OPERATOR_ROLE, "alice").await;
    let credentials = aws_credential_types::Credentials::new(
        alice.access_key_id(),
        alice.secret_access_key(),
        Some(alice.session_token().to_owned()),
        None,
        "test",
    );
    let task = shared::operator::OperatorTask::BootstrapAdmin {
        label: "gallery owner".into(),
        expires_in_days: 30,
        force: false,
        reason: None,
    };
    let endpoint = shared::operator::identity::sts_endpoint(
        ctx.stack.aws.endpoint_url.as_deref(),
        &ctx.region,
    );
    let proof = shared::aws::sts::sign(credentials, &ctx.region, &endpoint, &task.canonical_json())
        .unwrap();
    let event = serde_json::to_value(shared::operator::OperatorRequest {
        operator_task: task,
        identity: proof,
    })
    .unwrap();

    let first = api.respond(&event).await;
    assert!(first["result"]["token"].as_str().is_some_and(|t| t.starts_with("cpg_")), "{first}");
    match api.invoke(&event).await {
        local::runtime_api::InvocationOutcome::Error(e) => {
            assert_eq!(e.error_type, "AccessDenied", "{e:?}");
            assert!(e.error_message.contains("already used"), "{e:?}");
        }
        other => panic!("a replayed proof ran its task again: {other:?}"),
    }
    assert_eq!(count(&ctx, "SELECT count(*)::text FROM api_tokens").await, "1");
}

/// Runs `gallery-ops --local check` against the gallery served at `origin`,
/// its tasks in-process with what the three functions read, as Terraform
/// gives it, for this test's resources (no operator role: nothing is
/// invoked; the tests' own access key: these requests are recorded as set-up).
async fn check(ctx: &TestContext, origin: &str, wait_seconds: u32) -> Output {
    let mut env: Vec<(String, String)> = Vec::new();
    for binary in ["api", "backup", "retention"] {
        let f = crate::terraform::functions().into_iter().find(|f| f.binary == binary).unwrap();
        for (name, value) in crate::lambda_runtime::lambda_env(ctx, &f).await {
            if !env.iter().any(|(n, _)| *n == name) {
                env.push((name, value));
            }
        }
    }
    env.retain(|(name, _)| {
        !matches!(
            name.as_str(),
            "GALLERY_OPERATOR_ROLE_NAME" | "AWS_ACCESS_KEY_ID" | "GALLERY_MEDIA_BASE_URL"
        )
    });
    env.push(("AWS_ACCESS_KEY_ID".into(), "testing".into()));
    env.push(("GALLERY_MEDIA_BASE_URL".into(), origin.into()));
    // The backup function's own login, as the local stack names it.
    env.push(("DATABASE_BACKUP_RECORDS_USER".into(), crate::support::BACKUP_RECORDS.into()));
    env.push((
        "DATABASE_BACKUP_RECORDS_PASSWORD".into(),
        ctx.stack.app_password.expose_secret().into(),
    ));
    gallery_ops(
        ctx,
        env,
        &["--local", "check", "--api-url", origin, "--wait-seconds", &wait_seconds.to_string()],
    )
    .await
}

/// `gallery-ops check` (the real binary, tasks in-process) against the whole
/// gallery on loopback: the API and the CDN's media path on one origin, the
/// upload watcher standing in for S3's notification. Every hop passes, in
/// order, and the check leaves nothing behind.
#[tokio::test]
async fn the_smoke_test_passes_against_the_local_stack_and_leaves_nothing_behind() {
    let ctx = TestContext::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let state = ctx.api_state_at(&origin);
    let app = api::router(state.clone()).merge(local::edge::router(state.media.clone()));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let processor = ctx.processor();
    let s3 = ctx.clients.s3.clone();
    let watcher = tokio::spawn(async move {
        local::watch_uploads(&processor, &s3, async {
            let _ = stopped.await;
        })
        .await
    });

    let out = check(&ctx, &origin, 60).await;
    let _ = stop.send(());
    let _ = watcher.await;
    server.abort();

    let printed = stderr(&out);
    assert!(out.status.success(), "gallery-ops check failed:\n{printed}");
    let hops: Vec<&str> = printed.lines().filter(|l| l.starts_with("✓ ")).collect();
    for (i, hop) in [
        "the API answers",
        "an operator creates",
        "an artist uploads",
        "the image processor made",
        "a draft's rendition is refused",
        "the published rendition is served",
        "a backup is taken",
        "a restore drill",
        "a retention dry run",
        "an erasure",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            hops.get(i).is_some_and(|h| h.contains(hop)),
            "hop {i} ({hop}) missing or out of order:\n{printed}"
        );
    }
    // Nothing of the check remains but the erasure record, its audit entries and the backup.
    for table in ["artists", "artworks", "images", "print_editions", "api_tokens"] {
        assert_eq!(
            count(&ctx, &format!("SELECT count(*)::text FROM {table}")).await,
            "0",
            "{table} after the check"
        );
    }
    assert_eq!(
        count(&ctx, "SELECT count(*)::text FROM erasures WHERE completed_at IS NOT NULL").await,
        "1"
    );
    for bucket in [&ctx.storage.originals_bucket, &ctx.storage.processed_bucket] {
        let versions =
            ctx.clients.s3.list_object_versions().bucket(bucket.as_str()).send().await.unwrap();
        assert!(
            versions.versions().is_empty() && versions.delete_markers().is_empty(),
            "{bucket} keeps objects of the check"
        );
    }
}

/// A hop that fails stops the check with what failed and why, exits non-zero,
/// and still erases what the check created.
#[tokio::test]
async fn a_failing_hop_stops_the_smoke_test_and_it_cleans_up() {
    let ctx = TestContext::new().await;
    // An API that answers but whose media path serves nothing: the renditions
    // never become visible, so the check must stop at that hop.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = api::router(ctx.api_state_at(&origin));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let out = check(&ctx, &origin, 4).await;
    server.abort();
    let printed = stderr(&out);
    assert!(!out.status.success(), "{printed}");
    assert!(printed.contains("waiting for the renditions"), "the failing hop is named:\n{printed}");
    assert!(printed.contains("erasing the check's artist"), "{printed}");
    for table in ["artists", "artworks", "images", "api_tokens"] {
        assert_eq!(
            count(&ctx, &format!("SELECT count(*)::text FROM {table}")).await,
            "0",
            "{table} after a failed check"
        );
    }
}
