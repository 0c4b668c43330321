//! `cargo xtask infra`: every infrastructure check, offline.
//!
//! 1. Finds the aws provider in a local filesystem mirror and writes a
//!    temporary Terraform CLI config that installs only from it.
//! 2. `terraform fmt -check`, `init -backend=false`, `validate`.
//! 3. checkov over infra/ (0 failed checks; skips are inline with reasons),
//!    run in the background while the emulator test runs.
//! 4. infra/tests/emulator_test.py: apply to the emulator, second plan with
//!    only allowlisted differences, SDK read-back, destroy.
//! 5. The access review over the second plan.
//! 6. The offline authorization check (infra/authz) over the second plan and
//!    the AWS requests `cargo xtask test` recorded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::InfraCtx;

/// Provider the configuration is locked to (infra/.terraform.lock.hcl).
const PROVIDER: &str = "registry.terraform.io/hashicorp/aws";

/// Runs every infrastructure check; fails on the first failing step.
/// Every infrastructure check; with `authorize`, the authorization check of
/// the recorded requests last (CI runs it apart, once the tests have recorded them).
pub fn run(ctx: &InfraCtx, authorize: bool) -> Result<()> {
    let started = Instant::now();
    let infra = ctx.root.join("infra");
    let scratch = std::env::temp_dir().join(format!("copper-gallery-infra-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let result = run_in(ctx, &infra, &scratch).and_then(|plan_json| match authorize {
        true => authorization(&ctx.root, &plan_json),
        false => Ok(()),
    });
    let _ = std::fs::remove_dir_all(&scratch);
    match &result {
        Ok(()) => println!("infra: all checks passed in {:.0}s", started.elapsed().as_secs_f64()),
        Err(e) => eprintln!("infra: failed after {:.0}s: {e:#}", started.elapsed().as_secs_f64()),
    }
    result
}

/// The checks that need no recording; the plan's path, for the authorization check.
fn run_in(ctx: &InfraCtx, infra: &Path, scratch: &Path) -> Result<PathBuf> {
    let mirror = find_provider_mirror()?;
    println!("infra: provider mirror found");
    let rc = scratch.join("terraformrc");
    std::fs::write(&rc, cli_config(&mirror)).context("writing terraform CLI config")?;

    let tf = |args: &[&str], dir: &Path| -> Result<()> {
        let t = Instant::now();
        let status = terraform(&rc, dir)
            .args(args)
            .status()
            .with_context(|| format!("running terraform {}", args.join(" ")))?;
        if !status.success() {
            bail!("terraform {} failed ({status})", args.join(" "));
        }
        println!("infra: terraform {} ok ({:.0}s)", args[0], t.elapsed().as_secs_f64());
        Ok(())
    };
    tf(&["fmt", "-check", "-recursive", "-diff"], infra)?;
    tf(&["init", "-backend=false", "-input=false", "-no-color", "-lockfile=readonly"], infra)?;
    tf(&["validate", "-no-color"], infra)?;

    // checkov is CPU-bound and the emulator test mostly waits on the
    // provider: run them side by side.
    let checkov_log = scratch.join("checkov.log");
    let mut checkov = Command::new(ctx.venv_bin.join("checkov"))
        .args(["-d", ".", "--framework", "terraform", "--quiet", "--compact", "--skip-download"])
        .current_dir(infra)
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .stdout(Stdio::from(std::fs::File::create(&checkov_log)?))
        .stderr(Stdio::null())
        .spawn()
        .context("starting checkov (is it installed from infra/requirements-checks.txt?)")?;

    // Kept beside the recording, so the authorization check can be re-run
    // alone: node infra/authz/evaluate.mjs --plan target/authz/plan.json --requests target/authz/recording.jsonl
    let plan_json = plan_path(&ctx.root);
    if let Some(dir) = plan_json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let t = Instant::now();
    let emulator = terraform_env(Command::new(&ctx.python), &rc)
        .arg(infra.join("tests").join("emulator_test.py"))
        .arg("--infra")
        .arg(infra)
        .arg("--endpoint")
        .arg(&ctx.moto_endpoint)
        .arg("--work")
        .arg(scratch.join("emulator"))
        .arg("--plan-json")
        .arg(&plan_json)
        .status()
        .context("running the emulator test")?;

    let checkov_status = checkov.wait().context("waiting for checkov")?;
    let checkov_out = std::fs::read_to_string(&checkov_log).unwrap_or_default();
    let summary = checkov_out
        .lines()
        .find(|l| l.contains("Passed checks:"))
        .unwrap_or("(no summary)")
        .trim()
        .to_string();
    if !checkov_status.success() || !summary.contains("Failed checks: 0,") {
        print!("{checkov_out}");
        bail!("checkov: {summary}");
    }
    println!("infra: checkov {summary}");

    if !emulator.success() {
        bail!("emulator test failed ({emulator})");
    }
    println!("infra: emulator test ok ({:.0}s)", t.elapsed().as_secs_f64());

    crate::access_review::access_review(&ctx.root, &plan_json)?;
    Ok(plan_json)
}

/// Where the emulator test keeps the plan it read back.
pub fn plan_path(root: &Path) -> PathBuf {
    crate::authz_recording(root).with_file_name("plan.json")
}

/// Would AWS allow it: infra/authz evaluates every request the test suite
/// recorded, the requests AWS makes on the gallery's behalf, the promises as
/// requests that must be refused and the recovery procedure, against the
/// plan's policies (step 6).
pub fn authorization(root: &Path, plan_json: &Path) -> Result<()> {
    let t = Instant::now();
    let recording = crate::authz_recording(root);
    for (file, made_by) in
        [(plan_json, "cargo xtask infra"), (recording.as_path(), "cargo xtask test")]
    {
        if !file.is_file() {
            bail!("{} is missing: run `{made_by}` first", file.display());
        }
    }
    let dir = root.join("infra").join("authz");
    crate::tools::npm_ci(&dir)?;
    let status = Command::new("node")
        .arg("evaluate.mjs")
        .arg("--plan")
        .arg(plan_json)
        .arg("--requests")
        .arg(&recording)
        .arg("--self-test")
        .current_dir(&dir)
        .status()
        .context("running infra/authz/evaluate.mjs")?;
    if !status.success() {
        bail!("a request the gallery makes would be denied, or one that must be refused would be allowed (above)");
    }
    println!("infra: authorization evaluated ({:.0}s)", t.elapsed().as_secs_f64());
    Ok(())
}

/// A `terraform` command that installs providers only from the mirror and
/// never calls home.
fn terraform(rc: &Path, dir: &Path) -> Command {
    let mut cmd = terraform_env(Command::new("terraform"), rc);
    cmd.current_dir(dir);
    cmd
}

fn terraform_env(mut cmd: Command, rc: &Path) -> Command {
    cmd.env("TF_CLI_CONFIG_FILE", rc)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("TF_PLUGIN_CACHE_DIR");
    cmd
}

fn cli_config(mirror: &Path) -> String {
    let path = mirror.display().to_string().replace('\\', "/").replace('"', "\\\"");
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{path}\"\n    include = [\"registry.terraform.io/*/*\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/*/*\"]\n  }}\n}}\n"
    )
}

/// The directory that holds `registry.terraform.io/hashicorp/aws/<version>/`.
///
/// `TF_PROVIDER_MIRROR` wins; then Terraform's implied local mirror
/// directories under the home directory; then a shallow search of the
/// file system (the machine image ships the provider as a mirror).
pub fn find_provider_mirror() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TF_PROVIDER_MIRROR") {
        let dir = PathBuf::from(dir);
        if has_provider(&dir) {
            return Ok(dir);
        }
        bail!("TF_PROVIDER_MIRROR={} has no {PROVIDER}", dir.display());
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        for dir in [home.join(".terraform.d/plugins"), home.join(".local/share/terraform/plugins")]
        {
            if has_provider(&dir) {
                return Ok(dir);
            }
        }
    }
    for dir in std::env::var_os("XDG_DATA_DIRS")
        .map(|v| std::env::split_paths(&v).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let dir = dir.join("terraform/plugins");
        if has_provider(&dir) {
            return Ok(dir);
        }
    }
    // Breadth-first, four levels deep, skipping virtual and volatile trees.
    let skip = ["proc", "sys", "dev", "run", "tmp", "var", "boot", "lost+found", "snap"];
    let mut level = vec![PathBuf::from(std::path::MAIN_SEPARATOR_STR)];
    for depth in 0..4 {
        let mut next = Vec::new();
        for dir in level {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else { continue };
                if !kind.is_dir() {
                    continue;
                }
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if depth == 0 && skip.contains(&name.as_ref()) {
                    continue;
                }
                if name == "registry.terraform.io" && has_provider(&dir) {
                    return Ok(dir);
                }
                if !name.starts_with('.') && name != "node_modules" && name != "target" {
                    next.push(entry.path());
                }
            }
        }
        level = next;
    }
    bail!("no filesystem mirror with {PROVIDER} found; set TF_PROVIDER_MIRROR")
}

fn has_provider(mirror: &Path) -> bool {
    let dir = mirror.join(PROVIDER);
    std::fs::read_dir(dir)
        .map(|mut versions| versions.any(|v| v.map(|v| v.path().is_dir()).unwrap_or(false)))
        .unwrap_or(false)
}
