//! The API under load beside the same SQL run directly, in one run. Started
//! by `cargo xtask bench api`, which provides the stack (environment) and
//! `OHA` (the load tool).
//!
//! Seeds 10,000 artworks across 200 artists (9,000 published), each with an
//! edition, its sales and a ready image, and a description drawn from a
//! vocabulary; serves the API router on loopback, exactly as `cargo xtask
//! dev` does; drives five requests at a fixed rate with oha (public list, get
//! by slug over random slugs, a search for a random word of the catalogue, the
//! list sorted by title, an authenticated sale), then runs the queries those
//! handlers run, through the same `shared::db` functions on one direct TLS
//! connection, at the same rate. Prints p50/p99 of both and their ratio.
//!
//! Usage: apibench [RATE] [SECONDS]
//!
//! `apibench soak SLICES SECONDS READ_RATE WRITE_RATE`: the same seeded API
//! held under a mix of reads (random slugs) and writes (sales, past the
//! per-token write limit) at fixed rates, far above its pool, for SLICES
//! slices of SECONDS each; per slice p50/p99, status codes, the process's
//! RSS and the most database connections the API held. Holds when every
//! answer is 2xx, 429 or 503, RSS does not grow from the first slice to the
//! last (10% allowed for the allocator), and connections stay within the pool.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use shared::config::FromEnv;
use shared::db::{self, GalleryFilter};
use tokio::time::MissedTickBehavior;

const ARTWORKS: i64 = 10_000;
const ARTISTS: i64 = 200;

/// The words descriptions are drawn from (six each, out of 190): a search for
/// one finds a few hundred of the 9,000 published works, as a word of a real
/// catalogue would.
#[rustfmt::skip]
const VOCABULARY: [&str; 190] = [
    "harbour", "dawn", "copper", "meadow", "cliffs", "river", "winter", "lantern", "orchard",
    "fog", "tide", "sparrow", "quarry", "bridge", "market", "cathedral", "willow", "storm",
    "garden", "lighthouse", "heron", "furrow", "chapel", "moorland", "kiln", "loom", "estuary",
    "vineyard", "glacier", "ferry", "mill", "thistle", "beacon", "dune", "causeway", "granary",
    "lagoon", "meridian", "nocturne", "pasture", "abbey", "alder", "anchor", "archway", "aspen",
    "autumn", "avalanche", "badger", "barley", "barn", "basalt", "bay", "beech", "birch",
    "bittern", "blackbird", "bluebell", "boat", "boulder", "bracken", "bramble", "breakwater",
    "brook", "buoy", "buttress", "cairn", "canal", "candle", "canyon", "castle", "cedar",
    "cellar", "chalk", "cherry", "chimney", "cinder", "cistern", "clay", "cloister", "clover",
    "coast", "cobble", "comet", "coral", "cormorant", "cottage", "crane", "crater", "creek",
    "crocus", "crow", "crypt", "cypress", "dairy", "dam", "delta", "dock", "dovecote", "drizzle",
    "drystone", "eclipse", "eel", "elder", "elm", "embankment", "ember", "falcon", "fen", "fern",
    "fjord", "flax", "flint", "foal", "forge", "fountain", "fox", "frost", "gable", "gannet",
    "gate", "geyser", "gorse", "granite", "grotto", "gull", "hamlet", "harvest", "hawthorn",
    "hayrick", "hearth", "heath", "hedgerow", "hemlock", "hillfort", "holly", "horizon",
    "hornbeam", "inlet", "island", "ivy", "jetty", "juniper", "kestrel", "kingfisher", "lake",
    "larch", "lark", "lavender", "ledge", "lichen", "lily", "limestone", "linden", "lock",
    "lynx", "magpie", "mallard", "maple", "marsh", "meteor", "mist", "monastery", "moss",
    "mountain", "mudflat", "mulberry", "nettle", "nightjar", "oak", "oasts", "osprey", "otter",
    "owl", "oxbow", "pagoda", "quay", "rainbow", "raven", "reed", "ridge", "rookery", "rowan",
    "saltmarsh", "sandbar", "shingle", "sluice", "spire", "summit", "swan", "tern",
];

#[tokio::main]
async fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let soak = args.get(1).is_some_and(|a| a == "soak");
    if soak {
        args.remove(1);
    }
    let number = |i: usize, default: u64| -> Result<u64> {
        Ok(args.get(i).map(|r| r.parse()).transpose()?.unwrap_or(default))
    };
    let (rate, seconds) = (number(1, 200)? as u32, number(2, 15)?);
    let oha = std::env::var("OHA").context("OHA names the load tool")?;
    let config = api::ApiConfig::from_env()?;
    let backup = backup::BackupConfig::from_env()?;
    let clients = shared::aws::Clients::new(&config.common.aws).await;
    let key = local::ensure_key(&clients.kms, &config.common.storage.data_key_id).await?;
    local::ensure_bucket(
        &clients.s3,
        &config.common.storage.originals_bucket,
        &config.region,
        &key,
    )
    .await?;
    let owner_password = clients.database_password(&backup.owner.password).await?;
    local::migrate(&config.common.db, &backup.owner.user, &owner_password).await?;
    let password = clients.database_password(&config.common.db.password).await?;
    let pool = db::pool(&config.common.db, &password)?;

    let started = Instant::now();
    let (token, edition) = seed(&pool).await?;
    // Statistics and visibility maps as autovacuum would have them on a live
    // database (else its first pass lands inside a measurement); only the
    // tables' owner may VACUUM.
    let owner =
        shared::config::DbConfig { user: backup.owner.user.clone(), ..config.common.db.clone() };
    db::connect(&owner, &owner_password).await?.batch_execute("VACUUM (ANALYZE)").await?;
    println!(
        "seeded {ARTWORKS} artworks across {ARTISTS} artists in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("APIBENCH_EXPLAIN").is_some() {
        explain(&pool).await?;
    }

    let state = std::sync::Arc::new(api::AppState::new(&config, pool.clone(), &clients));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, api::router(state)).await });

    let sale_body = r#"{"count":1}"#;
    let sale_sha = hex_sha256(sale_body.as_bytes());
    let sale = vec![
        "-m".into(),
        "POST".into(),
        "-H".into(),
        format!("x-gallery-token: {token}"),
        "-H".into(),
        "content-type: application/json".into(),
        "-H".into(),
        format!("x-amz-content-sha256: {sale_sha}"),
        "-d".into(),
        sale_body.into(),
        format!("{base}/v1/manage/editions/{edition}/sales"),
    ];
    let random_slug =
        vec!["--rand-regex-url".to_owned(), format!("{base}/v1/artworks/work-[1-9][0-9]{{0,2}}0")];
    if soak {
        let (slices, slice_seconds) = (rate as u64, seconds);
        let (read_rate, write_rate) = (number(3, 100)? as u32, number(4, 10)? as u32);
        let owner = db::connect(&owner, &owner_password).await?;
        return soak_test(
            &oha,
            slices,
            slice_seconds,
            (read_rate, &random_slug),
            (write_rate, &sale),
            &owner,
            &config.common.db,
        )
        .await;
    }
    // One connection of its own (a pool of one: the same client type the handlers use).
    let direct_pool = db::pool(
        &shared::config::DbConfig { pool_size: 1, ..config.common.db.clone() },
        &password,
    )?;
    let direct = direct_pool.get().await?;
    let digest = shared::domain::token_digest(&token);
    let filter = GalleryFilter::default();
    println!("fixed rate {rate} req/s for {seconds} s each; latency from each request's scheduled start (coordinated omission corrected)");
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "request", "API p50", "API p99", "SQL p50", "SQL p99", "p50 ×", "p99 ×"
    );
    let words = VOCABULARY.join("|");
    let searched = |word: &str| GalleryFilter {
        search: Some(word.to_owned()),
        sort: shared::domain::Sort::Relevance,
        ..GalleryFilter::default()
    };
    let by_title = GalleryFilter { sort: shared::domain::Sort::Title, ..GalleryFilter::default() };
    let cases: [(&str, Vec<String>); 5] = [
        ("GET /v1/artworks (public list)", vec![format!("{base}/v1/artworks")]),
        ("GET /v1/artworks/{slug} (random)", random_slug),
        (
            "GET /v1/artworks?q= (random word)",
            vec!["--rand-regex-url".into(), format!("{base}/v1/artworks\\?q=({words})")],
        ),
        ("GET /v1/artworks?sort=title", vec![format!("{base}/v1/artworks?sort=title")]),
        ("POST …/sales (authenticated write)", sale),
    ];
    let mut worst_p99 = 0.0f64;
    let mut worst_ratio = 0.0f64;
    for (i, (label, target)) in cases.iter().enumerate() {
        let api = load(&oha, rate, seconds, target)?;
        let sql = fixed_rate(rate, seconds, || async {
            match i {
                0 => {
                    db::gallery_page(&direct, &filter, None, 25).await?;
                }
                1 => {
                    let slug = format!("work-{}", rand_slug());
                    if let Some(a) = db::published_artwork_by_slug(&direct, &slug).await? {
                        db::editions_of(&direct, a.id).await?;
                        db::ready_images_of(&direct, a.id).await?;
                    }
                }
                2 => {
                    let word =
                        VOCABULARY[(rand::random::<u64>() % VOCABULARY.len() as u64) as usize];
                    db::gallery_page(&direct, &searched(word), None, 25).await?;
                }
                3 => {
                    db::gallery_page(&direct, &by_title, None, 25).await?;
                }
                _ => {
                    // The write's statements: the token, then one transaction
                    // holding the edition's lock check, the sale and its audit entry.
                    db::principal_for_token(&direct, &digest).await?;
                    direct.batch_execute("BEGIN").await?;
                    let e = db::edition_by_id(&direct, edition).await?.context("edition")?;
                    db::artwork_with_deleted(&direct, e.artwork_id, false).await?;
                    db::record_sale(&direct, edition, 1, None).await?;
                    let entry = db::AuditEntry {
                        actor: "bench",
                        action: "edition.sale",
                        target: "edition:bench",
                        request_id: None,
                        detail: serde_json::json!({}),
                    };
                    db::append_audit(&direct, &entry).await?;
                    direct.batch_execute("COMMIT").await?;
                }
            }
            Ok(())
        })
        .await?;
        let (p50x, p99x) = (api.p50 / sql.p50, api.p99 / sql.p99);
        worst_p99 = worst_p99.max(api.p99);
        worst_ratio = worst_ratio.max(p99x);
        println!(
            "{label:<34} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms {p50x:>8.2}× {p99x:>8.2}×   ({} ok of {})",
            api.p50, api.p99, sql.p50, sql.p99, api.ok, api.total
        );
    }
    println!("targets: p99 ≤ 5 ms at {rate} req/s (worst {worst_p99:.2} ms); API over raw SQL ≤ 1.5× (worst p99 {worst_ratio:.2}×)");
    Ok(())
}

/// The same slugs oha's pattern draws: 10, 20, … 9990 (all published).
fn rand_slug() -> u64 {
    (rand::random::<u64>() % 999 + 1) * 10
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

struct Latency {
    p50: f64,
    p99: f64,
    ok: u64,
    total: u64,
    /// Answers other than 2xx, by status (oha counts transport errors apart).
    refused: std::collections::BTreeMap<String, u64>,
    errors: u64,
}

/// oha at a fixed rate, its JSON summary read back (seconds → milliseconds).
fn load(oha: &str, rate: u32, seconds: u64, target: &[String]) -> Result<Latency> {
    let output = std::process::Command::new(oha)
        .args(["--no-tui", "--json", "--latency-correction"])
        .args(["-q", &rate.to_string(), "-z", &format!("{seconds}s"), "-c", "16"])
        .args(target)
        .output()?;
    if !output.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("oha's JSON")?;
    let pct =
        |k: &str| report["latencyPercentiles"][k].as_f64().map(|s| s * 1000.0).unwrap_or(f64::NAN);
    let codes = report["statusCodeDistribution"].as_object().cloned().unwrap_or_default();
    let total: u64 = codes.values().filter_map(|v| v.as_u64()).sum();
    let ok: u64 =
        codes.iter().filter(|(k, _)| k.starts_with('2')).filter_map(|(_, v)| v.as_u64()).sum();
    let refused = codes
        .iter()
        .filter(|(k, _)| !k.starts_with('2'))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect();
    // Requests still in flight when oha's duration ends are counted as
    // "aborted due to deadline": the load tool stopping, not the server failing.
    let errors = report["errorDistribution"]
        .as_object()
        .map(|e| {
            e.iter().filter(|(k, _)| !k.contains("deadline")).filter_map(|(_, v)| v.as_u64()).sum()
        })
        .unwrap_or(0);
    Ok(Latency { p50: pct("p50"), p99: pct("p99"), ok, total, refused, errors })
}

/// Runs `op` on a fixed schedule; each latency counts from its scheduled start.
async fn fixed_rate<F, Fut>(rate: u32, seconds: u64, op: F) -> Result<Latency>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut samples = Vec::new();
    while Instant::now() < end {
        let scheduled = ticks.tick().await;
        op().await?;
        samples.push(scheduled.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok(Latency {
        p50: at(0.50),
        p99: at(0.99),
        ok: samples.len() as u64,
        total: samples.len() as u64,
        refused: Default::default(),
        errors: 0,
    })
}

/// The benchmark's gallery, in a few statements; returns a token and the edition it sells from.
async fn seed(pool: &deadpool_postgres::Pool) -> Result<(String, uuid::Uuid)> {
    let client = pool.get().await?;
    let sql = [
        format!("INSERT INTO artists (id, name, email) SELECT gen_random_uuid(), 'Artist ' || g, 'artist' || g || '@bench.example' FROM generate_series(0, {}) g", ARTISTS - 1),
        format!(
            "INSERT INTO artworks (id, artist_id, title, slug, description, medium, year, width_mm, height_mm, status, published_at, created_at) \
             SELECT gen_random_uuid(), a.id, 'Work ' || g, 'work-' || g, \
                    (SELECT string_agg(w.words[1 + (hashtext(g::text || '.' || k) & 2147483647) % {n}], ' ') \
                       FROM generate_series(1, 6) k, (SELECT ARRAY[{vocabulary}] AS words) w), \
                    (ARRAY['Etching','Lithograph','Screenprint','Woodcut'])[1 + g % 4], \
                    1950 + g % 75, 300 + g % 200, 400 + g % 300, \
                    CASE WHEN g % 10 = 9 THEN 'draft' ELSE 'published' END, \
                    CASE WHEN g % 10 = 9 THEN NULL ELSE now() - g * interval '1 minute' END, now() - g * interval '1 minute' \
               FROM generate_series(0, {}) g JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS n FROM artists) a ON a.n = g % {ARTISTS}",
            ARTWORKS - 1,
            n = VOCABULARY.len(),
            vocabulary = VOCABULARY.map(|w| format!("'{w}'")).join(","),
        ),
        "INSERT INTO print_editions (id, artwork_id, edition_size, paper, price_minor, currency, sold_count) \
         SELECT gen_random_uuid(), id, CASE WHEN slug = 'work-0' THEN 100000 ELSE 50 END, 'Hahnemühle Photo Rag', \
                5000 + (hashtext(slug) & 127) * 1000, 'EUR', (hashtext(slug) & 31) FROM artworks"
            .to_owned(),
        // Each print sold is a row, as the API records it.
        "INSERT INTO print_sales (id, edition_id, print_number, price_minor, currency) \
         SELECT gen_random_uuid(), e.id, n, e.price_minor, e.currency \
           FROM print_editions e, generate_series(1, e.sold_count) n WHERE e.sold_count > 0"
            .to_owned(),
        "INSERT INTO images (id, artwork_id, original_key, status, renditions, content_sha256, position) \
         SELECT i.id, i.artwork_id, 'originals/' || i.artwork_id || '/' || i.id || '/plate.jpg', 'ready', \
                (SELECT jsonb_agg(jsonb_build_object('format', 'jpeg', 'long_edge', e, 'width', e, 'height', e * 3 / 4, 'bytes', e * 90, \
                        'sha256', repeat('a', 64), 'key', 'renditions/' || i.artwork_id || '/' || i.id || '/' || e || '.jpg')) \
                   FROM unnest(ARRAY[400, 800, 1600]) e), repeat('b', 64), 0 \
           FROM (SELECT gen_random_uuid() AS id, id AS artwork_id FROM artworks) i"
            .to_owned(),
    ];
    for statement in &sql {
        client.batch_execute(statement).await?;
    }
    let row = client
        .query_one("SELECT a.artist_id, e.id FROM artworks a JOIN print_editions e ON e.artwork_id = a.id WHERE a.slug = 'work-0'", &[])
        .await?;
    let (artist, edition): (uuid::Uuid, uuid::Uuid) = (row.get(0), row.get(1));
    let (secret, digest) = shared::domain::new_token();
    db::insert_token(
        &client,
        Some(artist),
        shared::domain::Scope::Artist,
        &digest,
        "bench",
        chrono::Utc::now() + chrono::Duration::hours(2),
    )
    .await?;
    Ok((secret, edition))
}

/// The plans of the benchmark's reads (APIBENCH_EXPLAIN=1), to see where time goes.
async fn explain(pool: &deadpool_postgres::Pool) -> Result<()> {
    let client = pool.get().await?;
    for sql in [
        "SELECT a.id FROM artworks a JOIN artists ar ON ar.id = a.artist_id WHERE a.slug = 'work-120' AND a.status = 'published' AND a.deleted_at IS NULL AND ar.suspended_at IS NULL",
        "SELECT * FROM images WHERE artwork_id = (SELECT id FROM artworks WHERE slug = 'work-120') AND status = 'ready' AND deleted_at IS NULL ORDER BY position, id",
        "SELECT * FROM print_editions WHERE artwork_id = (SELECT id FROM artworks WHERE slug = 'work-120') ORDER BY created_at, id",
    ] {
        for row in client.query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &[]).await? {
            println!("  {}", row.get::<_, String>(0));
        }
    }
    Ok(())
}

/// The soak: reads and writes side by side, slice after slice, with the
/// process's RSS and the API's database connections sampled.
async fn soak_test(
    oha: &str,
    slices: u64,
    seconds: u64,
    (read_rate, reads): (u32, &[String]),
    (write_rate, writes): (u32, &[String]),
    owner: &tokio_postgres::Client,
    db: &shared::config::DbConfig,
) -> Result<()> {
    println!(
        "soak: {slices} slices of {seconds} s; reads {read_rate}/s, writes {write_rate}/s (limit {} writes/min per token); pool {}",
        api::ApiConfig::from_env()?.writes_per_minute,
        db.pool_size
    );
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>9} {:>10} {:>6} {:>24}",
        "slice", "read p50", "read p99", "write p50", "write p99", "RSS MiB", "conns", "not 2xx"
    );
    let mut rss = Vec::new();
    let mut problems = Vec::new();
    let mut requests = 0;
    for slice in 1..=slices {
        let (reads, writes) = (reads.to_vec(), writes.to_vec());
        let oha_r = oha.to_owned();
        let oha_w = oha.to_owned();
        let read = tokio::task::spawn_blocking(move || load(&oha_r, read_rate, seconds, &reads));
        let write = tokio::task::spawn_blocking(move || load(&oha_w, write_rate, seconds, &writes));
        // The API's connections, sampled while the slice runs.
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut connections = 0i64;
        while Instant::now() < end {
            let row = owner
                .query_one("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", &[&db.user])
                .await?;
            connections = connections.max(row.get(0));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let (read, write) = (read.await??, write.await??);
        let mib = resident_mib();
        rss.push(mib);
        let mut refused = read.refused.clone();
        for (code, n) in &write.refused {
            *refused.entry(code.clone()).or_default() += n;
        }
        requests += read.total + write.total + read.errors + write.errors;
        let shown: Vec<String> = refused.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        println!(
            "{slice:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {mib:>10.1} {connections:>6} {:>24}",
            read.p50,
            read.p99,
            write.p50,
            write.p99,
            shown.join(" ")
        );
        if refused.keys().any(|c| c != "429" && c != "503") || read.errors + write.errors > 0 {
            problems.push(format!(
                "slice {slice}: answers other than 2xx/429/503 or transport errors ({} {})",
                shown.join(" "),
                read.errors + write.errors
            ));
        }
        if connections > db.pool_size as i64 {
            problems
                .push(format!("slice {slice}: {connections} connections, pool {}", db.pool_size));
        }
    }
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        if *last > first * 1.10 {
            problems.push(format!("RSS grew from {first:.1} MiB to {last:.1} MiB"));
        }
    }
    println!(
        "soak: {requests} requests, RSS {} MiB, {}",
        rss.iter().map(|m| format!("{m:.1}")).collect::<Vec<_>>().join(" → "),
        if problems.is_empty() {
            "held".to_owned()
        } else {
            format!("failed: {}", problems.join("; "))
        }
    );
    if !problems.is_empty() {
        bail!("the soak did not hold");
    }
    Ok(())
}

/// This process's resident memory (VmRSS), MiB.
fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
