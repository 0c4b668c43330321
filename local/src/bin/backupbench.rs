//! Backups beside `pg_dump -Fc` and restores beside `pg_restore`, on the same
//! databases in one run. Started by `cargo xtask bench backup`, which provides
//! the stack (environment) and PostgreSQL's client programs (`PG_BIN`).
//!
//! For each size: seed a database (gallery tables plus bulk audit rows) to
//! about SIZE_MB, then time
//! - our backup to a local file (the pipeline alone: COPY → zstd → sealing),
//!   in a child process whose peak RSS is read from /proc;
//! - the release `backup` binary through the Lambda Runtime API to the
//!   emulator's S3, with its KMS traffic passing a counting proxy;
//! - `pg_dump -Fc` of the same database to a file (GNU time for its RSS);
//! - our restore of the emulator's backup into an empty database, and
//!   `pg_restore` of the dump into another: three rounds, taking turns to
//!   go first, each from a checkpoint; the median of each.
//!
//! Usage: backupbench SIZE_MB...   |   backupbench to-file DATABASE PATH

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use local::runtime_api::{binary, FunctionProcess, InvocationOutcome, RuntimeApi};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::config::{AwsConfig, DbConfig, Env, RoleConfig};

struct Stack {
    db: DbConfig,
    owner: RoleConfig,
    owner_password: SecretString,
    app_password: SecretString,
    backup_user: String,
    backup_password: SecretString,
    aws: AwsConfig,
    backup_key: String,
    bucket: String,
    env: Vec<(String, String)>,
}

async fn stack() -> Result<Stack> {
    let mut e = Env::from_process();
    let (db, owner, snapshot, aws) = (
        DbConfig::read(&mut e),
        RoleConfig::owner(&mut e),
        RoleConfig::backup(&mut e),
        AwsConfig::read(&mut e),
    );
    let backup_key = e.required("GALLERY_BACKUP_KMS_KEY_ID");
    let bucket = e.required("GALLERY_BACKUPS_BUCKET");
    e.finish(())?;
    let clients = shared::aws::Clients::new(&aws).await;
    let owner_password = clients.database_password(&owner.password).await?;
    let app_password = clients.database_password(&db.password).await?;
    let backup_password = clients.database_password(&snapshot.password).await?;
    let env = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("DATABASE_")
                || k.starts_with("GALLERY_")
                || k.starts_with("AWS_")
                || k == "RUST_LOG"
        })
        .collect();
    Ok(Stack {
        db,
        owner,
        owner_password,
        app_password,
        backup_user: snapshot.user,
        backup_password,
        aws,
        backup_key,
        bucket,
        env,
    })
}

impl Stack {
    fn as_owner(&self, database: &str) -> DbConfig {
        DbConfig { user: self.owner.user.clone(), name: database.to_owned(), ..self.db.clone() }
    }

    async fn create_database(&self, name: &str) -> Result<()> {
        let admin = shared::db::connect(&self.as_owner("postgres"), &self.owner_password).await?;
        // Each on its own: several statements in one call run as one transaction.
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await?;
        Ok(())
    }
}

/// The gallery's tables with 200 artists and their works, then audit rows of
/// mixed text until the database is about `mb` MB.
async fn seed(stack: &Stack, name: &str, mb: u64) -> Result<u64> {
    stack.create_database(name).await?;
    local::migrate(&stack.as_owner(name), &stack.owner.user, &stack.owner_password).await?;
    let client = shared::db::connect(&stack.as_owner(name), &stack.owner_password).await?;
    client
        .batch_execute(
            "INSERT INTO artists (id, name, email, bio)
               SELECT gen_random_uuid(), 'Artist ' || g, 'artist' || g || '@example.org', 'Works in copper and zinc, ' || md5(g::text)
               FROM generate_series(1, 200) g;
             INSERT INTO artworks (id, artist_id, title, slug, description, medium, year, status, published_at)
               SELECT gen_random_uuid(), a.id, 'Plate ' || g, 'plate-' || g, 'Etching on ' || md5(g::text) || ', edition of ' || (g % 50),
                      'etching', 1990 + g % 35, 'published', now() - make_interval(hours => g)
               FROM generate_series(1, 10000) g
               JOIN LATERAL (SELECT id FROM artists ORDER BY id OFFSET (g % 200) LIMIT 1) a ON true;
             INSERT INTO print_editions (id, artwork_id, edition_size, paper, price_minor, currency)
               SELECT gen_random_uuid(), id, 25, 'Hahnemühle 300 g', 45000, 'EUR' FROM artworks;",
        )
        .await?;
    let target = mb * 1_000_000;
    loop {
        let size: i64 =
            client.query_one("SELECT pg_database_size(current_database())", &[]).await?.get(0);
        if size as u64 >= target {
            client.batch_execute("VACUUM ANALYZE").await?;
            return Ok(size as u64);
        }
        client
            .batch_execute(
                "INSERT INTO audit_log (actor, action, target, request_id, detail)
                   SELECT 'token:' || (g % 977), (ARRAY['artwork.update','edition.sale','image.upload','artwork.publish'])[1 + g % 4],
                          'artwork:' || md5((g % 10007)::text), md5(g::text || clock_timestamp()::text),
                          jsonb_build_object('changes', jsonb_build_object('title', 'Plate ' || (g % 10007), 'price_minor', g % 90000),
                                             'note', md5(random()::text) || ' ' || md5(random()::text))
                   FROM generate_series(1, 200000) g",
            )
            .await?;
    }
}

/// CPU seconds the S3/KMS emulator has used so far (it shares this machine's
/// cores with the database during our restores; `pg_restore` reads a file).
fn emulator_cpu_secs() -> f64 {
    let Some(pid) = std::env::var("BENCH_EMULATOR_PID").ok() else { return 0.0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Restores of each kind per size; the table shows the median.
const RESTORE_ROUNDS: usize = 3;

fn median(mut secs: Vec<f64>) -> f64 {
    secs.sort_by(f64::total_cmp);
    secs.get(secs.len() / 2).copied().unwrap_or(0.0)
}

/// Peak RSS of this process so far, in KiB.
fn own_peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Child process: our snapshot pipeline into a local file.
async fn to_file(database: &str, path: &str) -> Result<()> {
    let stack = stack().await?;
    let clients = shared::aws::Clients::new(&stack.aws).await;
    let keys = shared::aws::keys::Keys::new(clients.kms.clone());
    let id = uuid::Uuid::new_v4();
    let started = Instant::now();
    let data_key = keys.generate(&stack.backup_key, &backup::key_context(id)).await?;
    let snapshot =
        DbConfig { user: stack.backup_user.clone(), name: database.to_owned(), ..stack.db.clone() };
    let mut client = shared::db::connect(&snapshot, &stack.backup_password).await?;
    let tx = backup::snapshot_transaction(&mut client).await?;
    let header =
        shared::archive::format::Header::new(id, chrono::Utc::now().to_rfc3339(), rand_prefix());
    let sink = backup::sink::FileSink::create(std::path::Path::new(path)).await?;
    let written = backup::write_snapshot(&tx, &header, &data_key.plaintext, sink).await?;
    tx.commit().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "bytes": written.object_bytes, "secs": secs, "rss_kib": own_peak_rss_kib(), "kms_calls": 1 })
    );
    Ok(())
}

fn rand_prefix() -> [u8; 7] {
    let id = uuid::Uuid::new_v4();
    let mut p = [0u8; 7];
    p.copy_from_slice(&id.as_bytes()[..7]);
    p
}

struct Measured {
    secs: f64,
    rss_kib: u64,
    bytes: u64,
    kms_calls: Option<u64>,
}

/// The release backup binary, cold, through the runtime API: one backup.
async fn ours_to_s3(stack: &Stack, database: &str) -> Result<(Measured, Value)> {
    let upstream = stack.aws.endpoint_url.clone().context("the emulator's endpoint")?;
    let (proxy, counter) = local::proxy::counting(upstream, local::proxy::kms_data_key).await?;
    let mut env = stack.env.clone();
    // Every call through the proxy (it counts only KMS data keys): the
    // function sets its endpoint explicitly, which wins over a per-service
    // variable such as AWS_ENDPOINT_URL_KMS.
    env.retain(|(k, _)| k != "DATABASE_NAME" && k != "AWS_ENDPOINT_URL");
    env.push(("DATABASE_NAME".into(), database.into()));
    env.push(("AWS_ENDPOINT_URL".into(), proxy));
    local::log_in_as(&mut env, "BACKUP_RECORDS");
    let runtime = RuntimeApi::start("copper-gallery-backup", "eu-west-1").await?;
    let event = json!({ "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.scheduler", "account": "123456789012",
                        "time": "2026-12-01T02:00:00Z", "region": "eu-west-1", "resources": [], "detail": { "task": "backup" } });
    let started = Instant::now();
    let process = FunctionProcess::spawn(&binary("backup"), &env, &runtime, 1024)?;
    let outcome = tokio::time::timeout(Duration::from_secs(900), runtime.invoke(&event))
        .await
        .context("no answer in 900 s")?;
    let secs = started.elapsed().as_secs_f64();
    let rss_kib = process.peak_rss_kib().unwrap_or(0);
    match outcome {
        InvocationOutcome::Response(v) => {
            let bytes = v["bytes"].as_u64().unwrap_or(0);
            Ok((Measured { secs, rss_kib, bytes, kms_calls: Some(counter.calls()) }, v))
        }
        InvocationOutcome::Error(e) => bail!("the backup failed: {e:?}\n{}", process.output()),
    }
}

/// Runs a command under GNU time: wall seconds and peak RSS.
fn timed(
    program: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(f64, u64, String)> {
    let started = Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{} failed: {stderr}", program.display());
    }
    let rss = stderr.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    Ok((secs, rss, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn libpq_env(stack: &Stack) -> Vec<(&'static str, String)> {
    vec![
        ("PGHOST", stack.db.host.clone()),
        ("PGPORT", stack.db.port.to_string()),
        ("PGUSER", stack.owner.user.clone()),
        ("PGPASSWORD", secrecy::ExposeSecret::expose_secret(&stack.owner_password).to_owned()),
        ("PGSSLMODE", "verify-full".into()),
        ("PGSSLROOTCERT", stack.db.ca_bundle.display().to_string()),
    ]
}

async fn ours_restore(stack: &Stack, backup_id: uuid::Uuid, target: &str) -> Result<f64> {
    let clients = shared::aws::Clients::new(&stack.aws).await;
    // The backup function's own role, as deployed.
    let mut records = stack.db.clone();
    records.log_in_as(shared::config::RoleConfig::local_function("BACKUP_RECORDS")?);
    let pool = shared::db::pool(&records, &stack.app_password)?;
    let service = backup::BackupService {
        pool,
        snapshot: backup::Login {
            db: stack.db.clone(),
            password: shared::aws::LazyPassword::new(
                clients.clone(),
                shared::config::PasswordSource::Plain(stack.backup_password.clone()),
            ),
        },
        owner: backup::Login {
            db: stack.as_owner(&stack.db.name),
            password: shared::aws::LazyPassword::new(
                clients.clone(),
                shared::config::PasswordSource::Plain(stack.owner_password.clone()),
            ),
        },
        logins: Vec::new(),
        // Locked as the function locks (the lock is one request per object).
        store: shared::aws::storage::ObjectStore::new(&clients, &stack.backup_key).locking(
            shared::aws::storage::Lock { retain: chrono::Duration::hours(1), new_keys_only: true },
        ),
        keys: shared::aws::keys::Keys::new(clients.kms.clone()),
        bucket: stack.bucket.clone(),
        backup_key_id: stack.backup_key.clone(),
        run_deadline: backup::BackupService::default_run_deadline(),
        dr: None,
    };
    let started = Instant::now();
    let request = backup::restore::RestoreRequest {
        backup: shared::operator::BackupChoice::Id(backup_id),
        database: target.to_owned(),
        verify_first: false,
        replace: true,
        confirm_production: None,
        reason: None,
    };
    service.restore(&request).await?;
    Ok(started.elapsed().as_secs_f64())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    // RUST_LOG=backup=info shows where a restore spends its time.
    if std::env::var_os("RUST_LOG").is_some() {
        shared::telemetry::init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("to-file") {
        return to_file(&args[1], &args[2]).await;
    }
    let sizes: Vec<u64> =
        args.iter().map(|a| a.parse().context("sizes are in MB")).collect::<Result<_>>()?;
    let pg_bin = std::path::PathBuf::from(
        std::env::var("PG_BIN").context("PG_BIN: PostgreSQL's client programs")?,
    );
    let stack = stack().await?;
    // The emulator starts empty: the keys and the backups bucket, as `cargo xtask dev` makes them.
    let clients = shared::aws::Clients::new(&stack.aws).await;
    let region = stack.aws.region.clone().unwrap_or_else(|| "eu-west-1".into());
    local::ensure_key(&clients.kms, &stack.backup_key).await?;
    let data_key = local::ensure_key(&clients.kms, &std::env::var("GALLERY_KMS_KEY_ID")?).await?;
    local::ensure_locked_bucket(&clients.s3, &stack.bucket, &region, &data_key, None).await?;
    let scratch = std::env::temp_dir().join(format!("backupbench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut rows = Vec::new();
    for mb in sizes {
        let name = format!("bench_backup_{mb}");
        eprintln!("seeding {name} to about {mb} MB");
        let size = seed(&stack, &name, mb).await?;
        // The backup role reads it as in production.
        let owner = shared::db::connect(&stack.as_owner(&name), &stack.owner_password).await?;
        owner
            .batch_execute(&format!(
                "GRANT CONNECT ON DATABASE \"{name}\" TO {}",
                stack.backup_user
            ))
            .await?;

        eprintln!("{name}: our backup to a file");
        let file = scratch.join(format!("{name}.cpgbak"));
        let me = std::env::current_exe()?;
        let child = std::process::Command::new(&me)
            .args(["to-file", &name, &file.display().to_string()])
            .output()?;
        if !child.status.success() {
            bail!("our backup to a file failed: {}", String::from_utf8_lossy(&child.stderr));
        }
        let v: Value = serde_json::from_slice(
            child.stdout.split(|&b| b == b'\n').find(|l| l.starts_with(b"{")).unwrap_or_default(),
        )?;
        let ours_file = Measured {
            secs: v["secs"].as_f64().unwrap_or(0.0),
            rss_kib: v["rss_kib"].as_u64().unwrap_or(0),
            bytes: v["bytes"].as_u64().unwrap_or(0),
            kms_calls: v["kms_calls"].as_u64(),
        };

        eprintln!("{name}: pg_dump -Fc");
        let dump = scratch.join(format!("{name}.dump"));
        let env = libpq_env(&stack);
        let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (dump_secs, dump_rss, _) = timed(
            &pg_bin.join("pg_dump"),
            &["-Fc", "-f", &dump.display().to_string(), "-d", &name],
            &env_refs,
        )?;
        let dump_bytes = std::fs::metadata(&dump)?.len();

        eprintln!("{name}: the backup function to the emulator");
        let (ours_s3, result) = ours_to_s3(&stack, &name).await?;
        let backup_id: uuid::Uuid = result["backup_id"].as_str().unwrap_or_default().parse()?;

        eprintln!("{name}: restores, {RESTORE_ROUNDS} rounds, taking turns to go first");
        let (mut ours_times, mut pg_times, mut emulator_secs) =
            (Vec::new(), Vec::new(), Vec::new());
        for round in 0..RESTORE_ROUNDS {
            for ours_turn in [round % 2 == 0, round % 2 == 1] {
                // Each into a new database, from a checkpoint and a sync: none
                // pays for writing out what another (or the seeding) left dirty.
                let target = format!("{name}_{}", if ours_turn { "ours" } else { "pg" });
                stack.create_database(&target).await?;
                owner.batch_execute("CHECKPOINT").await?;
                std::process::Command::new("sync").status()?;
                if ours_turn {
                    let before = emulator_cpu_secs();
                    ours_times.push(ours_restore(&stack, backup_id, &target).await?);
                    emulator_secs.push(emulator_cpu_secs() - before);
                } else {
                    let dump = dump.display().to_string();
                    let args = ["-d", &target, "--no-owner", &dump];
                    pg_times.push(timed(&pg_bin.join("pg_restore"), &args, &env_refs)?.0);
                }
            }
        }
        eprintln!(
            "{name}: restore times, ours {ours_times:.2?} s (the emulator's CPU serving the object meanwhile: {emulator_secs:.2?} s; S3's in AWS), pg_restore {pg_times:.2?} s (from a local file)"
        );
        let (ours_restore_secs, pg_restore_secs) = (median(ours_times), median(pg_times));
        for f in [&file, &dump] {
            let _ = std::fs::remove_file(f);
        }
        rows.push((
            mb,
            size,
            ours_file,
            ours_s3,
            dump_secs,
            dump_rss,
            dump_bytes,
            ours_restore_secs,
            pg_restore_secs,
        ));
    }
    println!("backup = one consistent snapshot compressed and encrypted; throughput = database size / wall time; same run, same databases");
    println!(
        "{:>8} {:>20} {:>20} {:>20} {:>10} {:>10} {:>11} {:>11} {:>11} {:>9} {:>14} {:>14} {:>9}",
        "size",
        "ours→file s (RSS)",
        "ours→S3 s (RSS)",
        "pg_dump -Fc s (RSS)",
        "thr file",
        "thr S3",
        "ours bytes",
        "dump bytes",
        "size ratio",
        "KMS keys",
        "restore ours s",
        "pg_restore s",
        "ratio"
    );
    for (mb, size, file, s3, dump_secs, dump_rss, dump_bytes, restore_ours, restore_pg) in rows {
        println!(
            "{:>8} {:>20} {:>20} {:>20} {:>9.2}× {:>9.2}× {:>11} {:>11} {:>10.3}× {:>9} {:>14.2} {:>14.2} {:>8.2}×",
            format!("{mb} MB"),
            format!("{:.2} ({})", file.secs, mib(file.rss_kib)),
            format!("{:.2} ({})", s3.secs, mib(s3.rss_kib)),
            format!("{dump_secs:.2} ({})", mib(dump_rss)),
            dump_secs / file.secs,
            dump_secs / s3.secs,
            s3.bytes,
            dump_bytes,
            s3.bytes as f64 / dump_bytes as f64,
            s3.kms_calls.map_or("-".to_owned(), |n| n.to_string()),
            restore_ours,
            restore_pg,
            restore_pg / restore_ours,
        );
        let _ = (size, file.bytes, file.kms_calls);
    }
    println!("thr = pg_dump -Fc's wall time / ours (≥ 1.0× is as fast or faster); size ratio = our object / pg_dump's file; restore ratio = pg_restore's median time / ours (3 rounds each)");
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
