//! Runs the same rendition core as the Lambda on a local file.
//!
//! usage: render INPUT OUTDIR [--artist NAME] [--title TITLE] [--threads N]
//!
//! Writes `d_<nominal>.jpg` and `d_<nominal>.webp` for every rendition into OUTDIR and prints one
//! line per file. Exit status: 0 done, 2 the input was refused (a permanent failure), 1 anything else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use image_processor::imaging::{self, Limits, Rights};

struct Args {
    input: PathBuf,
    out: PathBuf,
    rights: Rights,
    threads: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut rights = Rights::default();
    let mut threads = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--artist" => rights.artist = value("--artist")?,
            "--title" => rights.title = value("--title")?,
            "--threads" => {
                threads = Some(
                    value("--threads")?
                        .parse()
                        .map_err(|_| "--threads needs a number".to_string())?,
                )
            }
            "-h" | "--help" => return Err(String::new()),
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => positional.push(PathBuf::from(a)),
        }
    }
    match <[PathBuf; 2]>::try_from(positional) {
        Ok([input, out]) => Ok(Args { input, out, rights, threads }),
        Err(_) => Err("expected INPUT and OUTDIR".into()),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("render: {msg}");
            }
            eprintln!("usage: render INPUT OUTDIR [--artist NAME] [--title TITLE] [--threads N]");
            return ExitCode::from(1);
        }
    };
    let input = match std::fs::read(&args.input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("render: cannot read {}: {e}", args.input.display());
            return ExitCode::from(1);
        }
    };
    let started = Instant::now();
    let limits = Limits::default();
    let result = match args.threads {
        Some(n) => imaging::render_with_threads(&input, &limits, &args.rights, n),
        None => imaging::render(&input, &limits, &args.rights),
    };
    let renditions = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("render: refused ({}): {e}", e.code());
            return ExitCode::from(if e.is_permanent() { 2 } else { 1 });
        }
    };
    let elapsed = started.elapsed();
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("render: cannot create {}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    for r in &renditions {
        let path = args.out.join(format!("d_{}.{}", r.long_edge, r.format.extension()));
        if let Err(e) = std::fs::write(&path, &r.bytes) {
            eprintln!("render: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        println!(
            "{}\t{}x{}\t{} B\tsha256={}",
            path.display(),
            r.width,
            r.height,
            r.bytes.len(),
            r.sha256
        );
    }
    println!("rendered {} files in {:.3} s", renditions.len(), elapsed.as_secs_f64());
    ExitCode::SUCCESS
}
