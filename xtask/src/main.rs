//! Developer tasks. `cargo xtask help` lists them.

mod access_review;
mod bench;
mod infra;
mod stack;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use stack::{Stack, StackOptions};

const HELP: &str = "\
cargo xtask <task>

  dev            run the whole gallery locally: PostgreSQL (TLS only), the S3/KMS emulator,
                 the API on http://127.0.0.1:3000 and the image processor on new uploads
  test           start the same services on free ports, run every test, stop them
  package        build the deployable Lambda zips with cargo-lambda (arm64)
  deps           install the system packages the build needs (cmake, nasm, psql)
  infra          Terraform fmt/validate, checkov, apply-plan-readback-destroy on the emulator,
                 and the access review
  access-review PLAN.json
                 every role's effective permissions from a `terraform show -json` plan
  bench image    our image pipeline side by side with sharp: wall time, peak RSS, bytes
";

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    if matches!(args.first().map(String::as_str), Some("dev" | "test" | "package" | "deps")) {
        tools::build_deps()?;
    }
    match args.first().map(String::as_str) {
        Some("dev") => dev(&root),
        Some("test") => test(&root, &args[1..]),
        Some("package") => package(&root, &args[1..]),
        Some("deps") => Ok(()),
        Some("infra") => infra_checks(&root),
        Some("access-review") => match args.get(1) {
            Some(plan) => access_review::access_review(&root, Path::new(plan)),
            None => bail!("usage: cargo xtask access-review PLAN.json (from `terraform show -json`)"),
        },
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("image") => bench::image(&root),
            _ => bail!("usage: cargo xtask bench image"),
        },
        Some("help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n{HELP}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub fn say(message: &str) {
    eprintln!("xtask: {message}");
}

/// Runs a command to completion; a non-zero exit is an error naming it.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        // Program and arguments only: the environment may hold passwords.
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        bail!("{} {} failed with {status}", cmd.get_program().to_string_lossy(), args.join(" "));
    }
    Ok(())
}

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    // `cargo run` describes xtask's own package in these; build scripts that
    // watch them would see a change and rebuild half the dependency tree.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_PRIMARY_PACKAGE" | "CARGO_BIN_NAME" | "CARGO_CRATE_NAME"
            )
        {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

/// Ctrl-C reaches every process of the foreground group; xtask only notes it,
/// waits for its children to stop, and then tears the stack down.
fn interrupted_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    Ok(flag)
}

fn dev(root: &Path) -> Result<()> {
    let interrupted = interrupted_flag()?;
    let stack = Stack::start(root, StackOptions { pg_port: 5433, moto_port: 4566 })?;
    stack.psql("postgres", "CREATE DATABASE gallery OWNER gallery_owner")?;
    let env = stack.env("gallery");
    say("building and starting the gallery (API on http://127.0.0.1:3000)");
    let mut child = cargo(root).args(["run", "--quiet", "--package", "local", "--"]).envs(env).spawn()?;
    let status = child.wait()?;
    if interrupted.load(Ordering::SeqCst) {
        say("stopping");
        return Ok(());
    }
    if !status.success() {
        bail!("the local gallery stopped with {status}");
    }
    Ok(())
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    let _interrupted = interrupted_flag()?;
    // The runtime tests start the functions' real binaries; build them with
    // the same features as the tests, so nothing compiles twice.
    say("building the function binaries");
    run(cargo(root).args(["build", "--workspace", "--bins"]))?;
    let stack = Stack::start(root, StackOptions::ephemeral()?)?;
    say("running every test against the local stack");
    let mut cmd = cargo(root);
    // Every test binary runs even after one fails, so a run reports all failures.
    cmd.args(["test", "--workspace", "--no-fail-fast"]).args(extra).envs(stack.env("postgres"));
    let result = run(&mut cmd);
    drop(stack);
    result
}

/// What the infrastructure checks need: the repository, the Python tools, and
/// an emulator of their own.
pub struct InfraCtx {
    pub root: PathBuf,
    pub python: PathBuf,
    pub venv_bin: PathBuf,
    pub moto_endpoint: String,
}

fn infra_checks(root: &Path) -> Result<()> {
    let _interrupted = interrupted_flag()?;
    let venv = tools::venv(root)?;
    let logs = std::env::temp_dir().join(format!("copper-gallery-infra-moto-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let emulator = stack::Emulator::start(&venv, stack::free_port()?, &logs)?;
    let ctx = InfraCtx {
        root: root.to_path_buf(),
        python: venv.join("bin/python"),
        venv_bin: venv.join("bin"),
        moto_endpoint: emulator.endpoint(),
    };
    let result = infra::run(&ctx);
    drop(emulator);
    let _ = std::fs::remove_dir_all(&logs);
    result
}

fn package(root: &Path, args: &[String]) -> Result<()> {
    // The functions verify RDS's certificate against this bundle, shipped in each zip.
    let (ca_bundle, extra) = match args {
        [flag, path, rest @ ..] if flag == "--rds-ca-bundle" => (PathBuf::from(path), rest),
        _ => bail!("usage: cargo xtask package --rds-ca-bundle PATH [cargo lambda build options]\n(the RDS CA bundle from AWS's documentation, e.g. global-bundle.pem)"),
    };
    if !std::fs::read_to_string(&ca_bundle).with_context(|| format!("reading {}", ca_bundle.display()))?.contains("BEGIN CERTIFICATE") {
        bail!("{} holds no PEM certificate", ca_bundle.display());
    }
    let venv = tools::venv_with(root, &root.join("xtask/requirements-package.txt"), "package")?;
    let path = format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(venv.join("bin/cargo-lambda"));
    cmd.current_dir(root).env("PATH", path).args(["lambda", "build", "--release", "--arm64", "--output-format", "zip"]);
    for bin in FUNCTIONS {
        cmd.args(["--bin", bin]);
    }
    cmd.args(extra);
    run(&mut cmd)?;
    for function in FUNCTIONS {
        let zip = root.join("target/lambda").join(function).join("bootstrap.zip");
        let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'a', zipfile.ZIP_DEFLATED) as z:\n    z.write(sys.argv[2], 'rds-ca-bundle.pem')\n";
        run(Command::new(venv.join("bin/python")).args(["-c", script]).arg(&zip).arg(&ca_bundle))?;
        say(&format!("{} (with rds-ca-bundle.pem)", zip.display()));
    }
    Ok(())
}

/// The deployable functions; each is a binary of the same name.
const FUNCTIONS: [&str; 4] = ["api", "image-processor", "backup", "retention"];
