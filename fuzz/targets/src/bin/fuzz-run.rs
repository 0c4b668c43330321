//! The fuzz targets on the stable toolchain: every committed input, then
//! random mutations of them for a bounded time. Not coverage-guided (that is
//! cargo-fuzz's, on nightly: `cargo xtask reliability` uses it when it can);
//! this is what CI runs, and a crash found either way is committed to the
//! corpus and replays in every test run.
//!
//!   fuzz-run seed CORPUS_DIR           write the seed inputs
//!   fuzz-run run CORPUS_DIR SECONDS [TARGET...]
//!                                      replay and mutate; a crash is saved under
//!                                      CORPUS_DIR/../findings/<target>/ and fails the run

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fuzz_targets::TARGETS;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => seed(Path::new(args.get(1).context("CORPUS_DIR")?)),
        Some("run") => {
            let dir = PathBuf::from(args.get(1).context("CORPUS_DIR")?);
            let seconds: f64 = args.get(2).context("SECONDS")?.parse()?;
            let only: Vec<&str> = args[3..].iter().map(String::as_str).collect();
            run(&dir, Duration::from_secs_f64(seconds), &only)
        }
        _ => bail!("usage: fuzz-run seed CORPUS_DIR | fuzz-run run CORPUS_DIR SECONDS [TARGET...]"),
    }
}

fn seed(dir: &Path) -> Result<()> {
    for (target, name, bytes) in fuzz_targets::corpus::seeds() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}

fn run(dir: &Path, budget: Duration, only: &[&str]) -> Result<()> {
    // A panic is reported by the run, not printed once per mutation.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = Vec::new();
    for (index, (name, target)) in TARGETS.iter().enumerate() {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        let corpus = read_corpus(&dir.join(name))?;
        let mut crashes = 0;
        for (file, input) in &corpus {
            if std::panic::catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
                crashes += 1;
                eprintln!("fuzz-run: {name}: committed input {file} panics");
            }
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1));
        let started = Instant::now();
        let mut runs = 0u64;
        let mut slowest = Duration::ZERO;
        while started.elapsed() < budget && !corpus.is_empty() {
            let input = mutate(&mut rng, &corpus);
            let one = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| target(&input)));
            slowest = slowest.max(one.elapsed());
            runs += 1;
            if outcome.is_err() {
                crashes += 1;
                let saved = save_finding(dir, name, &input)?;
                eprintln!("fuzz-run: {name}: a mutation panics, saved as {}", saved.display());
                break;
            }
        }
        println!(
            "fuzz-run: {name} {} committed, {runs} mutations in {:.1} s, slowest {} ms, {crashes} crashes",
            corpus.len(),
            started.elapsed().as_secs_f64(),
            slowest.as_millis()
        );
        if crashes > 0 {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        bail!("crashes in {}", failed.join(", "));
    }
    Ok(())
}

fn read_corpus(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push((name, std::fs::read(entry.path())?));
        }
    }
    files.sort();
    Ok(files)
}

fn save_finding(dir: &Path, target: &str, input: &[u8]) -> Result<PathBuf> {
    let d = dir.join("..").join("findings").join(target);
    std::fs::create_dir_all(&d)?;
    let hash = input
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let path = d.join(format!("crash-{hash:016x}"));
    std::fs::write(&path, input)?;
    Ok(path)
}

/// xorshift64*: reproducible runs from a fixed seed per target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One to four of the classic byte-level mutations of a corpus input.
fn mutate(rng: &mut Rng, corpus: &[(String, Vec<u8>)]) -> Vec<u8> {
    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'{'];
    let mut data = corpus[rng.below(corpus.len())].1.clone();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let copy = data[i..i + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, copy);
            }
            5 if len > 0 => data.truncate(rng.below(len)),
            _ => {
                let other = &corpus[rng.below(corpus.len())].1;
                let cut = rng.below(data.len() + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}
