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
