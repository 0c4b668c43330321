//! Faults on the real services: `tests/it/faults.rs` (those that pause and
//! restart the stack are ignored in the suite) on a stack of their own, one
//! at a time. One row per fault.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{Row, Size};
use crate::cargo;
use crate::stack::{Stack, StackOptions};

const AREA: &str = "faults";

/// CI's cut runs one fault of each kind: these repeat a kind the cut has
/// (a pause, a restart mid-stream).
const REPEATS: [&str; 2] = [
    "postgres_paused_mid_query_is_503_by_the_request_deadline_and_changes_nothing",
    "postgres_restarted_mid_restore_fails_cleanly_and_the_next_drill_and_restore_succeed",
];

pub fn rows(root: &Path, size: Size) -> Vec<Row> {
    match faults(root, size) {
        Ok(rows) => rows,
        Err(e) => vec![Row::from_result(AREA, "the fault tests", Err(e))],
    }
}

fn faults(root: &Path, size: Size) -> Result<Vec<Row>> {
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    let (Some(postgres), Some(emulator)) = stack.pids() else {
        bail!("the stack's processes are not running");
    };
    let pidfile = root.join("target/reliability/emulator.pid");
    let _ = std::fs::remove_file(&pidfile);
    let venv = crate::tools::venv(root)?;
    let restart =
        format!("{} -H 127.0.0.1 -p {}", venv.join("bin/moto_server").display(), stack.moto_port);
    let out = cargo(root)
        .args(["test", "--workspace", "--test", "it", "faults::"])
        .args(["--", "--test-threads=1"])
        // The cut leaves the faults the test run just ran to its verdicts.
        .args(match size {
            Size::Cut => ["--ignored"]
                .into_iter()
                .chain(REPEATS.iter().flat_map(|t| ["--skip", t]))
                .collect(),
            Size::Full => vec!["--include-ignored"],
        })
        .envs(stack.env("postgres"))
        .env("GALLERY_FAULT_POSTGRES_PID", postgres.to_string())
        .env("GALLERY_FAULT_EMULATOR_PID", emulator.to_string())
        .env("GALLERY_FAULT_EMULATOR_COMMAND", restart)
        .env("GALLERY_FAULT_EMULATOR_PIDFILE", &pidfile)
        .env("RUST_LOG", "warn")
        .output()
        .context("running the fault tests")?;
    drop(stack);
    // An emulator a test started again is the run's to stop.
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    let log = root.join("target/reliability/faults.log");
    std::fs::create_dir_all(log.parent().unwrap_or(root))?;
    std::fs::write(&log, [out.stdout.as_slice(), out.stderr.as_slice()].concat())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    // Log lines may share a line with libtest's `test … ...`; a test failed
    // when libtest reports its output under `---- faults::NAME stdout ----`.
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test faults::") else { continue };
        let Some((name, _)) = rest.split_once(" ... ") else { continue };
        let tried = name.replace('_', " ");
        let result = if stdout.contains(&format!("---- faults::{name} stdout ----")) {
            let why = failure_of(&stdout, name);
            Err(anyhow::anyhow!("{why} (see {})", log.display()))
        } else {
            Ok((1, "every assertion, and what must not change did not".to_owned()))
        };
        rows.push(Row::from_result(AREA, tried, result));
    }
    if size == Size::Cut {
        rows.extend(from_the_test_run(root));
    }
    if rows.is_empty() {
        bail!(
            "no fault test ran: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    Ok(rows)
}

/// The faults `cargo xtask test` runs itself (they need no stack of their
/// own), as its last run found them.
fn from_the_test_run(root: &Path) -> Vec<Row> {
    let output = std::fs::read_to_string(super::logscan::RunFiles::existing(root).output())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for line in output.lines() {
        let Some((_, rest)) = line.split_once("test faults::") else { continue };
        let Some((name, verdict)) = rest.split_once(" ... ") else { continue };
        if verdict.starts_with("ignored") {
            continue;
        }
        let result = match verdict.starts_with("ok") {
            true => Ok((1, "every assertion, in the last `cargo xtask test`".to_owned())),
            false => Err(anyhow::anyhow!("{verdict} in the last `cargo xtask test`")),
        };
        rows.push(Row::from_result(AREA, name.replace('_', " "), result));
    }
    rows
}

/// The panic message of one failed test, from libtest's report.
fn failure_of(stdout: &str, name: &str) -> String {
    let marker = format!("---- faults::{name} stdout ----");
    let Some((_, report)) = stdout.split_once(&marker) else { return "failed".into() };
    let lines: Vec<&str> = report.lines().collect();
    match lines.iter().position(|l| l.contains("panicked")) {
        // `thread … panicked at FILE:LINE:` then the message.
        Some(i) => lines[i..lines.len().min(i + 2)].join(" ").trim().to_owned(),
        None => "failed".into(),
    }
}
