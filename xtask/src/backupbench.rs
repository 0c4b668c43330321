//! `cargo xtask bench backup [SIZE_MB...]`: our backup and restore beside
//! `pg_dump -Fc` and `pg_restore` on the same seeded databases, in one run
//! (default sizes: about 250 MB and 1000 MB). The measuring is `local`'s
//! `backupbench` binary; the stack and PostgreSQL's programs come from here.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::stack::{Stack, StackOptions};
use crate::{cargo, run, say};

pub fn backup(root: &Path, args: &[String]) -> Result<()> {
    let sizes: Vec<String> =
        if args.is_empty() { vec!["250".into(), "1000".into()] } else { args.to_vec() };
    if sizes.iter().any(|s| s.parse::<u64>().map_or(true, |n| n == 0 || n > 20_000)) {
        bail!("usage: cargo xtask bench backup [SIZE_MB...] (each 1 to 20000)");
    }
    say("building the release binaries");
    run(cargo(root).args(["build", "--release", "--package", "backup"]))?;
    run(cargo(root).args(["build", "--release", "--package", "local", "--bin", "backupbench"]))?;
    let pg_bin = crate::tools::postgres_bin()?;
    let _interrupted = crate::interrupted_flag()?;
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    stack.psql("postgres", "CREATE DATABASE gallery_bench OWNER gallery_owner")?;
    // The bench checkpoints before each timed restore; autovacuum is off so
    // that no restore is timed beside a vacuum of the one before it.
    stack.psql("postgres", "GRANT pg_checkpoint TO gallery_owner")?;
    stack.psql("postgres", "ALTER SYSTEM SET autovacuum = off")?;
    stack.psql("postgres", "SELECT pg_reload_conf()")?;
    let mut command = Command::new(root.join("target/release/backupbench"));
    command.args(&sizes).env("PG_BIN", &pg_bin).envs(stack.env("gallery_bench"));
    if let (_, Some(emulator)) = stack.pids() {
        command.env("BENCH_EMULATOR_PID", emulator.to_string());
    }
    let result = run(&mut command);
    drop(stack);
    result
}
