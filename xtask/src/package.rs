//! The deployable zips: `cargo lambda build --arm64 --output-format zip`, one
//! function at a time so each links only what it uses (the
//! image codecs go into the image processor alone), then the RDS CA bundle
//! added to each zip, then every zip checked: an aarch64 ELF `bootstrap`, the
//! bundle, and its size.
//!
//! `--check` does the same with the thinner `lambda-check` profile (no LTO)
//! and a throwaway CA bundle: what CI runs so a change that breaks the arm64
//! build of the C codecs under the Zig linker fails before a deploy would.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

// Each function's package and binary share its name.
use crate::{run, say, tools, FUNCTIONS};

/// Largest zip we accept from a release build (bytes).
const MAX_ZIP_BYTES: u64 = 5_000_000;
const TARGET: &str = "aarch64-unknown-linux-gnu";

pub fn package(root: &Path, args: &[String]) -> Result<()> {
    let (check, ca_bundle, extra) = match args {
        [flag, rest @ ..] if flag == "--check" => (true, throwaway_ca(root)?, rest),
        [flag, path, rest @ ..] if flag == "--rds-ca-bundle" => (false, PathBuf::from(path), rest),
        _ => bail!(
            "usage: cargo xtask package --rds-ca-bundle PATH [cargo lambda build options]\n\
             \x20      cargo xtask package --check   (CI: thin profile, throwaway CA bundle)\n\
             (the RDS CA bundle from AWS's documentation, e.g. global-bundle.pem)"
        ),
    };
    if !std::fs::read_to_string(&ca_bundle)
        .with_context(|| format!("reading {}", ca_bundle.display()))?
        .contains("BEGIN CERTIFICATE")
    {
        bail!("{} holds no PEM certificate", ca_bundle.display());
    }
    let venv = tools::venv_with(root, &root.join("xtask/requirements-package.txt"), "package")?;
    // Idempotent; the target's standard library comes from rustup.
    run(Command::new("rustup").args(["target", "add", TARGET]))?;
    no_codecs_outside_the_processor(root)?;
    let profile = if check { "lambda-check" } else { "release" };
    let path =
        format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    for function in FUNCTIONS {
        say(&format!("building {function} for arm64 ({profile})"));
        let mut cmd = Command::new(venv.join("bin/cargo-lambda"));
        cmd.current_dir(root)
            .env("PATH", &path)
            .args(["lambda", "build", "--arm64", "--output-format", "zip", "--profile", profile])
            .args(["--package", function, "--bin", function])
            .args(extra);
        run(&mut cmd)?;
    }
    let mut problems = Vec::new();
    say("zip                              bytes     bootstrap  CA bundle");
    for function in FUNCTIONS {
        let zip = root.join("target/lambda").join(function).join("bootstrap.zip");
        add_ca_bundle(&venv, &zip, &ca_bundle)?;
        let facts = inspect(&venv, &zip)?;
        say(&format!(
            "{:<30} {:>9}  {:<9}  {}",
            format!("{function}/bootstrap.zip"),
            facts.bytes,
            if facts.aarch64_elf { "aarch64" } else { "WRONG" },
            if facts.ca_bundle { "yes" } else { "MISSING" }
        ));
        if !facts.aarch64_elf {
            problems.push(format!("{function}: bootstrap is not an aarch64 ELF executable"));
        }
        if !facts.ca_bundle {
            problems.push(format!("{function}: rds-ca-bundle.pem is missing"));
        }
        if !check && facts.bytes > MAX_ZIP_BYTES {
            problems.push(format!(
                "{function}: {} bytes is over the {MAX_ZIP_BYTES}-byte budget",
                facts.bytes
            ));
        }
    }
    if !problems.is_empty() {
        bail!("the zips are not deployable:\n{}", problems.join("\n"));
    }
    Ok(())
}

/// The API, backup and retention binaries must not carry the image codecs.
fn no_codecs_outside_the_processor(root: &Path) -> Result<()> {
    for function in FUNCTIONS.iter().filter(|f| **f != "image-processor") {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args([
                "tree",
                "--package",
                function,
                "--edges",
                "normal,build",
                "--target",
                TARGET,
                "--invert",
                "turbojpeg-sys",
            ])
            .output()
            .context("running cargo tree")?;
        // `--invert` of a package that is not in the graph is an error: what we want.
        if out.status.success() {
            bail!("{function} links libjpeg-turbo: only the image processor depends on the codecs");
        }
    }
    Ok(())
}

/// A self-signed certificate standing in for the RDS bundle in `--check`.
fn throwaway_ca(root: &Path) -> Result<PathBuf> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key)?;
    let path = root.join("target/lambda-check-ca.pem");
    std::fs::create_dir_all(root.join("target"))?;
    std::fs::write(&path, cert.pem())?;
    Ok(path)
}

fn add_ca_bundle(venv: &Path, zip: &Path, ca_bundle: &Path) -> Result<()> {
    // Rewritten rather than appended, so a second run leaves one copy.
    let script = "import sys, zipfile, shutil\n\
        src, bundle = sys.argv[1], sys.argv[2]\n\
        tmp = src + '.tmp'\n\
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as zout:\n\
        \x20   for item in zin.infolist():\n\
        \x20       if item.filename != 'rds-ca-bundle.pem':\n\
        \x20           zout.writestr(item, zin.read(item.filename))\n\
        \x20   zout.write(bundle, 'rds-ca-bundle.pem')\n\
        shutil.move(tmp, src)\n";
    run(Command::new(venv.join("bin/python")).args(["-c", script]).arg(zip).arg(ca_bundle))
}

struct ZipFacts {
    bytes: u64,
    aarch64_elf: bool,
    ca_bundle: bool,
}

fn inspect(venv: &Path, zip: &Path) -> Result<ZipFacts> {
    // ELF magic, 64-bit class, little-endian, e_machine 183 (EM_AARCH64), and executable mode.
    let script = "import sys, zipfile, struct\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        names = z.namelist()\n\
        ok = False\n\
        if 'bootstrap' in names:\n\
        \x20   head = z.read('bootstrap')[:20]\n\
        \x20   mode = (z.getinfo('bootstrap').external_attr >> 16) & 0o111\n\
        \x20   ok = head[:4] == b'\\x7fELF' and head[4] == 2 and head[5] == 1 and struct.unpack('<H', head[18:20])[0] == 183 and mode != 0\n\
        print(int(ok), int('rds-ca-bundle.pem' in names))\n";
    let out = Command::new(venv.join("bin/python")).args(["-c", script]).arg(zip).output()?;
    if !out.status.success() {
        bail!("{}: {}", zip.display(), String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut flags = text.split_whitespace().map(|f| f == "1");
    Ok(ZipFacts {
        bytes: std::fs::metadata(zip)?.len(),
        aarch64_elf: flags.next().unwrap_or(false),
        ca_bundle: flags.next().unwrap_or(false),
    })
}
