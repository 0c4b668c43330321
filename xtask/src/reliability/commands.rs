//! README commands that cannot rot: every `cargo xtask bench …` and operator
//! command the README shows, run at its smallest size. A benchmark that
//! fails while seeding fails here, not months later in someone's hands.
//!
//! Run as the README runs them (this very binary is `cargo xtask`), one at a
//! time: each starts stacks on the ports it names. `gallery-ops … backup
//! history` against AWS needs a deployment; its tasks run in-process here
//! through `cargo xtask ops`, the same code.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Row;

const AREA: &str = "README commands";

/// Each benchmark at its smallest size.
const BENCHES: &[&[&str]] = &[
    &["bench", "backup", "5"],
    &["bench", "retention", "200"],
    &["bench", "coldstart", "1"],
    &["bench", "api", "50", "3"],
    &["bench", "image"],
];

/// The operator commands, against the running `cargo xtask dev`.
const OPERATOR: &[&[&str]] = &[
    &["ops", "admin", "bootstrap", "--label", "README check"],
    &["ops", "tokens", "list"],
    &["ops", "check", "--api-url", "http://127.0.0.1:3000", "--wait-seconds", "120"],
];

pub fn rows(root: &Path) -> Vec<Row> {
    let mut rows: Vec<Row> = BENCHES
        .iter()
        .map(|args| {
            let tried = format!("cargo xtask {}", args.join(" "));
            Row::from_result(
                AREA,
                tried,
                xtask(root, args).map(|()| (1, "ran to its report".into())),
            )
        })
        .collect();
    let tried = format!(
        "cargo xtask dev, then {}",
        OPERATOR
            .iter()
            .map(|a| format!("`cargo xtask {}`", a.join(" ")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    rows.push(Row::from_result(AREA, tried, operator_commands(root)));
    rows
}

/// `cargo xtask ARGS`, its output kept beside the suite's other logs (but
/// an operator command's stdout, which holds the tokens it issues).
fn xtask(root: &Path, args: &[&str]) -> Result<()> {
    let name: String =
        args.join("-").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let log = root.join("target/reliability/commands").join(format!("{name}.log"));
    std::fs::create_dir_all(log.parent().unwrap_or(root))?;
    let out = Command::new(std::env::current_exe()?)
        .args(args)
        .current_dir(root)
        .output()
        .with_context(|| format!("starting cargo xtask {}", args.join(" ")))?;
    let stdout: &[u8] = if args[0] == "ops" { b"" } else { &out.stdout };
    std::fs::write(&log, [stdout, out.stderr.as_slice()].concat())?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(3).collect();
        bail!("{} (see {})", last.join(" / "), log.display());
    }
    Ok(())
}

fn operator_commands(root: &Path) -> Result<(u64, String)> {
    use std::os::unix::process::CommandExt;
    // Its own process group, so one signal stops the gallery and its stack.
    let mut dev = Command::new(std::env::current_exe()?)
        .arg("dev")
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting cargo xtask dev")?;
    let result = (|| {
        wait_for_health(Duration::from_secs(300))?;
        for args in OPERATOR {
            xtask(root, args)?;
        }
        Ok((OPERATOR.len() as u64, "each exited 0 against the running gallery".to_owned()))
    })();
    let _ = Command::new("kill").args(["-INT", &format!("-{}", dev.id())]).status();
    let _ = dev.wait();
    result
}

/// The dev gallery answers `/v1/health` (it builds first, so this waits).
fn wait_for_health(limit: Duration) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let up = std::net::TcpStream::connect("127.0.0.1:3000").is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let request = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            let mut reply = String::new();
            s.write_all(request.as_bytes()).is_ok()
                && s.read_to_string(&mut reply).is_ok()
                && reply.starts_with("HTTP/1.1 200")
        });
        if up {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    bail!("cargo xtask dev did not answer /v1/health within {limit:?}")
}
