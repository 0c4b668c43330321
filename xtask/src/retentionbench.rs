//! `cargo xtask bench retention [VERSIONS]`: the release retention binary's
//! sweep of VERSIONS purgeable object versions (default 10,000) in the
//! emulator, beside one DeleteObject per version on the same data, in one
//! run: wall time, delete calls counted on the wire, peak RSS. The measuring
//! is `local`'s `retentionbench` binary; the stack comes from here.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::stack::{Stack, StackOptions};
use crate::{cargo, run, say};

pub fn retention(root: &Path, args: &[String]) -> Result<()> {
    let versions = args.first().cloned().unwrap_or_else(|| "10000".into());
    if versions.parse::<u64>().map_or(true, |n| n == 0 || n > 200_000 || n % 200 != 0) {
        bail!("usage: cargo xtask bench retention [VERSIONS] (a multiple of 200, at most 200000)");
    }
    say("building the release binaries");
    run(cargo(root).args(["build", "--release", "--package", "retention"]))?;
    run(cargo(root).args(["build", "--release", "--package", "local", "--bin", "retentionbench"]))?;
    let _interrupted = crate::interrupted_flag()?;
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    stack.psql("postgres", "CREATE DATABASE gallery_bench OWNER gallery_owner")?;
    let mut command = Command::new(root.join("target/release/retentionbench"));
    command.arg(&versions).envs(stack.env("gallery_bench"));
    let result = run(&mut command);
    drop(stack);
    result
}
