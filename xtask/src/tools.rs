//! Installs what the local stack needs: PostgreSQL from Debian's packages and a
//! Python virtual environment with the pinned S3/KMS emulator.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{run, say};

/// Directory of the PostgreSQL server binaries, installing the server if absent.
pub fn postgres_bin() -> Result<PathBuf> {
    if let Some(dir) = find_postgres_bin() {
        return Ok(dir);
    }
    say("PostgreSQL server not found; installing Debian's postgresql package");
    apt_install(&["postgresql"])?;
    find_postgres_bin().context("postgresql was installed but its binaries were not found")
}

fn find_postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("postgres").is_file() && d.join("initdb").is_file())
        .collect();
    // Highest major version first.
    dirs.sort_by_key(|d| {
        std::cmp::Reverse(
            d.parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    dirs.into_iter().next()
}

/// What building the workspace needs beyond Rust: libjpeg-turbo is compiled
/// from source (statically, since Lambda's runtime has no libjpeg), which takes
/// cmake and nasm; the local stack's admin steps use psql.
pub fn build_deps() -> Result<()> {
    let missing: Vec<&str> = [("cmake", "cmake"), ("nasm", "nasm"), ("psql", "postgresql-client")]
        .into_iter()
        .filter(|(bin, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .map(|(_, package)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    say(&format!("installing build tools: {}", missing.join(", ")));
    apt_install(&missing)
}

/// The browser test loads the gallery's images in Debian's Chromium, headless.
pub fn browser() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    say("installing Chromium for the browser test");
    apt_install(&["chromium", "fonts-dejavu-core"])
}

/// The offline authorization check (infra/authz) runs on Node.js with npm.
pub fn node() -> Result<()> {
    let found = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found("node") && found("npm") {
        return Ok(());
    }
    say("installing Node.js and npm for the authorization check");
    apt_install(&["nodejs", "npm"])
}

/// Node.js, then exactly the packages `dir`'s lock file pins.
pub fn npm_ci(dir: &Path) -> Result<()> {
    node()?;
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir)
        .status()
        .with_context(|| format!("running npm ci in {}", dir.display()))?;
    if !status.success() {
        bail!("npm ci in {} failed ({status})", dir.display());
    }
    Ok(())
}

/// Installs Debian packages (as root, or through sudo).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut cmd = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(packages);
    run(&mut install)
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// The project's Python environment with the emulator (and the infrastructure
/// checkers), created on first use and refreshed when a requirements file changes.
pub fn venv(root: &Path) -> Result<PathBuf> {
    venv_with_all(
        root,
        &[root.join("xtask/requirements.txt"), root.join("infra/requirements-checks.txt")],
        "stack",
    )
}

/// The same environment with one more requirements file installed.
pub fn venv_with(root: &Path, requirements: &Path, name: &str) -> Result<PathBuf> {
    venv_with_all(root, &[requirements.to_path_buf()], name)
}

/// An environment of its own (`.local/venv-NAME`), for a tool whose pins
/// would clash with the emulator's.
pub fn venv_apart(root: &Path, requirements: &Path, name: &str) -> Result<PathBuf> {
    venv_in(&root.join(format!(".local/venv-{name}")), &[requirements.to_path_buf()], name)
}

fn venv_with_all(root: &Path, files: &[PathBuf], name: &str) -> Result<PathBuf> {
    venv_in(&root.join(".local/venv"), files, name)
}

fn venv_in(dir: &Path, files: &[PathBuf], name: &str) -> Result<PathBuf> {
    let dir = dir.to_path_buf();
    let python = dir.join("bin/python");
    let mut wanted = String::new();
    for f in files.iter().filter(|f| f.exists()) {
        wanted.push_str(&std::fs::read_to_string(f)?);
    }
    let stamp = dir.join(format!(".requirements-{name}"));
    if python.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(dir);
    }
    if !python.is_file() {
        say(&format!("creating the Python environment in {}", dir.display()));
        if run(Command::new("python3").args(["-m", "venv"]).arg(&dir)).is_err() {
            apt_install(&["python3", "python3-venv"])?;
            run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
        }
    }
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    for f in files.iter().filter(|f| f.exists()) {
        pip.arg("-r").arg(f);
    }
    say(&format!("installing the pinned Python tools ({name})"));
    run(&mut pip)?;
    std::fs::write(&stamp, wanted)?;
    Ok(dir)
}

/// The unprivileged account PostgreSQL runs as when we are root (it refuses root).
pub fn postgres_account() -> Result<Option<String>> {
    if !is_root() {
        return Ok(None);
    }
    let exists =
        Command::new("id").arg("postgres").output().map(|o| o.status.success()).unwrap_or(false);
    if !exists {
        run(Command::new("useradd").args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ]))?;
    }
    Ok(Some("postgres".into()))
}

/// Runs a command with its output on the terminal and also in `file` (both
/// streams, line by line as they arrive); a non-zero exit is an error.
pub fn run_teed(cmd: &mut Command, file: &Path) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    let out = Arc::new(Mutex::new(std::fs::File::create(file)?));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    fn copy<R: std::io::Read + Send + 'static>(
        from: R,
        to_terminal: fn(&[u8]),
        file: Arc<Mutex<std::fs::File>>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
                to_terminal(&line);
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(&line);
                }
                line.clear();
            }
        })
    }
    let threads = [
        copy(
            child.stdout.take().context("stdout")?,
            |l| {
                let _ = std::io::stdout().write_all(l);
            },
            out.clone(),
        ),
        copy(
            child.stderr.take().context("stderr")?,
            |l| {
                let _ = std::io::stderr().write_all(l);
            },
            out,
        ),
    ];
    let status = child.wait()?;
    for t in threads {
        let _ = t.join();
    }
    if !status.success() {
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        bail!("{} {} failed with {status}", cmd.get_program().to_string_lossy(), args.join(" "));
    }
    Ok(())
}

/// A Rust tool from crates.io at a pinned version, installed once into the
/// checkout's `.local/tools` (never the user's cargo home); its binary's path.
pub fn cargo_tool(root: &Path, krate: &str, version: &str, flags: &[&str]) -> Result<PathBuf> {
    let tools = root.join(".local/tools");
    let binary = tools.join("bin").join(krate);
    let installed = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(version));
    if !installed.unwrap_or(false) {
        crate::say(&format!("installing {krate} {version} into {}", tools.display()));
        run(Command::new("cargo")
            .args(["install", "--locked", "--quiet", krate, "--version", version])
            .args(flags)
            .arg("--root")
            .arg(&tools))?;
    }
    Ok(binary)
}
