//! `cargo xtask bench coldstart`: each function's release binary, and the
//! Node.js peer in `xtask/bench/coldstart-node/` (Express + pg + AWS SDK v3),
//! started cold against the same Lambda Runtime API and the same TLS-only
//! PostgreSQL, in one run. The measuring is `local`'s `coldstart` binary.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::stack::{Stack, StackOptions};
use crate::{cargo, run, say};

pub fn coldstart(root: &Path, args: &[String]) -> Result<()> {
    let runs = args.first().map(String::as_str).unwrap_or("10");
    if runs.parse::<usize>().map_or(true, |n| n == 0) {
        bail!("usage: cargo xtask bench coldstart [RUNS]");
    }
    let peer = root.join("xtask/bench/coldstart-node");
    if !peer.join("node_modules").is_dir() {
        say("installing the Node.js peer's pinned packages (npm ci)");
        run(Command::new("npm").current_dir(&peer).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))?;
    }
    // One build per feature set, as `cargo xtask package` builds the zips: the
    // API, backup and retention binaries carry no image codecs.
    say("building the release binaries");
    run(cargo(root).args([
        "build",
        "--release",
        "--package",
        "api",
        "--package",
        "backup",
        "--package",
        "retention",
    ]))?;
    run(cargo(root).args(["build", "--release", "--package", "local", "--bin", "coldstart"]))?;
    let _interrupted = crate::interrupted_flag()?;
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    stack.psql("postgres", "CREATE DATABASE gallery_bench OWNER gallery_owner")?;
    let result = run(Command::new(root.join("target/release/coldstart"))
        .arg(runs)
        .arg(&peer)
        .envs(stack.env("gallery_bench")));
    drop(stack);
    result
}
