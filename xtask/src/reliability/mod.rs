//! `cargo xtask reliability [--cut]`: the gallery attacked, faulted, loaded
//! and probed on the local stack, and its tests mutated; one table of what
//! was tried, how many cases, and whether it held.
//!
//! `--cut` is CI's bounded run (a few examples per operation, seconds per
//! fuzz target, every fault, the log scan of CI's own test run; no soak);
//! without it every row runs at full size.

mod attacks;
mod commands;
mod faults;
mod fuzz;
mod load;
pub mod logscan;
mod mutants;
mod probes;

use std::path::Path;

use anyhow::{bail, Result};

use crate::say;

/// The groups of rows `--only` can name.
const GROUPS: [&str; 7] =
    ["fuzzing", "attacks", "faults", "load", "commands", "mutants", "security"];

/// How much of each row to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Size {
    Cut,
    Full,
}

/// One line of the table.
pub struct Row {
    pub area: &'static str,
    pub tried: String,
    pub cases: u64,
    /// `Ok(what held)` or `Err(what failed)`.
    pub outcome: std::result::Result<String, String>,
}

impl Row {
    pub fn held(
        area: &'static str,
        tried: impl Into<String>,
        cases: u64,
        what: impl Into<String>,
    ) -> Self {
        Self { area, tried: tried.into(), cases, outcome: Ok(what.into()) }
    }

    pub fn from_result(
        area: &'static str,
        tried: impl Into<String>,
        result: Result<(u64, String)>,
    ) -> Self {
        match result {
            Ok((cases, what)) => Self::held(area, tried, cases, what),
            Err(e) => Self { area, tried: tried.into(), cases: 0, outcome: Err(format!("{e:#}")) },
        }
    }
}

// Every row builds with `--workspace`, as `cargo xtask test` does, so the
// features resolve alike and nothing the test run built is built again.
pub fn reliability(root: &Path, args: &[String]) -> Result<()> {
    let size = if args.iter().any(|a| a == "--cut") { Size::Cut } else { Size::Full };
    // `--only GROUP` reruns one group of rows (after fixing what it found).
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
    if let Some(group) = only.filter(|g| !GROUPS.contains(&g.as_str())) {
        bail!("--only {group}: the groups are {}", GROUPS.join(", "));
    }
    let runs = |group: &str| only.is_none_or(|g| g == group);
    say(&format!("reliability suite ({size:?})"));
    let mut rows = Vec::new();
    if runs("fuzzing") {
        rows.extend(fuzz::rows(root, size));
    }
    if runs("attacks") {
        rows.extend(attacks::rows(root, size));
    }
    if runs("faults") {
        rows.extend(faults::rows(root, size));
    }
    // Not in CI's cut (the cut has no load; oha is a build of its own).
    if size == Size::Full && runs("load") {
        rows.extend(load::rows(root, size));
    }
    // Release builds of every binary: the full run only.
    if size == Size::Full && runs("commands") {
        rows.extend(commands::rows(root));
    }
    let mutation =
        only.is_some_and(|g| g == "mutants") || !args.iter().any(|a| a == "--no-mutants");
    if size == Size::Full && runs("mutants") && mutation {
        rows.push(mutants::row(root));
    }
    if runs("security") {
        rows.extend(probes::rows(root));
        rows.push(log_scan_row(root));
    }
    print_table(&rows);
    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    if failed > 0 {
        bail!("{failed} of {} rows did not hold", rows.len());
    }
    Ok(())
}

/// `cargo xtask mutants`: the mutation row alone.
pub fn mutants(root: &Path) -> Result<()> {
    let rows = [mutants::row(root)];
    print_table(&rows);
    if rows[0].outcome.is_err() {
        bail!("the mutation score is below its target");
    }
    Ok(())
}

/// The scan of the newest `cargo xtask test` run's logs (that command runs it
/// too, and fails on a hit; this row reports it).
fn log_scan_row(root: &Path) -> Row {
    let run = logscan::RunFiles::existing(root);
    let result = (|| {
        let Some(summary) = std::fs::read_to_string(run.dir.join("scan.txt")).ok() else {
            bail!("no scan of a test run in {}: run `cargo xtask test` first", run.dir.display());
        };
        let (cases, what) = summary.split_once('\t').unwrap_or(("0", summary.as_str()));
        if what.starts_with("FAILED") {
            bail!("{what}");
        }
        Ok((cases.trim().parse().unwrap_or(0), what.trim().to_owned()))
    })();
    Row::from_result("security", "no secret in any log line of the whole test suite", result)
}

fn print_table(rows: &[Row]) {
    println!("\n| area | what was tried | cases | held |");
    println!("|---|---|---:|---|");
    for row in rows {
        let held = match &row.outcome {
            Ok(what) => format!("yes: {what}"),
            Err(why) => format!("**NO**: {}", why.replace('\n', " ")),
        };
        println!("| {} | {} | {} | {} |", row.area, row.tried, row.cases, held);
    }
}
