//! Renditions of an uploaded original: sniff → probe (limits) → decode → sRGB → resize →
//! orient → encode (JPEG + WebP at each size), all in memory and bounded.
//!
//! * The format is told from magic bytes only ([`sniff`]); the header is read without decoding
//!   ([`probe`]) and checked against [`Limits`] before any pixel buffer exists, so a
//!   decompression bomb is refused before a large allocation.
//! * JPEG is decoded DCT-scaled to the smallest scale that covers the largest rendition.
//! * Embedded ICC profiles (RGB and CMYK) are converted to sRGB with lcms2; CMYK without a
//!   profile uses the naive complement product; Adobe-inverted CMYK is recognised.
//! * Renditions cascade (2048 → 1024 → 400, Lanczos3) in stored orientation; the EXIF
//!   orientation is applied to each (small) rendition afterwards.
//! * Encodes run in parallel on scoped threads, as soon as each size is ready.
//! * Outputs carry only a minimal EXIF block: artist (Artist, Copyright) and title
//!   (ImageDescription); never GPS, camera, XMP or IPTC data.
//!
//! Rendition sizes: see [`rendition_sizes`].

mod decode;
mod encode;
pub mod error;
pub mod exif;
mod pixels;
pub mod sniff;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

use sha2::{Digest, Sha256};

pub use error::ImagingError;
pub use sniff::{probe, sniff, Probe, SourceFormat};

/// Nominal long edges of the renditions, largest first.
pub const NOMINAL_SIZES: [u32; 3] = [2048, 1024, 400];

/// What an upload may declare. Checked on the header, before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most pixels (width × height) an image may have.
    pub max_pixels: u64,
    /// Longest either side may be.
    pub max_edge: u32,
    /// Most bytes an upload may have (the caller also checks this with a HEAD request).
    pub max_bytes: Option<u64>,
}

impl Default for Limits {
    /// 100 megapixels, 30 000 px a side, 100 MiB.
    fn default() -> Self {
        Limits { max_pixels: 100_000_000, max_edge: 30_000, max_bytes: Some(100 * 1024 * 1024) }
    }
}

impl Limits {
    /// Refuses a probed header that exceeds the limits, or that declares no pixels.
    pub fn check(&self, probe: &Probe) -> Result<(), ImagingError> {
        let (width, height) = (probe.display_width(), probe.display_height());
        if width == 0 || height == 0 {
            return Err(ImagingError::NoPixels { width, height });
        }
        if width > self.max_edge || height > self.max_edge {
            return Err(ImagingError::EdgeTooLong { width, height, limit: self.max_edge });
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(ImagingError::TooManyPixels {
                width,
                height,
                limit_megapixels: self.max_pixels / 1_000_000,
            });
        }
        Ok(())
    }

    /// The most bytes one decoded raster may take: 8 bytes a pixel (16-bit RGBA) at the limit.
    fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(8).max(64 << 20)
    }
}

/// The rights shown in every rendition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights {
    /// The artist's name: written as EXIF Artist and in the Copyright line.
    pub artist: String,
    /// The artwork title: written as EXIF ImageDescription.
    pub title: String,
}

/// Encoded format of a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputFormat {
    /// Baseline JPEG, quality 82, 4:2:0, alpha flattened onto white.
    Jpeg,
    /// Lossy WebP, quality 80, alpha kept.
    Webp,
}

impl OutputFormat {
    /// File extension without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Webp => "webp",
        }
    }

    /// MIME type for the `Content-Type` of the stored object.
    pub fn content_type(&self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
        }
    }
}

/// One encoded rendition.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The format it is encoded in.
    pub format: OutputFormat,
    /// The nominal size (2048, 1024 or 400) this rendition stands for.
    pub long_edge: u32,
    /// Actual width (as displayed).
    pub width: u32,
    /// Actual height (as displayed).
    pub height: u32,
    /// The encoded file.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lowercase hex.
    pub sha256: String,
}

impl std::fmt::Debug for Rendition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendition")
            .field("format", &self.format)
            .field("long_edge", &self.long_edge)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.bytes.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The renditions of a `w`×`h` (as displayed) image: `(nominal, width, height)`, largest first.
///
/// Rule: a nominal size smaller than the long edge gets a rendition scaled to that long edge
/// (the short edge rounded, at least 1 px). Nominal sizes at or above the long edge are never
/// upscaled: they collapse into one rendition at the original size, labelled with the smallest
/// of them. So 6000×4000 → 2048, 1024, 400; 1500×1000 → (2048 at 1500×1000), 1024, 400;
/// 900×600 → (1024 at 900×600), 400; 300×200 → (400 at 300×200) only.
pub fn rendition_sizes(w: u32, h: u32) -> Vec<(u32, u32, u32)> {
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let long = w.max(h);
    let scale = |n: u32, side: u32| -> u32 {
        ((u64::from(side) * u64::from(n) + u64::from(long) / 2) / u64::from(long)).max(1) as u32
    };
    let mut out = Vec::with_capacity(NOMINAL_SIZES.len());
    let covering = NOMINAL_SIZES.iter().copied().filter(|n| *n >= long).min();
    if let Some(n) = covering {
        out.push((n, w, h));
    }
    for n in NOMINAL_SIZES.iter().copied().filter(|n| *n < long) {
        out.push((n, scale(n, w), scale(n, h)));
    }
    out
}

/// Probes, checks the limits, and returns the probe plus the parsed JPEG header if any.
fn checked_probe<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<(Probe, Option<sniff::JpegHeader<'a>>), ImagingError> {
    if let Some(max) = limits.max_bytes {
        if input.len() as u64 > max {
            return Err(ImagingError::TooManyBytes { bytes: input.len() as u64, limit: max });
        }
    }
    let probe = sniff::probe(input)?;
    limits.check(&probe)?;
    let jpeg = match probe.format {
        SourceFormat::Jpeg => Some(sniff::parse_jpeg(input)?),
        _ => None,
    };
    Ok((probe, jpeg))
}

/// Worker threads to use: the machine's parallelism, at most 4.
fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4)
}

/// The whole pipeline on an upload in memory: JPEG and WebP renditions at every size of
/// [`rendition_sizes`], largest first, JPEG before WebP. Thread-safe; never panics (a panic in
/// a decoder is reported as [`ImagingError::Corrupt`]).
pub fn render(
    input: &[u8],
    limits: &Limits,
    rights: &Rights,
) -> Result<Vec<Rendition>, ImagingError> {
    render_with_threads(input, limits, rights, default_threads())
}

/// [`render`] with an explicit number of threads (1 = everything on the calling thread).
pub fn render_with_threads(
    input: &[u8],
    limits: &Limits,
    rights: &Rights,
    threads: usize,
) -> Result<Vec<Rendition>, ImagingError> {
    match catch_unwind(AssertUnwindSafe(|| render_inner(input, limits, rights, threads.max(1)))) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "imaging panicked; the input is refused as corrupt");
            Err(ImagingError::Corrupt)
        }
    }
}

struct Job {
    raster: Arc<pixels::Raster>,
    nominal: u32,
    format: OutputFormat,
}

fn encode_job(job: &Job, exif: Option<&[u8]>) -> Result<Rendition, ImagingError> {
    let bytes = match job.format {
        OutputFormat::Jpeg => encode::jpeg(&job.raster, exif)?,
        OutputFormat::Webp => encode::webp(&job.raster, exif)?,
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(Rendition {
        format: job.format,
        long_edge: job.nominal,
        width: job.raster.width,
        height: job.raster.height,
        bytes,
        sha256,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn render_inner(
    input: &[u8],
    limits: &Limits,
    rights: &Rights,
    threads: usize,
) -> Result<Vec<Rendition>, ImagingError> {
    let (probe, jpeg) = checked_probe(input, limits)?;
    let orientation = probe.orientation;
    let swap = probe.swaps_axes();
    let stored = |w: u32, h: u32| if swap { (h, w) } else { (w, h) };

    let mut sizes = rendition_sizes(probe.display_width(), probe.display_height());
    let (_, w0, h0) = *sizes.first().ok_or(ImagingError::NoPixels { width: 0, height: 0 })?;
    let decoded =
        decode::decode(input, &probe, jpeg.as_ref(), stored(w0, h0), limits.max_alloc(), threads)?;
    if probe.format != SourceFormat::Jpeg
        && (decoded.width, decoded.height) != (probe.width, probe.height)
    {
        // The frame is not what the header said (e.g. a GIF frame smaller than its screen).
        let (dw, dh) = stored(decoded.width, decoded.height);
        sizes = rendition_sizes(dw, dh);
    }
    tracing::debug!(format = %probe.format, w = decoded.width, h = decoded.height, "decoded");

    let exif = exif::rights_tiff(&rights.artist, &rights.title);
    let exif = exif.as_deref();
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Mutex::new(rx);
    let results: Mutex<Vec<Result<Rendition, ImagingError>>> = Mutex::new(Vec::new());
    let work = || loop {
        let job = lock(&rx).recv();
        match job {
            Ok(job) => {
                let r = encode_job(&job, exif);
                lock(&results).push(r);
            }
            Err(_) => break,
        }
    };

    let cascade: Result<(), ImagingError> = std::thread::scope(|s| {
        let tx = tx; // moved in: dropped on every exit so the workers stop
        for _ in 1..threads {
            s.spawn(work);
        }
        let mut prev = Arc::new(decoded);
        for &(nominal, w, h) in &sizes {
            let (sw, sh) = stored(w, h);
            let cur = if (prev.width, prev.height) == (sw, sh) {
                Arc::clone(&prev)
            } else {
                Arc::new(pixels::resize(&prev, sw, sh)?)
            };
            let display = if orientation == 1 {
                Arc::clone(&cur)
            } else {
                Arc::new(pixels::orient(&cur, orientation))
            };
            // The WebP encode is the slowest job: queue it first.
            for format in [OutputFormat::Webp, OutputFormat::Jpeg] {
                let job = Job { raster: Arc::clone(&display), nominal, format };
                tx.send(job)
                    .map_err(|_| ImagingError::Internal("encoder workers stopped".into()))?;
            }
            prev = cur;
        }
        drop(prev);
        drop(tx);
        work();
        Ok(())
    });
    cascade?;

    let mut out = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    if out.len() != sizes.len() * 2 {
        return Err(ImagingError::Internal("an encoder job was lost".into()));
    }
    out.sort_by(|a, b| b.long_edge.cmp(&a.long_edge).then(a.format.cmp(&b.format)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_never_upscale_and_collapse_once() {
        assert_eq!(
            rendition_sizes(6000, 4000),
            vec![(2048, 2048, 1365), (1024, 1024, 683), (400, 400, 267)]
        );
        assert_eq!(
            rendition_sizes(4000, 6000),
            vec![(2048, 1365, 2048), (1024, 683, 1024), (400, 267, 400)]
        );
        assert_eq!(
            rendition_sizes(1500, 1000),
            vec![(2048, 1500, 1000), (1024, 1024, 683), (400, 400, 267)]
        );
        assert_eq!(
            rendition_sizes(2048, 10),
            vec![(2048, 2048, 10), (1024, 1024, 5), (400, 400, 2)]
        );
        assert_eq!(rendition_sizes(900, 600), vec![(1024, 900, 600), (400, 400, 267)]);
        assert_eq!(rendition_sizes(1024, 1024), vec![(1024, 1024, 1024), (400, 400, 400)]);
        assert_eq!(rendition_sizes(300, 200), vec![(400, 300, 200)]);
        assert_eq!(
            rendition_sizes(10000, 1),
            vec![(2048, 2048, 1), (1024, 1024, 1), (400, 400, 1)]
        );
        assert_eq!(rendition_sizes(0, 10), vec![]);
    }

    #[test]
    fn limits_are_checked_on_the_displayed_size() {
        let limits = Limits::default();
        let p = |w, h, o| Probe { format: SourceFormat::Png, width: w, height: h, orientation: o };
        assert_eq!(limits.check(&p(10_000, 10_000, 1)), Ok(()));
        assert_eq!(
            limits.check(&p(65_000, 65_000, 1)).map_err(|e| e.to_string()),
            Err("image is 65000×65000 pixels; the longest side may be at most 30000 pixels".into())
        );
        assert_eq!(
            limits.check(&p(20_000, 10_000, 6)).map_err(|e| e.to_string()),
            Err("image is 10000×20000 pixels; the limit is 100 megapixels".into())
        );
        assert!(matches!(limits.check(&p(0, 5, 1)), Err(ImagingError::NoPixels { .. })));
    }
}
