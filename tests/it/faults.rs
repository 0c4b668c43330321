//! Faults on the real services: the project's own PostgreSQL and emulator
//! processes paused, resumed and crash-restarted while the gallery works.
//!
//! These stop the whole stack, so they cannot share it with the suite: each
//! is `#[ignore]`d, and `cargo xtask reliability` runs them one at a time on
//! a stack of their own, naming its processes in `GALLERY_FAULT_POSTGRES_PID`
//! and `GALLERY_FAULT_EMULATOR_PID`, and how to start the emulator again in
//! `GALLERY_FAULT_EMULATOR_COMMAND` (its process id then goes to
//! `GALLERY_FAULT_EMULATOR_PIDFILE`, for xtask to stop). Each asserts what
//! must not change as well as the error.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::api::{Gallery, Req};

use crate::support::{strings, TestContext, BACKUP_RECORDS};

/// A process tree of the stack, paused and resumed with SIGSTOP/SIGCONT.
struct Service {
    pids: Vec<u32>,
}

impl Service {
    fn named(variable: &str) -> Self {
        let root: u32 = std::env::var(variable)
            .unwrap_or_else(|_| {
                panic!("{variable}: run the fault tests with `cargo xtask reliability`")
            })
            .parse()
            .unwrap();
        Self { pids: std::iter::once(root).chain(children(root)).collect() }
    }

    fn postgres() -> Self {
        Self::named("GALLERY_FAULT_POSTGRES_PID")
    }

    fn emulator() -> Self {
        Self::named("GALLERY_FAULT_EMULATOR_PID")
    }

    fn signal(&self, signal: &str) {
        for pid in &self.pids {
            let _ = std::process::Command::new("kill").args([signal, &pid.to_string()]).status();
        }
    }

    fn pause(&self) -> Paused<'_> {
        self.signal("-STOP");
        Paused(self)
    }
}

/// Resumes the service when dropped, so a failing test leaves the stack running.
struct Paused<'a>(&'a Service);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.signal("-CONT");
    }
}

/// Every process whose parent is `pid` (PostgreSQL's backends and workers).
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`: the command may hold spaces, so split after `)`.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if parent.and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// Stops the emulator (SIGKILL: connections are refused from then on) and
/// starts a fresh one on the same port when dropped. Its state is gone, as
/// the next test's own buckets and keys do not need it.
struct StoppedEmulator;

impl StoppedEmulator {
    fn stop() -> Self {
        Service::emulator().signal("-KILL");
        if let Ok(pid) = std::fs::read_to_string(pidfile()) {
            let _ = std::process::Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        Self
    }
}

fn pidfile() -> String {
    std::env::var("GALLERY_FAULT_EMULATOR_PIDFILE").expect("GALLERY_FAULT_EMULATOR_PIDFILE")
}

impl Drop for StoppedEmulator {
    fn drop(&mut self) {
        let command = std::env::var("GALLERY_FAULT_EMULATOR_COMMAND")
            .expect("GALLERY_FAULT_EMULATOR_COMMAND");
        let mut words = command.split(' ');
        let mut child = std::process::Command::new(words.next().unwrap_or_default())
            .args(words)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the emulator starts again");
        std::fs::write(pidfile(), child.id().to_string()).unwrap();
        // Reaped when xtask stops it after the run.
        std::thread::spawn(move || child.wait());
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
        let address = endpoint.trim_start_matches("http://").to_owned();
        let started = Instant::now();
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the emulator did not come back");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Kills one backend: PostgreSQL then ends every session and recovers, as
/// after a crash or a restart; the postmaster stays, so the stack does too.
async fn crash_restart_postgres(ctx: &TestContext) {
    let pid: i32 = ctx
        .owner_pool()
        .get()
        .await
        .unwrap()
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
}

/// Waits until PostgreSQL answers again.
async fn until_postgres_answers(ctx: &TestContext) {
    let started = Instant::now();
    loop {
        if let Ok(client) = shared::db::connect(&ctx.owner_db(), &ctx.stack.owner_password).await {
            if client.simple_query("SELECT 1").await.is_ok() {
                return;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "PostgreSQL did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The most a request may take while the database is paused: the pool's
/// wait for a connection (connect timeout + 1 s), the statement timeout,
/// and a margin for the machine.
fn request_ceiling(ctx: &TestContext) -> Duration {
    ctx.db.connect_timeout * 2 + ctx.db.statement_timeout + Duration::from_secs(5)
}

#[tokio::test]
#[ignore = "stops the stack's PostgreSQL: cargo xtask reliability runs it"]
async fn postgres_paused_is_503_with_retry_after_then_recovers_without_a_restart() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::with_state(ctx.api_state());
    gallery.expect(200, Req::get("/v1/artworks")).await;
    let postgres = Service::postgres();
    {
        let _paused = postgres.pause();
        for req in [Req::get("/v1/artworks"), Req::get("/v1/me").token("cpg_anything")] {
            let started = Instant::now();
            let reply = gallery.send(req).await;
            let took = started.elapsed();
            assert_eq!(reply.status, 503, "{}", reply.problem());
            assert!(reply.header("retry-after").is_some(), "a 503 says when to retry");
            assert!(
                took <= request_ceiling(&ctx),
                "answered after {took:?}, past the configured timeouts"
            );
        }
    }
    until_postgres_answers(&ctx).await;
    // The same state (pool, clients): no restart of the function.
    let started = Instant::now();
    loop {
        if gallery.send(Req::get("/v1/artworks")).await.status == 200 {
            break;
        }
        assert!(started.elapsed() < request_ceiling(&ctx), "the API did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "stops the stack's PostgreSQL: cargo xtask reliability runs it"]
async fn postgres_paused_mid_query_is_503_by_the_request_deadline_and_changes_nothing() {
    let ctx = TestContext::new().await;
    let state = ctx.api_state();
    let deadline = state.request_deadline;
    let gallery = Gallery::with_state(state);
    let (_, token) = ctx.artist_with_token("Ada Copper").await;
    let created = gallery
        .expect(
            201,
            Req::new("POST", "/v1/me/artworks")
                .token(&token)
                .json(&serde_json::json!({ "title": "Before" })),
        )
        .await;
    let (id, etag) = (created.id(), created.etag());
    // Another session holds the artwork's row, so the update below is inside
    // its UPDATE, waiting, when the server stops answering.
    let mut owner = shared::db::connect(&ctx.owner_db(), &ctx.stack.owner_password).await.unwrap();
    let holder = owner.transaction().await.unwrap();
    holder
        .execute(&format!("SELECT 1 FROM artworks WHERE id = '{id}' FOR UPDATE"), &[])
        .await
        .unwrap();
    let update = gallery.send(
        Req::new("PATCH", &format!("/v1/manage/artworks/{id}"))
            .token(&token)
            .if_match(&etag)
            .json(&serde_json::json!({ "title": "After" })),
    );
    tokio::pin!(update);
    let postgres = Service::postgres();
    let reply = tokio::select! {
        reply = &mut update => panic!("the update finished while its row was held: {}", reply.status),
        () = tokio::time::sleep(Duration::from_millis(500)) => {
            let _paused = postgres.pause();
            let started = Instant::now();
            let reply = tokio::time::timeout(deadline + Duration::from_secs(10), &mut update)
                .await
                .unwrap_or_else(|_| panic!("no answer {:?} after the database stopped", started.elapsed()));
            assert!(started.elapsed() <= deadline + Duration::from_secs(2), "past the deadline: {:?}", started.elapsed());
            reply
        }
    };
    assert_eq!(reply.status, 503, "{}", reply.problem());
    assert!(reply.header("retry-after").is_some(), "a 503 says when to retry");
    holder.rollback().await.unwrap();
    until_postgres_answers(&ctx).await;
    let title = strings(
        &ctx.owner_pool().get().await.unwrap(),
        &format!("SELECT title FROM artworks WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(title, ["Before"], "the abandoned update changed nothing");
}

#[tokio::test]
#[ignore = "restarts the stack's PostgreSQL: cargo xtask reliability runs it"]
async fn postgres_restarted_mid_backup_fails_cleanly_and_the_next_run_succeeds() {
    let ctx = TestContext::new().await;
    crate::backups::gallery_data(&ctx).await;
    crate::backups::bulk(&ctx, 40_000).await;
    let service = crate::backups::service(&ctx).await;
    let s3 = &ctx.clients.s3;
    let bucket = &ctx.storage.backups_bucket;
    let upload_started = async {
        loop {
            let uploads = s3.list_multipart_uploads().bucket(bucket).send().await.unwrap();
            if !uploads.uploads().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let backup = service.backup();
    tokio::pin!(backup);
    tokio::select! {
        outcome = &mut backup => panic!("the backup finished before the restart: {outcome:?}"),
        () = upload_started => crash_restart_postgres(&ctx).await,
    }
    let failed = backup.await.expect_err("a restart mid-backup fails the run");
    assert!(failed.is_retryable(), "a restart is worth retrying: {failed}");
    until_postgres_answers(&ctx).await;

    let uploads = s3.list_multipart_uploads().bucket(bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "no multipart upload left open");
    let keys = service.store.list_keys(bucket, "backups/").await.unwrap();
    assert!(keys.is_empty(), "nothing that looks like a backup: {keys:?}");

    let next = crate::backups::service(&ctx).await;
    next.backup().await.expect("the next backup");
    let statuses = strings(
        &ctx.pool_as(BACKUP_RECORDS).get().await.unwrap(),
        "SELECT status FROM backups ORDER BY started_at",
    )
    .await;
    // The failed run is recorded failed, or (when PostgreSQL was still
    // recovering as it tried) left running until a later run past its
    // deadline marks it failed; never succeeded. The throwaway cluster runs
    // with `synchronous_commit = off`, so the crash may also take its row.
    let statuses: Vec<&str> = statuses.iter().map(String::as_str).collect();
    assert!(
        matches!(statuses[..], ["failed" | "running", "succeeded"] | ["succeeded"]),
        "only the next run succeeded: {statuses:?}"
    );
}

#[tokio::test]
#[ignore = "stops the stack's emulator: cargo xtask reliability runs it"]
async fn emulator_stopped_makes_backup_and_processing_fail_retryably_and_marks_nothing_done() {
    let ctx = TestContext::new().await;
    crate::backups::gallery_data(&ctx).await;
    let service = crate::backups::service(&ctx).await;
    let (image, post) = crate::processor::upload_slot(&ctx, "plate.png").await;
    let uploaded = crate::support::post_form(&post, &crate::processor::png(64, 48)).await;
    assert!((200..300).contains(&uploaded), "upload answered {uploaded}");
    let key = post
        .fields
        .iter()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.clone())
        .expect("the form names its key");
    let processor = ctx.processor();
    let before = crate::api::snapshot(&ctx.pool.get().await.unwrap()).await;
    let (backup, processing) = {
        let _stopped = StoppedEmulator::stop();
        let started = Instant::now();
        let backup = service.backup().await.expect_err("no S3, no KMS: no backup");
        let processing = processor
            .process(&ctx.storage.originals_bucket, &key)
            .await
            .expect_err("no S3: nothing processed");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "refused connections fail fast: {:?}",
            started.elapsed()
        );
        (backup, processing)
    };
    assert!(backup.is_retryable(), "{backup}");
    assert!(processing.is_retryable(), "{processing}");
    let statuses =
        strings(&ctx.pool_as(BACKUP_RECORDS).get().await.unwrap(), "SELECT status FROM backups")
            .await;
    assert!(!statuses.contains(&"succeeded".to_owned()), "no backup marked done: {statuses:?}");
    let image_status = strings(
        &ctx.pool.get().await.unwrap(),
        &format!("SELECT status FROM images WHERE id = '{image}'"),
    )
    .await;
    assert!(
        image_status.iter().all(|s| s != "ready" && s != "failed"),
        "the image is neither ready nor failed: {image_status:?}"
    );
    let after = crate::api::snapshot(&ctx.pool.get().await.unwrap()).await;
    assert_eq!(before.get("artworks"), after.get("artworks"), "the catalogue did not change");
}

// The faults below need no process stopped: they share the suite's stack, run
// in every `cargo xtask test`, and the reliability table runs them as rows.

/// Every rendition key in the processed bucket, with the SHA-256 of its current bytes.
async fn renditions_stored(ctx: &TestContext) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    let store = shared::aws::storage::ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let mut found = std::collections::BTreeMap::new();
    for key in store.list_keys(&ctx.storage.processed_bucket, "renditions/").await.unwrap() {
        let bytes = store.get(&ctx.storage.processed_bucket, &key, 64 << 20).await.unwrap();
        found.insert(key, format!("{:x}", sha2::Sha256::digest(&bytes)));
    }
    found
}

#[tokio::test]
async fn duplicate_and_out_of_order_upload_events_make_one_set_of_renditions() {
    use image_processor::renditions::ProcessOutcome;
    let ctx = TestContext::new().await;
    let mut uploads = Vec::new();
    let slots = crate::processor::upload_slots(&ctx, &["first.png", "second.png"]).await;
    for ((image, post), (w, h)) in slots.into_iter().zip([(1600, 900), (900, 1600)]) {
        let status = crate::support::post_form(&post, &crate::processor::png(w, h)).await;
        assert_eq!(status, 201);
        uploads.push((image, post.field("key").unwrap().to_owned()));
    }
    let processor = ctx.processor();
    let event = |key: &str| local::object_created_event(&ctx.storage.originals_bucket, key, 0);
    let (first, second) = (&uploads[0].1, &uploads[1].1);
    // Out of order: the second upload's event first, then three copies of the
    // first's at once (S3 delivers at least once), then late copies of both.
    let mut outcomes = image_processor::handle(event(second).unwrap(), &processor).await.unwrap();
    let copies = (0..3).map(|_| image_processor::handle(event(first).unwrap(), &processor));
    for copy in futures_util::future::join_all(copies).await {
        outcomes.extend(copy.expect("a duplicate is not an error"));
    }
    let late = image_processor::handle(event(second).unwrap(), &processor).await.unwrap();
    assert_eq!(late, [ProcessOutcome::AlreadyFinished]);
    let late = image_processor::handle(event(first).unwrap(), &processor).await.unwrap();
    assert_eq!(late, [ProcessOutcome::AlreadyFinished]);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ProcessOutcome::Ready { .. } | ProcessOutcome::AlreadyFinished)),
        "a duplicate never reports a failure: {outcomes:?}"
    );

    let stored = renditions_stored(&ctx).await;
    let mut recorded = std::collections::BTreeMap::new();
    for (image, _) in &uploads {
        let row = crate::processor::image_row(&ctx, image).await;
        assert_eq!(row.status, shared::domain::ImageStatus::Ready, "{row:?}");
        assert!(row.failure_reason.is_none(), "{row:?}");
        assert_eq!(row.renditions.len(), 6);
        recorded.extend(row.renditions.into_iter().map(|r| (r.key, r.sha256)));
    }
    assert_eq!(stored, recorded, "one set of renditions, exactly what the rows record");
    let originals = ctx
        .clients
        .s3
        .list_object_versions()
        .bucket(&ctx.storage.originals_bucket)
        .send()
        .await
        .unwrap();
    assert!(originals.versions().is_empty(), "both originals are gone");
}

/// What retention must keep, as one comparable value: the live and the
/// recently deleted work's rows, and their versions in every bucket.
async fn kept(ctx: &TestContext, works: &[uuid::Uuid]) -> Vec<(String, [usize; 3])> {
    let client = ctx.pool.get().await.unwrap();
    let mut digest = Vec::new();
    for id in works {
        let row = client
            .query_one(
                "SELECT a.slug || '/' || coalesce(a.deleted_at::text, 'live') || '/' || \
                 (SELECT string_agg(i.id::text || i.status || i.renditions::text, ',') FROM images i WHERE i.artwork_id = a.id) \
                 FROM artworks a WHERE a.id = $1",
                &[id],
            )
            .await
            .unwrap();
        digest.push((row.get(0), crate::retention_policy::left(ctx, *id).await));
    }
    digest
}

/// Versions under every artwork in the primary buckets and the replica.
async fn all_versions(ctx: &TestContext) -> usize {
    use crate::retention_policy::versions_under;
    versions_under(&ctx.clients.s3, &ctx.storage.originals_bucket, "originals/").await
        + versions_under(&ctx.clients.s3, &ctx.storage.processed_bucket, "renditions/").await
        + versions_under(&ctx.replica_s3(), &ctx.replica.processed_bucket, "renditions/").await
}

#[tokio::test]
async fn a_retention_sweep_killed_at_random_points_is_finished_by_the_next_run_and_keeps_what_it_must(
) {
    use crate::retention_policy::{delete_days_ago, left, policy, run, work};
    use rand::{Rng, SeedableRng};
    let ctx = TestContext::new().await;
    let (artist, _) = ctx.artist_with_token("Interrupted Artist").await;
    let live = work(&ctx, artist, "kept-live").await.id;
    let recent = work(&ctx, artist, "kept-recent").await.id;
    delete_days_ago(&ctx, recent, 5).await;
    let before = kept(&ctx, &[live, recent]).await;
    for seed in [1u64, 2, 3, 5, 8] {
        let mut expired = Vec::new();
        for i in 0..4 {
            let w = work(&ctx, artist, &format!("expired-{seed}-{i}")).await;
            delete_days_ago(&ctx, w.id, 40 + i).await;
            expired.push(w.id);
        }
        // Killed after a delay drawn from the seed: the purge deletes a
        // bucket's versions in one request per thousand, so the points that
        // matter are between the statements and requests of the first
        // milliseconds. The task is aborted and its pool dropped, as a
        // Lambda timeout ends the process and PostgreSQL rolls back.
        let delay = rand::rngs::StdRng::seed_from_u64(seed).random_range(0..120);
        let retention = ctx.retention(policy());
        let sweep =
            tokio::spawn(async move { retention.run(&retention::Sweep::at(Utc::now())).await });
        tokio::time::sleep(Duration::from_millis(delay)).await;
        sweep.abort();
        let finished = matches!(sweep.await, Ok(Ok(_)));
        let rows: i64 = ctx
            .pool
            .get()
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM artworks WHERE id = ANY($1)", &[&expired])
            .await
            .unwrap()
            .get(0);
        eprintln!(
            "seed {seed}: killed after {delay} ms{}: {rows} of 4 rows and {} object versions left",
            if finished { " (it had finished)" } else { "" },
            all_versions(&ctx).await
        );
        assert_eq!(kept(&ctx, &[live, recent]).await, before, "seed {seed}: the killed run kept");

        let report = run(&ctx, policy()).await;
        assert!(report.succeeded(), "seed {seed}: {report:#?}");
        for id in &expired {
            assert_eq!(left(&ctx, *id).await, [0, 0, 0], "seed {seed}: {id} is gone everywhere");
        }
        let rows: i64 = ctx
            .pool
            .get()
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM artworks WHERE id = ANY($1)", &[&expired])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 0, "seed {seed}: the rows are gone");
        assert_eq!(kept(&ctx, &[live, recent]).await, before, "seed {seed}: the next run kept");
    }
    assert!(run(&ctx, policy()).await.is_idle());
}

/// A KMS endpoint that refuses every request as AWS refuses a disabled key
/// (JSON 1.1 protocol: the error code in `__type`). The emulator does not
/// enforce key state, so this stands in for AWS's answer; the function is
/// pointed at it with the SDK's standard `AWS_ENDPOINT_URL_KMS`.
async fn refusing_kms() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                // The head, then as many body bytes as it announces.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    let Some(end) = text.find("\r\n\r\n") else { continue };
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                let body = r#"{"__type":"DisabledException","message":"The key is disabled."}"#;
                let response = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\n\
                     x-amzn-requestid: refused\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn kms_refusing_the_backup_key_is_a_clear_failure_with_its_metric_and_nothing_written() {
    use crate::lambda_runtime::{lambda_env, Running};
    use local::runtime_api::InvocationOutcome;
    let ctx = TestContext::new().await;
    ctx.artist_with_token("Ada Copper").await;
    let f = crate::terraform::functions().into_iter().find(|f| f.binary == "backup").unwrap();
    let mut env = lambda_env(&ctx, &f).await;
    env.push(("AWS_ENDPOINT_URL_KMS".to_owned(), refusing_kms().await));
    let backup = Running::start_with("backup", &env, f.memory).await;
    let scheduled: serde_json::Value =
        serde_json::from_str(include_str!("../../events/scheduled-backup.json")).unwrap();
    let InvocationOutcome::Error(error) = backup.invoke(&scheduled).await else {
        panic!("a backup under a refused key cannot succeed:\n{}", backup.process.output());
    };
    let printed = backup.process.output();
    assert!(error.error_message.contains("the key is disabled"), "{error:?}\n{printed}");
    assert!(printed.contains("\"BackupFailed\":1.0"), "the failure metric:\n{printed}");
    let (status, recorded): (String, Option<String>) = {
        let client = ctx.pool_as(BACKUP_RECORDS).get().await.unwrap();
        let row = client.query_one("SELECT status, error FROM backups", &[]).await.unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(status, "failed");
    assert!(recorded.is_some_and(|e| e.contains("the key is disabled")));
    let store = shared::aws::storage::ObjectStore::new(&ctx.clients, &ctx.storage.data_key_id);
    let keys = store.list_keys(&ctx.storage.backups_bucket, "").await.unwrap();
    assert!(keys.is_empty(), "nothing written, encrypted or not: {keys:?}");
    let uploads = ctx
        .clients
        .s3
        .list_multipart_uploads()
        .bucket(&ctx.storage.backups_bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "no upload begun");
}

#[tokio::test]
#[ignore = "restarts the stack's PostgreSQL: cargo xtask reliability runs it"]
async fn postgres_restarted_mid_restore_fails_cleanly_and_the_next_drill_and_restore_succeed() {
    let ctx = TestContext::new().await;
    crate::backups::gallery_data(&ctx).await;
    crate::backups::bulk(&ctx, 40_000).await;
    let service = crate::backups::service(&ctx).await;
    let manifest = service.backup().await.expect("the backup to restore");
    let owner = ctx.owner_pool().get().await.unwrap();
    let scratch_exists = async {
        loop {
            let n: i64 = owner
                .query_one(
                    "SELECT count(*) FROM pg_database WHERE datname LIKE 'gallery\\_drill\\_%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n > 0 {
                // Let the load get under way.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let drill = service.restore_drill();
    tokio::pin!(drill);
    tokio::select! {
        outcome = &mut drill => panic!("the drill finished before the restart: {outcome:?}"),
        () = scratch_exists => crash_restart_postgres(&ctx).await,
    }
    drop(owner);
    let failed = drill.await.expect_err("a restart mid-restore fails the drill");
    eprintln!("the interrupted drill: {failed}");
    until_postgres_answers(&ctx).await;

    // The same service, as the next scheduled invocation would have it.
    let proved = service.restore_drill().await.expect("the next drill");
    assert_eq!(proved.backup_id, manifest.backup_id);
    assert_eq!(proved.rows["audit_log"], manifest.rows()["audit_log"]);
    let owner = ctx.owner_pool().get().await.unwrap();
    let leftovers: i64 = owner
        .query_one("SELECT count(*) FROM pg_database WHERE datname LIKE 'gallery\\_drill\\_%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0, "the interrupted drill's scratch database is gone");
    let statuses = strings(
        &ctx.pool_as(BACKUP_RECORDS).get().await.unwrap(),
        "SELECT status FROM restore_drills ORDER BY started_at",
    )
    .await;
    assert_eq!(statuses.last().map(String::as_str), Some("succeeded"), "{statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| s != "succeeded"),
        "the interrupted drill is never recorded as proof: {statuses:?}"
    );
    // And an operator's restore of the same backup goes through.
    let request = backup::restore::RestoreRequest {
        backup: shared::operator::BackupChoice::Id(manifest.backup_id),
        database: crate::backups::database_name(),
        verify_first: true,
        replace: false,
        confirm_production: None,
        reason: None,
    };
    let restored = service.restore(&request).await.expect("a restore after the restart");
    assert_eq!(restored.rows["audit_log"], manifest.rows()["audit_log"]);
}
