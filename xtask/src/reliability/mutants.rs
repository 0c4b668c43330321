//! Tests that are tested: `cargo mutants` over the pure cores
//! (`.cargo/mutants.toml`), whose unit tests alone must notice a broken rule.
//! Every mutant is a build of `shared` and a run of its unit tests, so the
//! full run takes hours on two cores; `--iterate` (this row passes
//! `GALLERY_MUTANTS_ITERATE=1` through) retests only what was not caught.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Row;
use crate::{cargo, run};

const AREA: &str = "tests tested";
const VERSION: &str = "27.1.0";
/// The share of viable mutants the unit tests must catch.
const TARGET: f64 = 0.90;

pub fn row(root: &Path) -> Row {
    let tried = "cargo mutants over shared::domain, the backup format and frames, the retention \
                 rotation and policy, the identity proof checks";
    Row::from_result(AREA, tried, mutants(root))
}

fn mutants(root: &Path) -> Result<(u64, String)> {
    crate::tools::cargo_tool(root, "cargo-mutants", VERSION, &[])?;
    let out = root.join("target/mutants");
    let mut cmd = cargo(root);
    cmd.args(["mutants", "-j", "1", "--no-times", "-o"]).arg(&out);
    if std::env::var_os("GALLERY_MUTANTS_ITERATE").is_some() {
        cmd.arg("--iterate");
    }
    // Exit 2 means mutants were missed: the score below decides.
    let _ = run(cmd.env("PATH", tools_path(root)?));
    score(&out.join("mutants.out"))
}

/// The project's tools first, so `cargo mutants` finds its plugin.
fn tools_path(root: &Path) -> Result<std::ffi::OsString> {
    let mut paths = vec![root.join(".local/tools/bin")];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    Ok(std::env::join_paths(paths)?)
}

/// The score from `outcomes.json`; survivors from `missed.txt`.
pub fn score(dir: &Path) -> Result<(u64, String)> {
    let text = std::fs::read_to_string(dir.join("outcomes.json"))
        .with_context(|| format!("no cargo mutants outcome in {}", dir.display()))?;
    let outcomes: serde_json::Value = serde_json::from_str(&text)?;
    let count = |k: &str| outcomes[k].as_u64().unwrap_or(0);
    let (caught, missed, timeout, unviable) =
        (count("caught"), count("missed"), count("timeout"), count("unviable"));
    let viable = caught + missed + timeout;
    if viable == 0 {
        bail!("no viable mutant was tested");
    }
    // A timeout is a mutant the tests noticed (it never finished): caught.
    let score = (caught + timeout) as f64 / viable as f64;
    let survivors = std::fs::read_to_string(dir.join("missed.txt")).unwrap_or_default();
    let survivors: Vec<&str> = survivors.lines().filter(|l| !l.is_empty()).collect();
    let what = format!(
        "{:.1}% caught ({caught} caught, {timeout} timed out, {missed} missed, {unviable} unviable); survivors (docs/reliability.md): {}",
        score * 100.0,
        if survivors.is_empty() { "none".to_owned() } else { survivors.join("; ") }
    );
    if score < TARGET {
        bail!("{what}: below the {:.0}% target", TARGET * 100.0);
    }
    Ok((viable + unviable, what))
}
