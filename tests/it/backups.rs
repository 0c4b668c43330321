//! Backups, verification, restores and drills against the real database
//! (TLS), KMS and S3 of the local stack.

use backup::restore::RestoreRequest;
use backup::{BackupError, BackupService, Manifest};
use shared::archive::format::{Header, CHUNK, TAG};
use shared::config::DbConfig;
use shared::operator::BackupChoice;

use crate::support::{strings, TestContext, API, BACKUP_RECORDS, PROCESSOR, RETENTION};

fn config(ctx: &TestContext, backup_key: String) -> backup::BackupConfig {
    let role = |user: &str, password: &secrecy::SecretString| shared::config::RoleConfig {
        user: user.to_owned(),
        password: shared::config::PasswordSource::Plain(password.clone()),
    };
    backup::BackupConfig {
        common: shared::config::Common { db: ctx.db_as(BACKUP_RECORDS), ..ctx.common() },
        owner: role(&ctx.stack.owner_user, &ctx.stack.owner_password),
        snapshot: role(&ctx.stack.backup_user, &ctx.stack.backup_password),
        function_logins: shared::config::FunctionLogins {
            api: role(API, &ctx.stack.app_password),
            processor: role(PROCESSOR, &ctx.stack.app_password),
            retention: role(RETENTION, &ctx.stack.app_password),
        },
        operator: Default::default(),
        dr: backup::DrCopyConfig {
            region: crate::support::DR_REGION.into(),
            bucket: ctx.replica.backups_bucket.clone(),
            s3_endpoint: None,
            kms_endpoint: None,
            // A multi-Region key's replica has the same id in the DR Region.
            key_id: backup_key
                .replace(&format!(":{}:", ctx.region), &format!(":{}:", crate::support::DR_REGION)),
        },
        backup_key_id: backup_key,
        backup_lock: chrono::Duration::hours(1),
    }
}

pub(crate) async fn service(ctx: &TestContext) -> BackupService {
    service_with_key(ctx, ctx.backup_key.clone())
}

fn service_with_key(ctx: &TestContext, backup_key: String) -> BackupService {
    let config = config(ctx, backup_key);
    backup::service_with(&config, ctx.pool_as(BACKUP_RECORDS), &ctx.clients_as("backup"))
}

/// Some of everything, including personal data that must never appear in plaintext.
pub(crate) async fn gallery_data(ctx: &TestContext) {
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
        let a =
            shared::db::insert_artwork(&client, artist, &new.validate().unwrap()).await.unwrap();
        shared::db::insert_edition(
            &client,
            a.id,
            &shared::domain::NewEdition {
                edition_size: 10,
                paper: "Rag".into(),
                price_minor: 1000,
                currency: "EUR".into(),
            }
            .validate()
            .unwrap(),
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

/// Audit rows of random text: they barely compress, so the object spans
/// several chunks (about 1 MiB stored per 8,000 rows).
pub(crate) async fn bulk(ctx: &TestContext, rows: i32) {
    ctx.pool
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO audit_log (actor, action, target, detail)
             SELECT 'bulk', 'bulk.row', 'row:' || g,
                    jsonb_build_object('noise', (SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, 4) s))
               FROM generate_series(1, $1) g",
            &[&rows],
        )
        .await
        .unwrap();
}

pub(crate) async fn object(ctx: &TestContext, key: &str) -> Vec<u8> {
    let out = ctx
        .clients
        .s3
        .get_object()
        .bucket(&ctx.storage.backups_bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().to_vec()
}

pub(crate) async fn put(ctx: &TestContext, key: &str, bytes: Vec<u8>) {
    ctx.clients
        .s3
        .put_object()
        .bucket(&ctx.storage.backups_bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .unwrap();
}

/// `manifest` after `edit`, signed anew with its backup's data key (unwrapped
/// by the service's key): what only the backup function can make.
pub(crate) async fn signed_anew(
    service: &BackupService,
    manifest: &Manifest,
    edit: impl FnOnce(&mut Manifest),
) -> Manifest {
    let wrapped = manifest.wrapped_key_bytes().unwrap();
    let data_key = service
        .keys
        .unwrap(&wrapped, &backup::key_context(manifest.backup_id), None)
        .await
        .unwrap();
    let mut signed = manifest.clone();
    edit(&mut signed);
    signed.sign(&data_key);
    signed
}

/// Stores `bytes` as a new version of a backup's object in `bucket`, and its
/// manifest signed anew to name that version (after `edit`); returns it.
pub(crate) async fn store_version(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    service: &BackupService,
    manifest: &Manifest,
    bytes: Vec<u8>,
    edit: impl FnOnce(&mut Manifest),
) -> Manifest {
    let written =
        s3.put_object().bucket(bucket).key(&manifest.object_key).body(bytes.into()).send().await;
    let version = written.unwrap().version_id().map(str::to_owned);
    let signed = signed_anew(service, manifest, |m| {
        m.object_version = version;
        edit(m);
    })
    .await;
    s3.put_object()
        .bucket(bucket)
        .key(Manifest::key_for(&manifest.object_key))
        .body(serde_json::to_vec(&signed).unwrap().into())
        .send()
        .await
        .unwrap();
    signed
}

/// A damaged stored version, as a restore sees it: `bytes` stored as a new
/// version of the backup's object, its manifest (and the catalog's record)
/// naming that version. S3 never changes a version in place and restores
/// read the version the manifest signed, so this is the only way to put
/// damaged bytes where a restore will read them.
async fn damage(ctx: &TestContext, service: &BackupService, manifest: &Manifest, bytes: Vec<u8>) {
    let (s3, bucket) = (&ctx.clients.s3, &ctx.storage.backups_bucket);
    let pinned = store_version(s3, bucket, service, manifest, bytes, |_| {}).await;
    ctx.owner_pool()
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE backups SET object_version = $2 WHERE id = $1",
            &[&manifest.backup_id, &pinned.object_version],
        )
        .await
        .unwrap();
}

pub(crate) fn database_name() -> String {
    format!("r_{}", uuid::Uuid::new_v4().simple())
}

pub(crate) async fn connect_as_owner(ctx: &TestContext, database: &str) -> tokio_postgres::Client {
    let cfg = DbConfig {
        user: ctx.stack.owner_user.clone(),
        name: database.to_owned(),
        ..ctx.db.clone()
    };
    shared::db::connect(&cfg, &ctx.stack.owner_password).await.unwrap()
}

/// Every table's row count and checksum, read as a backup reads them.
async fn digests(
    client: &tokio_postgres::Client,
    manifest: &Manifest,
) -> Vec<(String, u64, String)> {
    shared::db::stable_output(client).await.unwrap();
    let mut out = Vec::new();
    for table in &manifest.tables {
        let (name, order) = shared::db::backup_table(&table.name).unwrap();
        let (rows, sha) =
            shared::db::table_digest(client, name, &table.columns, order).await.unwrap();
        out.push((name.to_owned(), rows, sha));
    }
    out
}

fn recorded(manifest: &Manifest) -> Vec<(String, u64, String)> {
    manifest.tables.iter().map(|t| (t.name.clone(), t.rows, t.sha256.clone())).collect()
}

#[tokio::test]
async fn a_backup_is_sealed_with_a_manifest_and_the_drill_proves_the_restored_database() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let service = service(&ctx).await;

    let manifest = service.backup().await.expect("backup");
    assert_eq!(manifest.rows()["artworks"], 5);
    assert_eq!(manifest.rows()["audit_log"], 1);
    assert_eq!(manifest.rows()["backups"], 1, "the catalog is in the backup too");
    assert_eq!(manifest.schema_version, shared::db::latest_known_version());

    let stored = ctx
        .clients
        .s3
        .get_object()
        .bucket(&ctx.storage.backups_bucket)
        .key(&manifest.object_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms"),
        "SSE-KMS on top of the envelope"
    );
    let bytes = stored.body.collect().await.unwrap().to_vec();
    assert!(bytes.starts_with(shared::archive::format::MAGIC));
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(
        !haystack.contains("ada.secret@example.org") && !haystack.contains("Plate 3"),
        "no plaintext in the object"
    );
    let manifest_json = object(&ctx, &Manifest::key_for(&manifest.object_key)).await;
    assert!(
        !String::from_utf8_lossy(&manifest_json).contains("ada.secret"),
        "the manifest holds no data"
    );

    let verified = service.verify(&BackupChoice::Latest).await.expect("verify");
    assert_eq!(verified.backup_id, manifest.backup_id);
    assert_eq!(verified.tables["artworks"].rows, 5);

    let drill = service.restore_drill().await.expect("drill");
    assert_eq!(drill.rows["artworks"], 5);
    assert_eq!(drill.checksums["artists"], manifest.table("artists").unwrap().sha256);
    let client = ctx.pool_as(BACKUP_RECORDS).get().await.unwrap();
    let row =
        client.query_one("SELECT status, restore_ms, checksums FROM restore_drills ORDER BY started_at DESC LIMIT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "succeeded");
    assert!(row.get::<_, Option<i64>>(1).is_some(), "the restore time is recorded");
    assert!(row.get::<_, Option<serde_json::Value>>(2).is_some(), "so are the checksums");
    let leftovers: i64 = client
        .query_one("SELECT count(*) FROM pg_database WHERE datname LIKE 'gallery\\_drill\\_%'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(leftovers < 3, "scratch databases are dropped (other tests may be mid-drill)");
}

#[tokio::test]
async fn a_restore_while_rows_are_written_holds_exactly_the_snapshot() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    bulk(&ctx, 20_000).await;
    let service = service(&ctx).await;

    // A writer keeps inserting while the backup runs.
    let pool = ctx.pool.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = pool.get().await.unwrap();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                client.execute("INSERT INTO audit_log (actor, action, target) VALUES ('writer', 'concurrent', 'x')", &[]).await.unwrap();
                n += 1;
            }
            n
        })
    };
    let manifest = service.backup().await.expect("backup while writing");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0);

    let database = database_name();
    let request = RestoreRequest {
        backup: BackupChoice::Id(manifest.backup_id),
        database: database.clone(),
        verify_first: true,
        replace: false,
        confirm_production: None,
        reason: None,
    };
    let report = service.restore(&request).await.expect("restore");
    assert_eq!(report.rows["audit_log"], manifest.rows()["audit_log"]);
    let target = connect_as_owner(&ctx, &database).await;
    let mut restored = digests(&target, &manifest).await;
    let mut snapshot = recorded(&manifest);
    // The restore settles its own catalog row (running at snapshot time, succeeded now).
    restored.retain(|(t, ..)| t != "backups");
    snapshot.retain(|(t, ..)| t != "backups");
    assert_eq!(restored, snapshot, "the restored database is the snapshot, row for row");
    let status: String = target
        .query_one("SELECT status FROM backups WHERE id = $1", &[&manifest.backup_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "succeeded");
    target
        .execute("INSERT INTO audit_log (actor, action, target) VALUES ('a', 'b', 'c')", &[])
        .await
        .expect("the identity continues");

    // A second restore into the same database is refused, unless replacing.
    let again = service.restore(&request).await.expect_err("not empty");
    assert!(matches!(again, BackupError::TargetNotEmpty(_)), "{again}");
    service
        .restore(&RestoreRequest { replace: true, verify_first: false, ..request })
        .await
        .expect("replace");
}

#[tokio::test]
async fn every_kind_of_tampering_is_refused_with_its_own_message() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    bulk(&ctx, 60_000).await;
    let service = service(&ctx).await;
    let manifest = service.backup().await.unwrap();
    assert!(manifest.chunks >= 4, "the test needs several chunks, got {}", manifest.chunks);
    let other = service.backup().await.unwrap();
    let key = manifest.object_key.clone();
    let original = object(&ctx, &key).await;
    let (_, start) = Header::decode(&original).unwrap().unwrap();
    let sealed = CHUNK + TAG;
    let chunk = |i: usize| start + i * sealed..start + (i + 1) * sealed;

    let mut flipped = original.clone();
    flipped[start + sealed + 100] ^= 0x01;
    let mut truncated = original.clone();
    truncated.truncate(original.len() - 1000);
    let mut dropped = original[..chunk(1).start].to_vec();
    dropped.extend_from_slice(&original[chunk(2).start..]);
    let mut reordered = original[..chunk(1).start].to_vec();
    reordered.extend_from_slice(&original[chunk(2)]);
    reordered.extend_from_slice(&original[chunk(1)]);
    reordered.extend_from_slice(&original[chunk(3).start..]);
    let mut appended = original.clone();
    appended.extend_from_slice(&original[chunk(0)]);
    let swapped = object(&ctx, &other.object_key).await;

    let manifest_key = Manifest::key_for(&key);
    let genuine = object(&ctx, &manifest_key).await;
    for (bytes, expected) in [
        (flipped, "chunk 1 failed authentication"),
        (truncated, "truncated"),
        (dropped, "1 chunk(s) are missing"),
        (reordered, "chunks were reordered"),
        (appended, "bytes were appended"),
        (swapped, "it was swapped"),
    ] {
        damage(&ctx, &service, &manifest, bytes).await;
        let err = service.verify(&BackupChoice::Id(manifest.backup_id)).await.expect_err(expected);
        assert!(err.to_string().contains(expected), "expected {expected:?}, got: {err}");
        assert!(err.is_integrity_failure() && !err.is_retryable(), "{err}");
    }
    // The genuine manifest names the genuine version: the damaged bytes the
    // key holds now are never read, and the backup verifies and restores.
    put(&ctx, &manifest_key, genuine.clone()).await;
    assert_ne!(object(&ctx, &key).await, original, "the key's current version is damaged");
    service.verify(&BackupChoice::Id(manifest.backup_id)).await.expect("the signed version");
    let restored = service
        .restore(&RestoreRequest {
            backup: BackupChoice::Id(manifest.backup_id),
            database: database_name(),
            verify_first: false,
            replace: false,
            confirm_production: None,
            reason: None,
        })
        .await
        .expect("an overwritten key still restores from the version its manifest signed");
    assert_eq!(restored.rows, manifest.rows());
    // A manifest changed by someone without the data key.
    let mut forged: Manifest = serde_json::from_slice(&genuine).unwrap();
    forged.tables[0].rows += 1;
    put(&ctx, &manifest_key, serde_json::to_vec(&forged).unwrap()).await;
    let err = service.verify(&BackupChoice::Id(manifest.backup_id)).await.unwrap_err();
    assert!(matches!(err, BackupError::ManifestForged(_)), "{err}");
    // Another backup's wrapped data key: KMS refuses it for this backup's context.
    let mut borrowed: Manifest = serde_json::from_slice(&genuine).unwrap();
    borrowed.wrapped_key = other.wrapped_key.clone();
    put(&ctx, &manifest_key, serde_json::to_vec(&borrowed).unwrap()).await;
    let err = service.verify(&BackupChoice::Id(manifest.backup_id)).await.unwrap_err();
    assert!(err.to_string().contains("another encryption context"), "{err}");
    assert!(!err.is_retryable());
    put(&ctx, &manifest_key, genuine).await;
    // A function configured with another key refuses before asking KMS.
    let stranger = service_with_key(
        &ctx,
        local::ensure_key(&ctx.clients.kms, &format!("alias/s-{}", uuid::Uuid::new_v4().simple()))
            .await
            .unwrap(),
    );
    let err = BackupService { bucket: service.bucket.clone(), ..stranger }
        .verify(&BackupChoice::Id(manifest.backup_id))
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::WrongKey { .. }), "{err}");

    // The drill finds a corrupted newest backup, records it, and is not retried.
    let mut bad = object(&ctx, &other.object_key).await;
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    damage(&ctx, &service, &other, bad).await;
    let out = backup::scheduled(backup::ScheduledTask::RestoreDrill, &service)
        .await
        .expect("a failed drill is a result, not a retry");
    assert!(out["drill_failed"].as_str().unwrap().contains("failed authentication"), "{out}");
    let client = ctx.pool_as(BACKUP_RECORDS).get().await.unwrap();
    let row = client
        .query_one("SELECT status, error FROM restore_drills ORDER BY started_at DESC LIMIT 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "failed");
}

#[tokio::test]
async fn a_killed_backup_leaves_nothing_that_looks_complete() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    bulk(&ctx, 40_000).await;
    let running = crate::lambda_runtime::Running::start(&ctx, "backup").await;
    let event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/scheduled-backup.json")).unwrap();
    // Kill the function as soon as its upload has begun: as a timeout would.
    let s3 = &ctx.clients.s3;
    let upload_started = async {
        loop {
            let uploads = s3
                .list_multipart_uploads()
                .bucket(&ctx.storage.backups_bucket)
                .send()
                .await
                .unwrap();
            if !uploads.uploads().is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        outcome = running.invoke(&event) => panic!("the backup finished before it could be killed: {outcome:?}"),
        () = upload_started => {}
    }
    let pid = running.process.id().expect("running").to_string();
    std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    let killed: String =
        strings(&ctx.pool_as(BACKUP_RECORDS).get().await.unwrap(), "SELECT status FROM backups")
            .await
            .remove(0);
    assert_eq!(killed, "running", "killed without recording anything");

    // The next run (here with a deadline already passed) cleans up after it.
    let next = BackupService { run_deadline: chrono::Duration::zero(), ..service(&ctx).await };
    next.backup().await.expect("the next backup");
    let statuses = strings(
        &ctx.pool_as(BACKUP_RECORDS).get().await.unwrap(),
        "SELECT status FROM backups ORDER BY started_at",
    )
    .await;
    assert_eq!(statuses, ["failed", "succeeded"]);
    let uploads =
        s3.list_multipart_uploads().bucket(&ctx.storage.backups_bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "no multipart upload left open");
    let keys = next.store.list_keys(&ctx.storage.backups_bucket, "backups/").await.unwrap();
    assert_eq!(
        keys.iter().filter(|k| k.ends_with(".manifest.json")).count(),
        1,
        "only the finished backup has a manifest: {keys:?}"
    );
    assert_eq!(keys.len(), 2, "and only it has an object: {keys:?}");
}

#[tokio::test]
async fn kms_unavailable_is_retryable_and_recorded() {
    let ctx = TestContext::new().await;
    let mut service = service(&ctx).await;
    let unreachable = aws_sdk_kms::config::Builder::from(&ctx.clients.sdk)
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    service.keys = shared::aws::keys::Keys::new(aws_sdk_kms::Client::from_conf(unreachable));
    let err = service.backup().await.expect_err("no KMS");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("KMS is unavailable"), "{err}");
    let error: String =
        strings(&ctx.pool_as(BACKUP_RECORDS).get().await.unwrap(), "SELECT error FROM backups")
            .await
            .remove(0);
    assert!(error.contains("KMS is unavailable"), "{error}");
}

/// The snapshot role of this test reads a database still at schema v2; its
/// backup restores by recreating v2, loading v2's columns, then migrating.
#[tokio::test]
async fn a_backup_of_an_older_schema_restores_after_migrations_add_columns() {
    let ctx = TestContext::new().await;
    let old = database_name();
    connect_as_owner(&ctx, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE \"{old}\""))
        .await
        .unwrap();
    let mut client = connect_as_owner(&ctx, &old).await;
    shared::db::migrate_to(&mut client, 2).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO artists (id, name, email) VALUES ('00000000-0000-4000-8000-000000000001', 'Old Ada', 'old@example.org');
             INSERT INTO backups (id, object_key, status, started_at, finished_at)
                  VALUES ('00000000-0000-4000-8000-000000000002', 'backups/old.cpgbak', 'succeeded', now(), now());",
        )
        .await
        .unwrap();
    let mut service = service(&ctx).await;
    service.snapshot = backup::Login {
        db: DbConfig { user: ctx.stack.owner_user.clone(), name: old.clone(), ..ctx.db.clone() },
        password: shared::aws::LazyPassword::new(
            ctx.clients.clone(),
            shared::config::PasswordSource::Plain(ctx.stack.owner_password.clone()),
        ),
    };
    let manifest = service.backup().await.unwrap();
    assert_eq!(manifest.schema_version, 2);
    assert!(
        !manifest.table("backups").unwrap().columns.contains(&"manifest_key".to_owned()),
        "v2 has no manifest columns"
    );

    let database = database_name();
    let report = service
        .restore(&RestoreRequest {
            backup: BackupChoice::Latest,
            database: database.clone(),
            verify_first: false,
            replace: false,
            confirm_production: None,
            reason: None,
        })
        .await
        .expect("an older backup restores");
    assert_eq!(report.schema_version, 2);
    assert_eq!(report.migrated_to, shared::db::latest_known_version());
    let target = connect_as_owner(&ctx, &database).await;
    let name: String = target.query_one("SELECT name FROM artists", &[]).await.unwrap().get(0);
    assert_eq!(name, "Old Ada");
    let added: Option<String> = target
        .query_one(
            "SELECT manifest_key FROM backups WHERE id = '00000000-0000-4000-8000-000000000002'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(added, None, "the newer column exists, empty, on the restored rows");

    // A backup that claims a schema newer than this code is refused.
    let manifest_key = Manifest::key_for(&manifest.object_key);
    let mut newer: Manifest = serde_json::from_slice(&object(&ctx, &manifest_key).await).unwrap();
    let wrapped = newer.wrapped_key_bytes().unwrap();
    let data_key =
        service.keys.unwrap(&wrapped, &backup::key_context(newer.backup_id), None).await.unwrap();
    newer.schema_version = 99;
    newer.sign(&data_key);
    put(&ctx, &manifest_key, serde_json::to_vec(&newer).unwrap()).await;
    let err = service
        .restore(&RestoreRequest {
            backup: BackupChoice::Latest,
            database: database_name(),
            verify_first: false,
            replace: false,
            confirm_production: None,
            reason: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::NewerSchema { backup: 99, .. }), "{err}");
}

/// After losing the primary region, a recovery deployment is configured with
/// the multi-Region key's replica: same key id, another region's ARN.
///
/// The emulator cannot hold a working replica: it keeps only 36 characters of
/// a key id inside its ciphertexts, so nothing sealed under a real `mrk-` key
/// (40 characters) decrypts there, and its ReplicateKey fails for single-Region
/// keys. So this checks what the code decides: a function configured with the
/// replica's ARN accepts the backup as sealed by the same key and asks KMS with
/// that ARN (which the emulator resolves by key id). Terraform's multi-Region key and its
/// replica are checked by the emulator apply and read-back.
#[tokio::test]
async fn the_replica_key_is_accepted_and_another_key_refused() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let kms = &ctx.clients.kms;
    let created = kms.create_key().description("backups").send().await.unwrap();
    let primary = created.key_metadata().unwrap().arn().unwrap().to_owned();
    let service = service_with_key(&ctx, primary.clone());
    let manifest = service.backup().await.unwrap();

    let replica = primary.replace(&format!(":{}:", ctx.region), ":eu-central-1:");
    assert_ne!(replica, primary);
    let recovery =
        BackupService { backup_key_id: replica.clone(), ..service_with_key(&ctx, primary.clone()) };
    let report =
        recovery.verify(&BackupChoice::Latest).await.expect("the replica's ARN names the same key");
    assert_eq!(report.backup_id, manifest.backup_id);
    let database = database_name();
    recovery
        .restore(&RestoreRequest {
            backup: BackupChoice::Latest,
            database: database.clone(),
            verify_first: false,
            replace: false,
            confirm_production: None,
            reason: None,
        })
        .await
        .expect("restores through the replica's ARN");

    // Another key is refused before KMS is asked.
    let other = local::ensure_key(kms, &format!("alias/o-{}", uuid::Uuid::new_v4().simple()))
        .await
        .unwrap();
    let err = BackupService { backup_key_id: other, ..service_with_key(&ctx, primary.clone()) }
        .verify(&BackupChoice::Latest)
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::WrongKey { .. }), "{err}");

    // The emulator decrypts with disabled keys too: how a disabled key is
    // named (never as tampering) is checked on KMS's error codes in `keys`.
}

#[tokio::test]
async fn the_backup_role_reads_every_table_and_writes_nothing() {
    let ctx = TestContext::new().await;
    gallery_data(&ctx).await;
    let client = ctx.owner_pool().get().await.unwrap();
    let tables = shared::db::public_tables(&**client).await.unwrap();
    for table in &tables {
        assert!(
            shared::db::backup_table(table).is_some()
                || shared::db::NOT_BACKED_UP.contains(&table.as_str()),
            "table {table} is in no backup: add it to BACKUP_TABLES"
        );
    }
    let as_backup = DbConfig { user: ctx.stack.backup_user.clone(), ..ctx.db.clone() };
    let backup_role = shared::db::connect(&as_backup, &ctx.stack.backup_password).await.unwrap();
    for (table, _) in shared::db::BACKUP_TABLES {
        backup_role
            .query(&format!("SELECT * FROM {table} LIMIT 1"), &[])
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    }
    let denied = backup_role.execute("DELETE FROM artists", &[]).await.unwrap_err();
    assert_eq!(denied.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
}

/// On RDS the migrations create the login roles without a login; the migrate
/// task gives each the password from its secret, so a deployment needs no SQL
/// typed by hand. A fresh NOLOGIN role stands in for one here.
#[tokio::test]
async fn migrating_gives_each_login_role_its_password() {
    let ctx = TestContext::new().await;
    let mut service = service(&ctx).await;
    let role = format!("gallery_app_{}", uuid::Uuid::new_v4().simple());
    let owner = connect_as_owner(&ctx, "postgres").await;
    owner.batch_execute(&format!("CREATE ROLE \"{role}\" NOLOGIN")).await.unwrap();
    let password = secrecy::SecretString::from(uuid::Uuid::new_v4().to_string());
    let as_role = DbConfig { user: role.clone(), ..ctx.db.clone() };
    assert!(
        shared::db::connect(&as_role, &password).await.is_err(),
        "a NOLOGIN role cannot connect"
    );

    service.logins = vec![backup::Login {
        db: as_role.clone(),
        password: shared::aws::LazyPassword::new(
            ctx.clients.clone(),
            shared::config::PasswordSource::Plain(password.clone()),
        ),
    }];
    service.migrate().await.unwrap();
    let client = shared::db::connect(&as_role, &password)
        .await
        .expect("the role logs in with its secret's password");
    client.simple_query("SELECT 1").await.unwrap();
    drop(client);
    // A throwaway cluster: a role left behind by a still-closing session is harmless.
    let _ = owner.batch_execute(&format!("DROP ROLE \"{role}\"")).await;
}

#[tokio::test]
async fn a_drill_without_any_backup_fails_loudly() {
    let ctx = TestContext::new().await;
    let service = service(&ctx).await;
    assert!(matches!(service.restore_drill().await, Err(BackupError::NotFound(_))));
}
