//! Developer tasks. `cargo xtask help` lists them.

mod access_review;
mod apibench;
mod backupbench;
mod bench;
mod coldstart;
mod infra;
mod layers;
mod openapi;
mod package;
mod reliability;
mod retentionbench;
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
  package --rds-ca-bundle PATH
                 build the deployable Lambda zips with cargo-lambda (arm64), check and size them
  package --check
                 the same build with a thin profile and a throwaway CA bundle (what CI runs)
  deps           install everything the other tasks need (cmake, nasm, PostgreSQL, Chromium,
                 Node.js, the Python tools, the Terraform providers)
  infra [--skip-authorization]
                 Terraform fmt/validate, checkov, apply-plan-readback-destroy on the emulator,
                 the access review, and the authorization check of the requests `test` recorded
  authorization  the authorization check alone (after `test` and `infra --skip-authorization`)
  layers         the dependency rules: shared's layers (no upward or sideways import, no
                 module cycle, no AWS SDK or database driver in L0), no function depending
                 on another, only the image processor linking the C codecs
  deny           cargo deny check licenses bans sources (offline; cargo-deny pinned, installed
                 into .local/tools); advisories need a network (docs/change-management.md)
  reliability [--cut | --no-mutants] [--only GROUP]
                 generated attacks on the API, fuzzing, faults on the real services, load and
                 soak, security probes, mutation testing of the pure cores and every README
                 command at its smallest size: one table; --cut is CI's bounded run;
                 --no-mutants leaves out the mutation run (hours), which `mutants` runs alone;
                 --only reruns one group: fuzzing, attacks, faults, load, commands, mutants,
                 security
  mutants        cargo mutants over the pure cores (.cargo/mutants.toml): the score and the
                 survivors; GALLERY_MUTANTS_ITERATE=1 retests only what was not caught
  openapi        docs/openapi.json under @redocly/cli's recommended rules, and a TypeScript
                 client typed from it (openapi-typescript) through tsc --strict
  access-review PLAN.json
                 every role's effective permissions from a `terraform show -json` plan
  bench image    our image pipeline side by side with sharp: wall time, peak RSS, bytes
  bench coldstart [RUNS]
                 each release binary's cold start and peak RSS through a Lambda Runtime API,
                 beside a Node.js Express + pg + AWS SDK v3 peer, same run
  bench backup [SIZE_MB...]
                 our backup and restore beside pg_dump -Fc and pg_restore on seeded databases
                 (default 250 and 1000 MB): throughput, output size, peak RSS, KMS calls
  bench api [RATE] [SECONDS]
                 10,000 seeded artworks; oha at a fixed rate (default 200/s, 15 s) on the public list,
                 get-by-slug, a search, the list sorted by title and a sale, beside the same SQL
                 run directly; the api binary's cold start
  bench retention [VERSIONS]
                 the release retention binary sweeping VERSIONS (default 10,000) object versions,
                 primary and DR replica, beside one DeleteObject per version: DeleteObjects calls
                 on the wire (target ⌈n/1000⌉ per bucket), wall time, peak RSS
  ops ARGS       gallery-ops against the running `cargo xtask dev` stack, in-process
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
        Some("package") => package::package(&root, &args[1..]),
        Some("deps") => deps(&root),
        Some("ops") => ops(&root, &args[1..]),
        Some("infra") => infra_checks(&root, !args.iter().any(|a| a == "--skip-authorization")),
        Some("authorization") => infra::authorization(&root, &infra::plan_path(&root)),
        Some("layers") => layers::check(&root),
        Some("openapi") => openapi::check(&root),
        Some("reliability") => reliability::reliability(&root, &args[1..]),
        Some("mutants") => reliability::mutants(&root),
        Some("deny") => deny(&root),
        Some("access-review") => match args.get(1) {
            Some(plan) => access_review::access_review(&root, Path::new(plan)),
            None => bail!("usage: cargo xtask access-review PLAN.json (from `terraform show -json`)"),
        },
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("image") => bench::image(&root),
            Some("coldstart") => coldstart::coldstart(&root, &args[2..]),
            Some("backup") => backupbench::backup(&root, &args[2..]),
            Some("api") => apibench::api(&root, &args[2..]),
            Some("retention") => retentionbench::retention(&root, &args[2..]),
            _ => bail!("usage: cargo xtask bench image | cargo xtask bench coldstart [RUNS] | cargo xtask bench backup [SIZE_MB...] | cargo xtask bench api [RATE] [SECONDS] | cargo xtask bench retention [VERSIONS]"),
        },
        Some("help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n{HELP}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
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
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_BIN_NAME"
                    | "CARGO_CRATE_NAME"
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
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    Ok(flag)
}

fn dev(root: &Path) -> Result<()> {
    let interrupted = interrupted_flag()?;
    let stack = Stack::start(
        root,
        StackOptions { pg_port: 5433, moto_port: 4566, recording: None, secrets: None },
    )?;
    stack.psql("postgres", "CREATE DATABASE gallery OWNER gallery_owner")?;
    let env = stack.env("gallery");
    // For `cargo xtask ops` in another terminal; removed when the stack stops.
    let env_file = DevEnvFile::write(root, &env)?;
    say("building and starting the gallery (API on http://127.0.0.1:3000)");
    let mut child =
        cargo(root).args(["run", "--quiet", "--package", "local", "--"]).envs(env).spawn()?;
    let status = child.wait()?;
    drop(env_file);
    if interrupted.load(Ordering::SeqCst) {
        say("stopping");
        return Ok(());
    }
    if !status.success() {
        bail!("the local gallery stopped with {status}");
    }
    Ok(())
}

/// The running dev stack's coordinates (passwords included), readable by the owner only.
struct DevEnvFile(PathBuf);

impl DevEnvFile {
    fn path(root: &Path) -> PathBuf {
        root.join(".local/dev-stack.env")
    }

    fn write(root: &Path, env: &[(String, String)]) -> Result<Self> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = Self::path(root);
        std::fs::create_dir_all(root.join(".local"))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        for (k, v) in env {
            writeln!(file, "{k}={v}")?;
        }
        Ok(Self(path))
    }
}

impl Drop for DevEnvFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `gallery-ops --local ARGS` against the stack `cargo xtask dev` is running.
fn ops(root: &Path, args: &[String]) -> Result<()> {
    let path = DevEnvFile::path(root);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("no running dev stack ({} missing): start `cargo xtask dev` first", path.display())
    })?;
    let env: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    run(cargo(root)
        .args(["run", "--quiet", "--package", "gallery-ops", "--", "--local"])
        .args(args)
        .envs(env))
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    let _interrupted = interrupted_flag()?;
    // The runtime tests start the functions' real binaries. Built in one
    // invocation with the tests, they resolve the same features (resolver 2
    // enables dev-dependencies' features only when tests are built), so
    // `cargo test` below compiles nothing twice.
    say("building the function binaries and the tests");
    run(cargo(root).args(["build", "--workspace", "--bins", "--tests"]))?;
    tools::browser()?;
    // Every AWS request the suite makes is recorded, for the offline
    // authorization check (`cargo xtask infra` evaluates it against the plan).
    let recording = authz_recording(root);
    std::fs::create_dir_all(recording.parent().unwrap_or(root))?;
    let _ = std::fs::remove_file(&recording);
    // Every log line the run writes is kept and scanned for the secrets it used.
    let logs = reliability::logscan::RunFiles::fresh(root)?;
    let stack = Stack::start(
        root,
        StackOptions {
            recording: Some(recording.clone()),
            secrets: Some(logs.emulator_secrets()),
            ..StackOptions::ephemeral()?
        },
    )?;
    say("running every test against the local stack");
    let mut cmd = cargo(root);
    // Every test binary runs even after one fails, so a run reports all failures.
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .envs(stack.env("postgres"))
        .env("GALLERY_LOG_DIR", &logs.dir)
        // What the functions log deployed (infra: `info`), our own crates at
        // their most talkative, so the scan sees every line they can write.
        .env("RUST_LOG", TEST_LOG_LEVEL);
    let result = tools::run_teed(&mut cmd, &logs.output());
    // PostgreSQL's log is exported to CloudWatch by RDS: scanned too.
    let _ = std::fs::copy(stack.dir.join("postgres.log"), logs.dir.join("postgres.log"));
    let passwords = stack.passwords();
    drop(stack);
    result?;
    let lines = std::fs::read_to_string(&recording).map(|t| t.lines().count()).unwrap_or(0);
    say(&format!(
        "{lines} AWS requests recorded in {} for `cargo xtask infra`",
        recording.display()
    ));
    reliability::logscan::check(&logs, &recording, &passwords)
}

const TEST_LOG_LEVEL: &str = "info,refinery_core=warn,shared=trace,api=trace,image_processor=trace,\
                              backup=trace,retention=trace,edge=trace,local=trace,gallery_ops=trace";

/// The dependency policy (`deny.toml`), the parts that need no network.
fn deny(root: &Path) -> Result<()> {
    let deny =
        tools::cargo_tool(root, "cargo-deny", CARGO_DENY_VERSION, &["--no-default-features"])?;
    run(Command::new(deny).current_dir(root).args([
        "--offline",
        "check",
        "licenses",
        "bans",
        "sources",
    ]))
}

const CARGO_DENY_VERSION: &str = "0.20.2";

/// Where `cargo xtask test` records the suite's AWS requests.
pub fn authz_recording(root: &Path) -> PathBuf {
    root.join("target").join("authz").join("recording.jsonl")
}

/// What the infrastructure checks need: the repository, the Python tools, and
/// an emulator of their own.
pub struct InfraCtx {
    pub root: PathBuf,
    pub python: PathBuf,
    pub venv_bin: PathBuf,
    pub moto_endpoint: String,
}

/// Everything `dev`, `test` and `infra` install, installed now and one at a
/// time, so that CI can run the test suite and the infrastructure checks side
/// by side without two package installs racing.
fn deps(root: &Path) -> Result<()> {
    tools::postgres_bin()?;
    tools::browser()?;
    tools::node()?;
    tools::venv(root)?;
    infra::find_provider_mirror()?;
    Ok(())
}

fn infra_checks(root: &Path, authorize: bool) -> Result<()> {
    let _interrupted = interrupted_flag()?;
    let venv = tools::venv(root)?;
    let logs =
        std::env::temp_dir().join(format!("copper-gallery-infra-moto-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let emulator = stack::Emulator::start(&venv, stack::free_port()?, &logs)?;
    let ctx = InfraCtx {
        root: root.to_path_buf(),
        python: venv.join("bin/python"),
        venv_bin: venv.join("bin"),
        moto_endpoint: emulator.endpoint(),
    };
    let result = infra::run(&ctx, authorize);
    drop(emulator);
    let _ = std::fs::remove_dir_all(&logs);
    result
}

/// The deployable functions; each is a binary of the same name.
const FUNCTIONS: [&str; 5] = ["api", "image-processor", "backup", "retention", "edge"];
