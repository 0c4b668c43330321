//! `cargo xtask bench api [RATE] [SECONDS]`: the API under a fixed-rate load
//! from oha beside the same SQL run directly, then the release `api`
//! binary's cold start through the Lambda Runtime API. The measuring is
//! `local`'s `apibench` and `coldstart` binaries; oha is installed here
//! (pinned, into `.local/tools`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::stack::{Stack, StackOptions};
use crate::{cargo, run, say, tools};

const OHA_VERSION: &str = "1.4.7";

pub fn ensure_oha(root: &Path) -> Result<PathBuf> {
    tools::cargo_tool(root, "oha", OHA_VERSION, &[])
}

pub fn api(root: &Path, args: &[String]) -> Result<()> {
    let oha = ensure_oha(root)?;
    say("building the release binaries");
    run(cargo(root).args(["build", "--release", "--package", "api"]))?;
    run(cargo(root).args([
        "build",
        "--release",
        "--package",
        "local",
        "--bin",
        "apibench",
        "--bin",
        "coldstart",
    ]))?;
    let _interrupted = crate::interrupted_flag()?;
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    stack.psql("postgres", "CREATE DATABASE gallery_bench OWNER gallery_owner")?;
    stack.psql("postgres", "CREATE DATABASE gallery_coldstart OWNER gallery_owner")?;
    // The per-token write limit would turn most of the write load into 429s; this measures the write itself.
    let mut bench = Command::new(root.join("target/release/apibench"));
    bench
        .args(args)
        .env("OHA", &oha)
        .envs(stack.env("gallery_bench"))
        .env("GALLERY_WRITES_PER_MINUTE", "100000000");
    let result = run(&mut bench).and_then(|()| {
        let peer = root.join("xtask/bench/coldstart-node");
        let mut coldstart = Command::new(root.join("target/release/coldstart"));
        coldstart.args(["10"]).arg(&peer).arg("api").envs(stack.env("gallery_coldstart"));
        if peer.join("node_modules").is_dir() {
            run(&mut coldstart)
        } else {
            say("the cold start's Node peer is not installed (cargo xtask bench coldstart installs it); skipping");
            Ok(())
        }
    });
    drop(stack);
    result
}
