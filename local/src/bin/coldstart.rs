//! Cold starts through the Lambda Runtime API: process start → first answered
//! event, and peak RSS, for each release binary, beside the Node.js peer
//! (Express + pg + AWS SDK v3) run through the same runtime API in the same
//! run. Started by `cargo xtask bench coldstart`, which provides the stack.
//!
//! Usage: coldstart RUNS NODE_PEER_DIR (the environment points at the stack)

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use local::runtime_api::{binary, FunctionProcess, InvocationOutcome, RuntimeApi};
use serde_json::{json, Value};

struct Case {
    label: &'static str,
    function: &'static str,
    event: Value,
    /// The Node peer answers this case too.
    node: bool,
}

fn url_event(path: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": { "accept": "application/json", "host": "bench.lambda-url.eu-west-1.on.aws" },
        "requestContext": {
            "accountId": "anonymous", "apiId": "bench", "domainName": "bench.lambda-url.eu-west-1.on.aws", "domainPrefix": "bench",
            "http": { "method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "01/Dec/2026:00:00:00 +0000", "timeEpoch": 1796083200000u64
        },
        "isBase64Encoded": false
    })
}

fn scheduled(task: &str) -> Value {
    json!({ "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.scheduler", "account": "123456789012",
            "time": "2026-12-01T03:00:00Z", "region": "eu-west-1", "resources": [], "detail": { "task": task } })
}

struct Sample {
    millis: f64,
    rss_kib: u64,
}

async fn once(
    command: &std::path::Path,
    args: &[String],
    env: &[(String, String)],
    name: &str,
    event: &Value,
) -> Result<Sample> {
    let runtime = RuntimeApi::start(name, "eu-west-1").await?;
    let started = Instant::now();
    let process = FunctionProcess::spawn_command(command, args, env, &runtime, 512)?;
    let outcome = tokio::time::timeout(Duration::from_secs(60), runtime.invoke(event))
        .await
        .context("no answer in 60 s")?;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let rss_kib = process.peak_rss_kib().unwrap_or(0);
    match outcome {
        InvocationOutcome::Response(v)
            if v.get("statusCode").and_then(Value::as_u64).is_some_and(|s| s >= 500) =>
        {
            bail!("{name} answered {v}; printed:\n{}", process.output())
        }
        InvocationOutcome::Response(_) => Ok(Sample { millis, rss_kib }),
        InvocationOutcome::Error(e) => {
            bail!("{name} failed: {e:?}; printed:\n{}", process.output())
        }
    }
}

/// Migrates and seeds the bench database, and moves the application password
/// into Secrets Manager, so both peers fetch it at cold start as they do in AWS.
async fn prepare(env: &mut Vec<(String, String)>) -> Result<()> {
    use shared::config::{AwsConfig, DbConfig, Env, RoleConfig};
    let mut e = Env::from_process();
    let (db, owner, aws) =
        (DbConfig::read(&mut e), RoleConfig::owner(&mut e), AwsConfig::read(&mut e));
    e.finish(())?;
    let clients = shared::aws::Clients::new(&aws).await;
    let owner_password = clients.database_password(&owner.password).await?;
    local::migrate(&db, &owner.user, &owner_password).await?;
    let password = clients.database_password(&db.password).await?;
    local::seed(&shared::db::pool(&db, &password)?).await?;
    let secret = secrecy::ExposeSecret::expose_secret(&password).to_owned();
    let arn = clients
        .secrets
        .create_secret()
        .name(format!("bench-{}", std::process::id()))
        .secret_string(json!({ "password": secret }).to_string())
        .send()
        .await?
        .arn()
        .unwrap_or_default()
        .to_owned();
    env.retain(|(k, _)| k != "DATABASE_PASSWORD");
    env.push(("DATABASE_PASSWORD_SECRET_ARN".into(), arn));
    env.push(("DATABASE_POOL_SIZE".into(), "2".into()));
    Ok(())
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(10);
    let node_dir = std::path::PathBuf::from(
        args.get(2).context("usage: coldstart RUNS NODE_PEER_DIR [FUNCTION]")?,
    );
    // `cargo xtask bench api` measures only the API's cases.
    let only = args.get(3).cloned();
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("DATABASE_")
                || k.starts_with("GALLERY_")
                || k.starts_with("AWS_")
                || k == "RUST_LOG"
        })
        .collect();
    prepare(&mut env).await?;
    let cases = [
        Case {
            label: "api, route without database",
            function: "api",
            event: url_event("/no-such-page"),
            node: true,
        },
        Case {
            label: "api, first database-backed response",
            function: "api",
            event: url_event("/v1/artworks"),
            node: true,
        },
        Case {
            label: "retention, first sweep",
            function: "retention",
            event: scheduled("retention"),
            node: false,
        },
        Case {
            label: "backup, first restore drill",
            function: "backup",
            event: scheduled("restore-drill"),
            node: false,
        },
    ];
    println!("cold start = process start → first answered event through the Lambda Runtime API; {runs} runs each, alternating");
    println!(
        "{:<38} {:>22} {:>22} {:>7} {:>9} {:>9}",
        "case", "ours ms (min/med/max)", "node ms (min/med/max)", "ratio", "ours RSS", "node RSS"
    );
    for case in cases.iter().filter(|c| only.as_deref().is_none_or(|f| f == c.function)) {
        let ours_bin = binary(case.function);
        // Each function as its own database role (locally one password).
        let mut env = env.clone();
        let role = match case.function {
            "api" => "API",
            "retention" => "RETENTION",
            _ => "BACKUP_RECORDS",
        };
        local::log_in_as(&mut env, role);
        let (mut ours, mut node, mut ours_rss, mut node_rss) = (Vec::new(), Vec::new(), 0u64, 0u64);
        for _ in 0..runs {
            let s = once(
                &ours_bin,
                &[],
                &env,
                &format!("copper-gallery-{}", case.function),
                &case.event,
            )
            .await?;
            ours.push(s.millis);
            ours_rss = ours_rss.max(s.rss_kib);
            if case.node {
                let script = vec![node_dir.join("index.js").display().to_string()];
                let s = once(
                    std::path::Path::new("node"),
                    &script,
                    &env,
                    "copper-gallery-node",
                    &case.event,
                )
                .await?;
                node.push(s.millis);
                node_rss = node_rss.max(s.rss_kib);
            }
        }
        let (a0, a1, a2) = median(ours);
        let ours_text = format!("{a0:.1}/{a1:.1}/{a2:.1}");
        let (node_text, ratio, node_rss_text) = if node.is_empty() {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            let (b0, b1, b2) = median(node);
            (
                format!("{b0:.1}/{b1:.1}/{b2:.1}"),
                format!("{:.3}", a1 / b1),
                format!("{:.1} MiB", node_rss as f64 / 1024.0),
            )
        };
        println!(
            "{:<38} {:>22} {:>22} {:>7} {:>9} {:>9}",
            case.label,
            ours_text,
            node_text,
            ratio,
            format!("{:.1} MiB", ours_rss as f64 / 1024.0),
            node_rss_text
        );
    }
    Ok(())
}
