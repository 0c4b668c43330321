//! Every fuzz target (`fuzz/targets`) for a bounded time: the committed
//! corpus first (seeds and every input that ever crashed), then mutations.
//! This runs `fuzz-run`, the stable runner (byte-level mutations of the
//! corpus, not coverage-guided); cargo-fuzz runs the same targets under
//! libFuzzer on nightly (`fuzz/Cargo.toml`).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{Row, Size};
use crate::{cargo, run};

const AREA: &str = "fuzzing";

pub fn rows(root: &Path, size: Size) -> Vec<Row> {
    let seconds = match size {
        Size::Cut => 3,
        Size::Full => 60,
    };
    match fuzz(root, seconds) {
        Ok(rows) => rows,
        Err(e) => vec![Row::from_result(AREA, "every fuzz target", Err(e))],
    }
}

fn fuzz(root: &Path, seconds: u32) -> Result<Vec<Row>> {
    run(cargo(root).args(["build", "--quiet", "--workspace", "--bin", "fuzz-run"]))?;
    let out = Command::new(root.join("target/debug/fuzz-run"))
        .args(["run", "fuzz/corpus", &seconds.to_string()])
        .current_dir(root)
        .output()
        .context("running fuzz-run")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    // `fuzz-run: NAME C committed, M mutations in S s, slowest T ms, K crashes`
    for line in stdout.lines().filter_map(|l| l.strip_prefix("fuzz-run: ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(committed), Some(mutations), Some(crashes)) =
            (words.first(), words.get(1), words.get(3), words.get(11))
        else {
            continue;
        };
        let cases = committed.parse::<u64>().unwrap_or(0) + mutations.parse::<u64>().unwrap_or(0);
        let tried = format!("`{name}`: committed corpus, then mutations for {seconds} s");
        let outcome = if *crashes == "0" {
            Ok((
                cases,
                format!("no panic ({} {} {})", words[8], words[9], words[10].trim_end_matches(',')),
            ))
        } else {
            Err(anyhow::anyhow!(
                "{crashes} crashes; the input is under fuzz/findings/{name}/: fix, then commit it to fuzz/corpus/{name}/"
            ))
        };
        rows.push(Row::from_result(AREA, tried, outcome));
    }
    if rows.is_empty() {
        bail!("fuzz-run reported nothing: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(rows)
}
