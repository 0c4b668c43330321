//! `cargo xtask bench image`: the rendition core (the `render` CLI of the image processor)
//! side by side with sharp (npm) on the same job: long edge 2048 / 1024 / 400, JPEG q82 4:2:0
//! and WebP q80 each, orientation applied, metadata stripped.
//!
//! Self-contained: installs its own peers under `.local/bench/` (sharp from npm, a Python venv
//! with exact pins for the corpus generator; hyperfine, GNU time and exiftool from apt when
//! missing and running as root), generates the corpus deterministically, builds the CLI in
//! release mode, then prints wall time (hyperfine), peak RSS (GNU time) and JPEG bytes with the
//! ratios ours/sharp against the targets (≤ 0.5× wall, ≤ 0.5× RSS, JPEG bytes within ±5%).
//!
//! Environment: `BENCH_RUNS` (hyperfine runs per command, default 10).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The inputs: (file in the corpus, what it is).
const INPUTS: [(&str, &str); 2] =
    [("a_24mp_o6.jpg", "24 MP JPEG, orientation 6"), ("c_8mp_rgb16.png", "8 MP 16-bit PNG")];

/// Runs the image benchmark from the project root.
pub fn image(root: &Path) -> Result<()> {
    let assets = root.join("xtask/bench");
    let dir = root.join(".local/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    ensure_system_tools()?;
    let node_modules = install_sharp(&assets, &dir)?;
    let python = ensure_venv(&assets, &dir)?;
    let corpus = ensure_corpus(&assets, &dir, &python)?;
    let ours = build_cli(root)?;
    let runs: u32 = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);

    let mut rows = Vec::new();
    for (file, label) in INPUTS {
        let input = corpus.join(file);
        let out_ours = dir.join("out/ours").join(file);
        let out_sharp = dir.join("out/sharp").join(file);
        for d in [&out_ours, &out_sharp] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d)?;
        }
        // Ours also writes its production metadata (artist and title EXIF); sharp strips all.
        let cmd_ours = vec![
            ours.display().to_string(),
            input.display().to_string(),
            out_ours.display().to_string(),
            "--artist".to_string(),
            "Test-Artist".to_string(),
            "--title".to_string(),
            "Benchmark".to_string(),
        ];
        let cmd_sharp = vec![
            "node".to_string(),
            assets.join("sharp_job.js").display().to_string(),
            input.display().to_string(),
            out_sharp.display().to_string(),
        ];
        eprintln!("\n== {label}: {}", input.display());
        let csv = dir.join(format!("hyperfine_{file}.csv"));
        let status = Command::new("hyperfine")
            .env("NODE_PATH", &node_modules)
            .args(["-N", "-w", "1", "-r", &runs.to_string(), "--export-csv"])
            .arg(&csv)
            .args(["-n", "ours", &cmd_ours.join(" "), "-n", "sharp", &cmd_sharp.join(" ")])
            .status()
            .context("running hyperfine")?;
        if !status.success() {
            bail!("hyperfine failed on {file}");
        }
        let wall = read_hyperfine_means(&csv)?;
        let rss_ours = peak_rss_kib(&cmd_ours, &node_modules)?;
        let rss_sharp = peak_rss_kib(&cmd_sharp, &node_modules)?;
        let ours_files = outputs(&out_ours)?;
        let sharp_files = outputs(&out_sharp)?;
        check_same_outputs(&ours_files, &sharp_files)?;
        let leftovers = metadata_leftovers(&out_ours)?;
        rows.push(Row {
            label,
            wall_ours: wall.0,
            wall_sharp: wall.1,
            rss_ours,
            rss_sharp,
            jpeg_ours: bytes_of(&ours_files, "jpg"),
            jpeg_sharp: bytes_of(&sharp_files, "jpg"),
            webp_ours: bytes_of(&ours_files, "webp"),
            webp_sharp: bytes_of(&sharp_files, "webp"),
            leftovers,
        });
    }
    report(&rows);
    Ok(())
}

struct Row {
    label: &'static str,
    wall_ours: f64,
    wall_sharp: f64,
    rss_ours: u64,
    rss_sharp: u64,
    jpeg_ours: u64,
    jpeg_sharp: u64,
    webp_ours: u64,
    webp_sharp: u64,
    leftovers: Vec<String>,
}

fn report(rows: &[Row]) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!("| input | wall ours | wall sharp | wall ratio | RSS ours | RSS sharp | RSS ratio | JPEG bytes ratio | WebP bytes ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut all_met = true;
    for r in rows {
        let wall = r.wall_ours / r.wall_sharp;
        let rss = r.rss_ours as f64 / r.rss_sharp as f64;
        let jpeg = r.jpeg_ours as f64 / r.jpeg_sharp as f64;
        let webp = r.webp_ours as f64 / r.webp_sharp as f64;
        let met =
            wall <= 0.5 && rss <= 0.5 && (0.95..=1.05).contains(&jpeg) && r.leftovers.is_empty();
        all_met &= met;
        println!(
            "| {} | {:.3} s | {:.3} s | {:.2}× | {:.1} MiB | {:.1} MiB | {:.2}× | {:.3} | {:.3} |",
            r.label,
            r.wall_ours,
            r.wall_sharp,
            wall,
            mib(r.rss_ours),
            mib(r.rss_sharp),
            rss,
            jpeg,
            webp
        );
        for l in &r.leftovers {
            println!("  metadata left in our output: {l}");
        }
    }
    println!();
    println!(
        "targets (wall ≤ 0.5×, peak RSS ≤ 0.5×, JPEG bytes within ±5%, no GPS/XMP/IPTC): {}",
        if all_met { "met" } else { "NOT met" }
    );
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// hyperfine, GNU time and exiftool come from apt; node, npm and python3 must be there already.
fn ensure_system_tools() -> Result<()> {
    let mut missing = Vec::new();
    if !have("hyperfine") {
        missing.push("hyperfine");
    }
    if !Path::new("/usr/bin/time").exists() {
        missing.push("time");
    }
    if !have("exiftool") {
        missing.push("libimage-exiftool-perl");
    }
    if !missing.is_empty() {
        if !is_root() {
            bail!(
                "the benchmark needs these Debian packages: apt-get install {}",
                missing.join(" ")
            );
        }
        eprintln!("xtask: installing {}", missing.join(" "));
        crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
        crate::run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    for tool in ["node", "npm", "python3"] {
        if !have(tool) {
            bail!("the benchmark needs {tool} on PATH");
        }
    }
    Ok(())
}

/// sharp at the exact version of `xtask/bench/package.json`, in `.local/bench/node`.
fn install_sharp(assets: &Path, dir: &Path) -> Result<PathBuf> {
    let node = dir.join("node");
    std::fs::create_dir_all(&node)?;
    let manifest = std::fs::read(assets.join("package.json"))?;
    let installed = node.join("node_modules/sharp/package.json").exists()
        && std::fs::read(node.join("package.json")).ok().as_deref() == Some(manifest.as_slice());
    if !installed {
        std::fs::write(node.join("package.json"), &manifest)?;
        eprintln!("xtask: installing sharp into {}", node.display());
        crate::run(Command::new("npm").current_dir(&node).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))?;
    }
    Ok(node.join("node_modules"))
}

/// The corpus generator's venv, `.local/bench/venv`, with the exact pins of requirements.txt.
fn ensure_venv(assets: &Path, dir: &Path) -> Result<PathBuf> {
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    let requirements = assets.join("requirements.txt");
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read(&requirements)?;
    if python.exists() && std::fs::read(&stamp).ok().as_deref() == Some(wanted.as_slice()) {
        return Ok(python);
    }
    if !python.exists() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    eprintln!("xtask: installing the corpus generator's packages into {}", venv.display());
    crate::run(
        Command::new(venv.join("bin/pip")).args(["install", "-q", "-r"]).arg(&requirements),
    )?;
    std::fs::write(&stamp, &wanted)?;
    Ok(python)
}

/// `.local/bench/corpus`, regenerated whenever the generator or its pins change.
fn ensure_corpus(assets: &Path, dir: &Path, python: &Path) -> Result<PathBuf> {
    let corpus = dir.join("corpus");
    let script = assets.join("make_corpus.py");
    let mut wanted = std::fs::read(&script)?;
    wanted.extend(std::fs::read(assets.join("requirements.txt"))?);
    let stamp = corpus.join(".stamp");
    let complete = INPUTS.iter().all(|(f, _)| corpus.join(f).exists());
    if complete && std::fs::read(&stamp).ok().as_deref() == Some(wanted.as_slice()) {
        return Ok(corpus);
    }
    let _ = std::fs::remove_dir_all(&corpus);
    eprintln!("xtask: generating the benchmark corpus (about half a minute)");
    crate::run(Command::new(python).arg(&script).arg(&corpus))?;
    std::fs::write(&stamp, &wanted)?;
    Ok(corpus)
}

/// Builds the `render` CLI in release mode and returns its path.
fn build_cli(root: &Path) -> Result<PathBuf> {
    eprintln!("xtask: building the render CLI (release)");
    crate::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["build", "--release", "--quiet", "-p", "image-processor", "--bin", "render"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/render"))
}

/// (ours, sharp) mean wall seconds from hyperfine's CSV export.
fn read_hyperfine_means(csv: &Path) -> Result<(f64, f64)> {
    let text = std::fs::read_to_string(csv)?;
    let mut ours = None;
    let mut sharp = None;
    for line in text.lines().skip(1) {
        let mut cols = line.split(',');
        let name = cols.next().unwrap_or_default();
        let mean: Option<f64> = cols.next().and_then(|m| m.parse().ok());
        match name {
            "ours" => ours = mean,
            "sharp" => sharp = mean,
            _ => {}
        }
    }
    match (ours, sharp) {
        (Some(o), Some(s)) => Ok((o, s)),
        _ => bail!("unexpected hyperfine export in {}", csv.display()),
    }
}

/// Median over three runs of the peak RSS (KiB) as GNU time reports it.
fn peak_rss_kib(cmd: &[String], node_modules: &Path) -> Result<u64> {
    let mut samples = Vec::new();
    for _ in 0..3 {
        let out = Command::new("/usr/bin/time")
            .env("NODE_PATH", node_modules)
            .args(["-f", "PEAK_RSS_KIB=%M"])
            .args(cmd)
            .output()
            .context("running /usr/bin/time")?;
        if !out.status.success() {
            bail!("{} failed: {}", cmd.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let kib = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("PEAK_RSS_KIB="))
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .next_back()
            .context("no peak RSS in GNU time's output")?;
        samples.push(kib);
    }
    samples.sort_unstable();
    Ok(samples[1])
}

/// (file name, bytes) of every output, sorted by name.
fn outputs(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        files.push((entry.file_name().to_string_lossy().into_owned(), entry.metadata()?.len()));
    }
    files.sort();
    Ok(files)
}

fn bytes_of(files: &[(String, u64)], ext: &str) -> u64 {
    files.iter().filter(|f| f.0.ends_with(ext)).map(|f| f.1).sum()
}

/// Both sides must have produced the same set of files (and so the same job).
fn check_same_outputs(ours: &[(String, u64)], sharp: &[(String, u64)]) -> Result<()> {
    let names = |v: &[(String, u64)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    if names(ours) != names(sharp) {
        bail!("different outputs: ours {:?}, sharp {:?}", names(ours), names(sharp));
    }
    Ok(())
}

/// GPS, XMP, IPTC or camera tags exiftool still finds in our outputs (independent check).
fn metadata_leftovers(dir: &Path) -> Result<Vec<String>> {
    let out = Command::new("exiftool")
        .args([
            "-s",
            "-a",
            "-G0",
            "-XMP:all",
            "-IPTC:all",
            "-GPS:all",
            "-Make",
            "-Model",
            "-LensModel",
            "-DateTimeOriginal",
        ])
        .arg(dir)
        .output()
        .context("running exiftool")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('['))
        .map(str::to_string)
        .collect())
}
