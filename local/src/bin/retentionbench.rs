//! Retention's deletes beside one DeleteObject per version, on the same
//! seeded emulator in one run. Started by `cargo xtask bench retention`,
//! which provides the stack (environment).
//!
//! Seeds VERSIONS purgeable object versions (default 10,000): 100 artworks
//! deleted past their grace period, each with one rendition key holding
//! VERSIONS / 200 versions in the processed bucket and as many in its DR
//! replica. Then
//! - **ours**: the release `retention` binary, cold, through the Lambda
//!   Runtime API (one scheduled sweep), its S3 traffic through a counting
//!   proxy: wall time, peak RSS, DeleteObjects calls on the wire;
//! - **per version**: the same data seeded again, deleted the way retention
//!   used to: list each key's versions, one DeleteObject per version.
//!
//! The call count is the target: ⌈versions / 1,000⌉ per bucket. Time is
//! informational.
//!
//! Usage: retentionbench [VERSIONS]

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures_util::StreamExt;
use local::runtime_api::{binary, FunctionProcess, InvocationOutcome, RuntimeApi};
use serde_json::json;
use shared::aws::storage::ObjectStore;
use shared::config::FromEnv;
use uuid::Uuid;

const ARTWORKS: usize = 100;

#[tokio::main]
async fn main() -> Result<()> {
    let versions: usize = std::env::args().nth(1).map(|v| v.parse()).transpose()?.unwrap_or(10_000);
    ensure!(
        versions >= 2 * ARTWORKS && versions.is_multiple_of(2 * ARTWORKS),
        "VERSIONS must be a multiple of {}",
        2 * ARTWORKS
    );
    let config = retention::RetentionConfig::from_env()?;
    let backup = backup::BackupConfig::from_env()?;
    let clients = shared::aws::Clients::new(&config.common.aws).await;
    let region = config.common.aws.region.clone().unwrap_or_else(|| "eu-west-1".into());
    let data_key = local::provision(&clients, &config, &region).await?;
    let owner_password = clients.database_password(&backup.owner.password).await?;
    local::migrate(&config.common.db, &backup.owner.user, &owner_password).await?;
    let pool = shared::db::pool(
        &config.common.db,
        &clients.database_password(&config.common.db.password).await?,
    )?;
    let store = ObjectStore::new(&clients, &data_key);
    let replica = store.with_s3(clients.s3_in(&config.common.aws, &config.replica.region, None));
    let per_key = versions / (2 * ARTWORKS);

    println!("seeding {versions} object versions ({ARTWORKS} deleted artworks × {per_key} versions, processed bucket and its replica)");
    let keys = seed(&pool, &store, &replica, &config, per_key).await?;
    let ours = ours(&config).await?;
    ensure!(left(&store, &replica, &config, &keys).await? == 0, "our sweep left versions behind");

    println!("seeding the same again for the per-version peer");
    let keys = seed(&pool, &store, &replica, &config, per_key).await?;
    let upstream = config.common.aws.endpoint_url.clone().context("the emulator's endpoint")?;
    let (proxy, calls) = local::proxy::counting(upstream, local::proxy::s3_delete_object).await?;
    let proxied =
        shared::config::AwsConfig { endpoint_url: Some(proxy), ..config.common.aws.clone() };
    let proxied_clients = shared::aws::Clients::new(&proxied).await;
    let peer_replica = proxied_clients.s3_in(&proxied, &config.replica.region, None);
    let started = Instant::now();
    for key in &keys {
        per_version_delete(
            &proxied_clients.s3,
            &store,
            &config.common.storage.processed_bucket,
            key,
        )
        .await?;
        per_version_delete(&peer_replica, &replica, &config.replica.processed_bucket, key).await?;
    }
    let peer_secs = started.elapsed().as_secs_f64();
    let (peer_calls, peer_delete_secs) = (calls.calls(), calls.seconds());
    ensure!(left(&store, &replica, &config, &keys).await? == 0, "the peer left versions behind");

    let per_bucket = versions / 2;
    let target = 2 * per_bucket.div_ceil(shared::aws::storage::MAX_BATCH);
    println!();
    println!(
        "| {versions} versions, 2 buckets | wall s | delete calls | s in delete calls | peak RSS |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| retention (release binary, cold) | {:.2} | {} DeleteObjects | {:.2} | {:.1} MiB |",
        ours.secs,
        ours.calls,
        ours.delete_secs,
        ours.rss_kib as f64 / 1024.0
    );
    println!("| one DeleteObject per version | {peer_secs:.2} | {peer_calls} DeleteObject | {peer_delete_secs:.2} | - |");
    println!();
    println!(
        "DeleteObjects calls: {} (target ⌈{per_bucket}/1000⌉ × 2 buckets = {target}); time in delete calls, per-version / ours: {:.0}×",
        ours.calls,
        peer_delete_secs / ours.delete_secs
    );
    println!("(The rest of both wall times is listing: the emulator answers ListObjectVersions by scanning the whole bucket.)");
    if ours.calls != target as u64 {
        bail!("{} DeleteObjects calls, the target is {target}", ours.calls);
    }
    Ok(())
}

struct Ours {
    secs: f64,
    calls: u64,
    delete_secs: f64,
    rss_kib: u64,
}

/// One scheduled sweep by the release binary, its S3 calls counted on the wire.
async fn ours(config: &retention::RetentionConfig) -> Result<Ours> {
    let upstream = config.common.aws.endpoint_url.clone().context("the emulator's endpoint")?;
    let (proxy, calls) = local::proxy::counting(upstream, local::proxy::s3_delete_objects).await?;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("DATABASE_")
                || k.starts_with("GALLERY_")
                || k.starts_with("AWS_")
                || k.starts_with("RETENTION_")
        })
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL" && k != "DATABASE_POOL_SIZE")
        .collect();
    local::log_in_as(&mut env, "RETENTION");
    // As Terraform configures it: one pooled connection.
    env.extend([
        ("AWS_ENDPOINT_URL".into(), proxy),
        ("DATABASE_POOL_SIZE".into(), "1".into()),
        ("RUST_LOG".into(), "warn".into()),
    ]);
    let runtime = RuntimeApi::start("copper-gallery-retention", "eu-west-1").await?;
    let event = json!({ "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.scheduler", "account": "123456789012",
                        "time": chrono::Utc::now().to_rfc3339(), "region": "eu-west-1", "resources": [], "detail": { "task": "retention" } });
    let started = Instant::now();
    let process = FunctionProcess::spawn(&binary("retention"), &env, &runtime, 512)?;
    let outcome = tokio::time::timeout(Duration::from_secs(900), runtime.invoke(&event))
        .await
        .context("no answer in 900 s")?;
    let secs = started.elapsed().as_secs_f64();
    let rss_kib = process.peak_rss_kib().unwrap_or(0);
    match outcome {
        InvocationOutcome::Response(report) => {
            let reported: u64 = report["buckets"]
                .as_object()
                .map(|b| b.values().filter_map(|t| t["delete_requests"].as_u64()).sum())
                .unwrap_or(0);
            let (delete_secs, calls) = (calls.seconds(), calls.calls());
            ensure!(
                reported == calls,
                "the report says {reported} DeleteObjects calls, the wire saw {calls}"
            );
            ensure!(report["failures_total"] == 0, "the sweep reported failures: {report}");
            Ok(Ours { secs, calls, delete_secs, rss_kib })
        }
        InvocationOutcome::Error(e) => bail!("the sweep failed: {e:?}\n{}", process.output()),
    }
}

/// Deleted artworks past their grace, each with one rendition key holding
/// `per_key` versions in the processed bucket and in its replica.
async fn seed(
    pool: &deadpool_postgres::Pool,
    store: &ObjectStore,
    replica: &ObjectStore,
    config: &retention::RetentionConfig,
    per_key: usize,
) -> Result<Vec<String>> {
    let client = pool.get().await?;
    let email = format!("{}@bench.example", Uuid::new_v4().simple());
    let artist = shared::db::insert_artist(&client, "Bench Artist", &email, None, None).await?;
    let mut keys = Vec::new();
    for i in 0..ARTWORKS {
        let new =
            shared::domain::NewArtwork::titled(format!("bench {} {i}", Uuid::new_v4().simple()));
        let artwork = shared::db::insert_artwork(
            &client,
            artist.id,
            &new.validate().map_err(|e| anyhow::anyhow!("{e:?}"))?,
        )
        .await?;
        client
            .execute(
                "UPDATE artworks SET deleted_at = now() - interval '400 days' WHERE id = $1",
                &[&artwork.id],
            )
            .await?;
        keys.push(shared::domain::rendition_key(artwork.id, Uuid::new_v4(), 400, "jpg"));
    }
    let started = Instant::now();
    // One version of every key at a time: the emulator loses versions written
    // to the same key concurrently.
    for v in 0..per_key {
        let puts = keys.iter().flat_map(|k| {
            [
                (store, &config.common.storage.processed_bucket, k),
                (replica, &config.replica.processed_bucket, k),
            ]
        });
        let results: Vec<Result<_, _>> = futures_util::stream::iter(puts)
            .map(|(store, bucket, key)| async move {
                store.put(bucket, key, vec![(v % 251) as u8; 64], "image/jpeg").await
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for r in results {
            r?;
        }
    }
    println!("  seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(keys)
}

/// Versions left under the seeded keys, both buckets.
async fn left(
    store: &ObjectStore,
    replica: &ObjectStore,
    config: &retention::RetentionConfig,
    keys: &[String],
) -> Result<usize> {
    let mut n = 0;
    for key in keys {
        n += store.versions_under(&config.common.storage.processed_bucket, key).await?.0.len();
        n += replica.versions_under(&config.replica.processed_bucket, key).await?.0.len();
    }
    Ok(n)
}

/// What retention did before batching: list a key's versions, delete each on its own.
async fn per_version_delete(
    s3: &aws_sdk_s3::Client,
    lister: &ObjectStore,
    bucket: &str,
    key: &str,
) -> Result<()> {
    let (versions, _) = lister.versions_under(bucket, key).await?;
    for v in versions {
        s3.delete_object().bucket(bucket).key(&v.key).set_version_id(v.version_id).send().await?;
    }
    Ok(())
}
