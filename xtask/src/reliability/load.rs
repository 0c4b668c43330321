//! Load and soak on loopback: `apibench soak` (local/src/bin/apibench.rs),
//! the API seeded with 10,000 artworks and held by oha at fixed rates of
//! reads and writes far above its pool, slice after slice; RSS and database
//! connections per slice. The debug build: the row checks behaviour over
//! time (errors, growth, the connection budget), not speed, which
//! `cargo xtask bench api` measures in release.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{Row, Size};
use crate::stack::{Stack, StackOptions};
use crate::{cargo, run};

const AREA: &str = "load and soak";

/// Uploads in the processor's burst (a quarter are not images; every third
/// event is delivered twice).
const BURST_IMAGES: u32 = 48;

pub fn rows(root: &Path, size: Size) -> Vec<Row> {
    vec![soak_row(root, size), burst_row(root)]
}

fn burst_row(root: &Path) -> Row {
    let tried = format!(
        "the processor fed a burst of {BURST_IMAGES} uploads at its reserved concurrency (4), a quarter not images, every third event twice"
    );
    Row::from_result(AREA, tried, burst(root))
}

fn burst(root: &Path) -> Result<(u64, String)> {
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    let test = "processor::a_burst_of_uploads_leaves_every_image_ready_or_failed_with_a_reason";
    let dir = root.join("target/reliability/burst");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let out = cargo(root)
        .args(["test", "--workspace", "--test", "it", test, "--", "--exact"])
        .envs(stack.env("postgres"))
        .env("GALLERY_BURST_IMAGES", BURST_IMAGES.to_string())
        .env("GALLERY_LOG_DIR", &dir)
        .env("RUST_LOG", "warn")
        .output()
        .context("running the processor burst")?;
    drop(stack);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("1 passed") {
        let why = stdout
            .lines()
            .find(|l| l.contains("panicked") || l.contains("left"))
            .unwrap_or("failed");
        bail!("{why}");
    }
    let delivered = std::fs::read_to_string(dir.join("cases/processor_burst.txt"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    Ok((
        delivered,
        format!("{delivered} events: every image ready or failed with a reason, none stuck"),
    ))
}

fn soak_row(root: &Path, size: Size) -> Row {
    let (slices, seconds, reads, writes) = match size {
        Size::Cut => (2, 15, 50, 10),
        Size::Full => (5, 60, 100, 10),
    };
    let tried = format!(
        "the API at {reads} reads/s (random slugs) + {writes} sales/s (past the per-token limit), pool of 4, {slices} × {seconds} s"
    );
    Row::from_result(AREA, tried, soak(root, slices, seconds, reads, writes))
}

fn soak(root: &Path, slices: u32, seconds: u32, reads: u32, writes: u32) -> Result<(u64, String)> {
    let oha = crate::apibench::ensure_oha(root)?;
    run(cargo(root).args(["build", "--quiet", "--workspace", "--bin", "apibench"]))?;
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    stack.psql("postgres", "CREATE DATABASE gallery_soak OWNER gallery_owner")?;
    let out = Command::new(root.join("target/debug/apibench"))
        .args(["soak", &slices.to_string(), &seconds.to_string()])
        .args([reads.to_string(), writes.to_string()])
        .env("OHA", &oha)
        .envs(stack.env("gallery_soak"))
        .env("DATABASE_POOL_SIZE", "4")
        .env("RUST_LOG", "warn")
        .output()
        .context("running apibench soak")?;
    drop(stack);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("seeded")) {
        println!("  {line}");
    }
    let verdict = stdout.lines().rev().find(|l| l.starts_with("soak: ") && l.contains("requests"));
    let Some(verdict) = verdict else {
        bail!("the soak reported nothing: {}", String::from_utf8_lossy(&out.stderr).trim());
    };
    let requests = verdict
        .strip_prefix("soak: ")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !out.status.success() {
        bail!("{verdict}");
    }
    Ok((requests, verdict.trim_start_matches("soak: ").to_owned()))
}
