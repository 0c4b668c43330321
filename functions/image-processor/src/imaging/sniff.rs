//! Format sniffing from magic bytes and header probing, before any pixel is decoded.
//!
//! Nothing here allocates in proportion to what a header declares, and nothing panics on any
//! input: this is the code a hostile upload meets first (see the `sniff_probe` fuzz target).

use super::error::ImagingError;
use super::exif;

/// An accepted source format, always told from the bytes, never from a name or Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// JPEG (baseline, progressive, arithmetic; greyscale, YCbCr, CMYK/YCCK).
    Jpeg,
    /// PNG (1–16 bit, palette, grey, alpha; the first frame of an APNG).
    Png,
    /// WebP (lossy, lossless, alpha; the first frame of an animation).
    Webp,
    /// TIFF (classic, the first page).
    Tiff,
    /// GIF (the first frame).
    Gif,
}

impl SourceFormat {
    /// Lowercase short name (`jpeg`, `png`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Gif => "gif",
        }
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the header says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The sniffed format.
    pub format: SourceFormat,
    /// Width as stored (before the orientation is applied).
    pub width: u32,
    /// Height as stored (before the orientation is applied).
    pub height: u32,
    /// EXIF orientation 1–8 (1 when absent or invalid).
    pub orientation: u8,
}

impl Probe {
    /// True for orientations 5–8, which swap width and height when applied.
    pub fn swaps_axes(&self) -> bool {
        self.orientation >= 5
    }

    /// Width as displayed (after the orientation is applied).
    pub fn display_width(&self) -> u32 {
        if self.swaps_axes() {
            self.height
        } else {
            self.width
        }
    }

    /// Height as displayed (after the orientation is applied).
    pub fn display_height(&self) -> u32 {
        if self.swaps_axes() {
            self.width
        } else {
            self.height
        }
    }
}

/// Tells the format from the magic bytes. Anything not accepted is an
/// [`ImagingError::UnsupportedFormat`] naming what it looks like.
pub fn sniff(input: &[u8]) -> Result<SourceFormat, ImagingError> {
    if input.is_empty() {
        return Err(ImagingError::Empty);
    }
    let starts = |m: &[u8]| input.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(SourceFormat::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(SourceFormat::Gif);
    }
    if starts(b"RIFF") && input.get(8..12) == Some(b"WEBP") {
        return Ok(SourceFormat::Webp);
    }
    if starts(b"II\x2a\0") || starts(b"MM\0\x2a") {
        return Ok(SourceFormat::Tiff);
    }
    Err(ImagingError::UnsupportedFormat { detected: detect_other(input) })
}

/// A short name for bytes that are not an accepted image, for the artist-facing message.
fn detect_other(input: &[u8]) -> &'static str {
    let starts = |m: &[u8]| input.starts_with(m);
    let head = &input[..input.len().min(1024)];
    if starts(b"%PDF") {
        return "pdf";
    }
    if starts(b"II\x2b\0") || starts(b"MM\0\x2b") {
        return "bigtiff";
    }
    if let Some(b"ftyp") = input.get(4..8) {
        return match input.get(8..12) {
            Some(b"avif") | Some(b"avis") => "avif",
            Some(b"heic") | Some(b"heix") | Some(b"heim") | Some(b"heis") | Some(b"mif1")
            | Some(b"msf1") | Some(b"hevc") => "heic",
            Some(b"crx ") => "raw",
            _ => "video",
        };
    }
    if starts(b"\0\0\0\x0cJXL ") || starts(&[0xFF, 0x0A]) {
        return "jpeg xl";
    }
    if starts(b"\0\0\0\x0cjP  ") || starts(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return "jpeg 2000";
    }
    if starts(b"BM") {
        return "bmp";
    }
    if starts(b"\0\0\x01\0") {
        return "ico";
    }
    if starts(b"8BPS") {
        return "psd";
    }
    if starts(b"RIFF") {
        return "riff";
    }
    if starts(b"PK\x03\x04") {
        return "zip";
    }
    if starts(&[0x1F, 0x8B]) {
        return "gzip";
    }
    if starts(b"%!PS") {
        return "postscript";
    }
    if starts(b"qoif") {
        return "qoi";
    }
    if starts(b"\x76\x2f\x31\x01") {
        return "openexr";
    }
    if starts(b"#?RADIANCE") {
        return "hdr";
    }
    // Text-based formats: look past a BOM and leading whitespace.
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let trimmed_at = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let text = &text[trimmed_at..];
    let lower: Vec<u8> = text.iter().map(|b| b.to_ascii_lowercase()).collect();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"<") {
        if contains(b"<svg") {
            return "svg";
        }
        if contains(b"<html") || contains(b"<!doctype html") {
            return "html";
        }
        return "xml";
    }
    if !head.is_empty()
        && std::str::from_utf8(head)
            .is_ok_and(|s| !s.chars().any(|c| c.is_control() && !c.is_whitespace()))
    {
        return "text";
    }
    "unknown"
}

/// Reads the format, the stored dimensions and the EXIF orientation from the header only.
pub fn probe(input: &[u8]) -> Result<Probe, ImagingError> {
    let format = sniff(input)?;
    let (width, height, orientation) = match format {
        SourceFormat::Jpeg => {
            let h = parse_jpeg(input)?;
            (h.width, h.height, h.orientation)
        }
        SourceFormat::Png => parse_png(input)?,
        SourceFormat::Gif => parse_gif(input)?,
        SourceFormat::Webp => parse_webp(input)?,
        SourceFormat::Tiff => parse_tiff(input)?,
    };
    Ok(Probe { format, width, height, orientation })
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    exif::ByteOrder::Big.u16(b, at)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    exif::ByteOrder::Big.u32(b, at)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    exif::ByteOrder::Little.u16(b, at)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    exif::ByteOrder::Little.u32(b, at)
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(3)?)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// What the JPEG markers before the first scan say.
#[derive(Debug, Clone, Default)]
pub(crate) struct JpegHeader<'a> {
    pub width: u32,
    pub height: u32,
    pub components: u8,
    pub orientation: u8,
    /// An Adobe APP14 marker is present: 4-component data is stored inverted (Photoshop).
    pub adobe: bool,
    /// ICC_PROFILE APP2 chunks as (sequence number, payload).
    pub icc_chunks: Vec<(u8, &'a [u8])>,
    /// Offset of the first byte after the first SOS segment header (the entropy-coded data).
    pub scan_start: usize,
}

impl JpegHeader<'_> {
    /// The embedded ICC profile, reassembled from its APP2 chunks in sequence order.
    pub fn icc_profile(&self) -> Option<Vec<u8>> {
        if self.icc_chunks.is_empty() {
            return None;
        }
        let mut chunks = self.icc_chunks.clone();
        chunks.sort_by_key(|c| c.0);
        Some(chunks.iter().flat_map(|c| c.1.iter().copied()).collect())
    }
}

/// Walks the JPEG markers up to the first scan.
pub(crate) fn parse_jpeg(input: &[u8]) -> Result<JpegHeader<'_>, ImagingError> {
    let mut h = JpegHeader { orientation: 1, ..Default::default() };
    let mut seen_sof = false;
    let mut seen_exif = false;
    let mut pos = 2; // after SOI
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if input.get(pos) != Some(&0xFF) {
            return Err(ImagingError::Corrupt);
        }
        while input.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *input.get(pos).ok_or(ImagingError::Corrupt)?;
        pos += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 | 0xD9 | 0x00 => return Err(ImagingError::Corrupt),
            _ => {}
        }
        let len = be16(input, pos).ok_or(ImagingError::Corrupt)? as usize;
        if len < 2 {
            return Err(ImagingError::Corrupt);
        }
        let payload = input.get(pos + 2..pos + len).ok_or(ImagingError::Corrupt)?;
        pos += len;
        match marker {
            0xDA => {
                h.scan_start = pos;
                return if seen_sof { Ok(h) } else { Err(ImagingError::Corrupt) };
            }
            0xE1 if !seen_exif && payload.starts_with(b"Exif\0\0") => {
                seen_exif = true;
                h.orientation = exif::orientation_from_exif(payload);
            }
            // Bounded: at most 255 chunks of < 64 KiB each.
            0xE2 if payload.starts_with(b"ICC_PROFILE\0")
                && payload.len() > 14
                && h.icc_chunks.len() < 255 =>
            {
                h.icc_chunks.push((payload[12], &payload[14..]));
            }
            0xEE if payload.starts_with(b"Adobe") => h.adobe = true,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seen_sof {
                    return Err(ImagingError::Corrupt);
                }
                seen_sof = true;
                match marker {
                    0xC3 | 0xC7 | 0xCB | 0xCF => {
                        return Err(ImagingError::UnsupportedFeature("lossless jpeg".into()))
                    }
                    0xC5 | 0xC6 | 0xCD | 0xCE => {
                        return Err(ImagingError::UnsupportedFeature("hierarchical jpeg".into()))
                    }
                    _ => {}
                }
                let precision = *payload.first().ok_or(ImagingError::Corrupt)?;
                h.height = u32::from(be16(payload, 1).ok_or(ImagingError::Corrupt)?);
                h.width = u32::from(be16(payload, 3).ok_or(ImagingError::Corrupt)?);
                h.components = *payload.get(5).ok_or(ImagingError::Corrupt)?;
                if precision != 8 {
                    return Err(ImagingError::UnsupportedFeature(format!("{precision}-bit jpeg")));
                }
                if !matches!(h.components, 1 | 3 | 4) {
                    return Err(ImagingError::UnsupportedFeature(format!(
                        "jpeg with {} colour components",
                        h.components
                    )));
                }
                if h.height == 0 {
                    // Height defined later by a DNL marker: legal, practically unused, refused.
                    return Err(ImagingError::UnsupportedFeature("jpeg without a height".into()));
                }
            }
            _ => {}
        }
    }
}

/// PNG: IHDR must come first; the chunks before the first IDAT may carry eXIf (orientation).
fn parse_png(input: &[u8]) -> Result<(u32, u32, u8), ImagingError> {
    if input.get(12..16) != Some(b"IHDR") || be32(input, 8) != Some(13) {
        return Err(ImagingError::Corrupt);
    }
    let width = be32(input, 16).ok_or(ImagingError::Corrupt)?;
    let height = be32(input, 20).ok_or(ImagingError::Corrupt)?;
    let depth = *input.get(24).ok_or(ImagingError::Corrupt)?;
    let colour = *input.get(25).ok_or(ImagingError::Corrupt)?;
    let valid = match colour {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(depth, 8 | 16),
        _ => false,
    };
    if !valid || width > i32::MAX as u32 || height > i32::MAX as u32 {
        return Err(ImagingError::Corrupt);
    }
    let mut orientation = 1;
    let mut pos = 33; // signature (8) + IHDR chunk (25)
    while let (Some(len), Some(kind)) = (be32(input, pos), input.get(pos + 4..pos + 8)) {
        let len = len as usize;
        if kind == b"IDAT" || kind == b"IEND" {
            break;
        }
        let Some(data) = pos.checked_add(8).and_then(|s| input.get(s..s.checked_add(len)?)) else {
            break;
        };
        if kind == b"eXIf" {
            orientation = exif::orientation_from_exif(data);
        }
        pos = pos + 12 + len;
    }
    Ok((width, height, orientation))
}

/// GIF: the logical screen size (the canvas the first frame is drawn on).
fn parse_gif(input: &[u8]) -> Result<(u32, u32, u8), ImagingError> {
    let w = le16(input, 6).ok_or(ImagingError::Corrupt)?;
    let h = le16(input, 8).ok_or(ImagingError::Corrupt)?;
    Ok((u32::from(w), u32::from(h), 1))
}

/// WebP: the size from VP8X, VP8 or VP8L; orientation from an EXIF chunk when present.
fn parse_webp(input: &[u8]) -> Result<(u32, u32, u8), ImagingError> {
    let mut dims = None;
    let mut orientation = 1;
    let mut pos = 12;
    while let (Some(kind), Some(len)) = (input.get(pos..pos + 4), le32(input, pos + 4)) {
        let len = len as usize;
        let start = pos + 8;
        // The frame header is all we need: a truncated chunk body still has it.
        let data = &input[start.min(input.len())..start.saturating_add(len).min(input.len())];
        match kind {
            b"VP8X" => {
                let w = le24(data, 4).ok_or(ImagingError::Corrupt)? + 1;
                let h = le24(data, 7).ok_or(ImagingError::Corrupt)? + 1;
                dims = Some((w, h));
            }
            b"VP8 " if dims.is_none() => {
                if data.get(3..6) != Some(&[0x9D, 0x01, 0x2A]) {
                    return Err(ImagingError::Corrupt);
                }
                let w = le16(data, 6).ok_or(ImagingError::Corrupt)? & 0x3FFF;
                let h = le16(data, 8).ok_or(ImagingError::Corrupt)? & 0x3FFF;
                dims = Some((u32::from(w), u32::from(h)));
            }
            b"VP8L" if dims.is_none() => {
                if data.first() != Some(&0x2F) {
                    return Err(ImagingError::Corrupt);
                }
                let bits = le32(data, 1).ok_or(ImagingError::Corrupt)?;
                dims = Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1));
            }
            b"EXIF" => orientation = exif::orientation_from_exif(data),
            _ => {}
        }
        // Chunks are padded to an even size.
        pos = start.saturating_add(len).saturating_add(len & 1);
    }
    let (w, h) = dims.ok_or(ImagingError::Corrupt)?;
    Ok((w, h, orientation))
}

/// TIFF: ImageWidth, ImageLength and Orientation of the first IFD.
fn parse_tiff(input: &[u8]) -> Result<(u32, u32, u8), ImagingError> {
    let (order, ifd0) = exif::tiff_header(input).ok_or(ImagingError::Corrupt)?;
    let (mut w, mut h) = (None, None);
    for (tag, typ, count, at) in exif::ifd_entries(input, order, ifd0) {
        let value = match (typ, count) {
            (3, 1..) => order.u16(input, at).map(u32::from),
            (4, 1..) => order.u32(input, at),
            _ => None,
        };
        match tag {
            0x0100 => w = value,
            0x0101 => h = value,
            _ => {}
        }
    }
    match (w, h) {
        (Some(w), Some(h)) => Ok((w, h, exif::orientation_from_tiff(input))),
        _ => Err(ImagingError::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_accepted_formats() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Ok(SourceFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Ok(SourceFormat::Png));
        assert_eq!(sniff(b"GIF89a...."), Ok(SourceFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Ok(SourceFormat::Webp));
        assert_eq!(sniff(b"II\x2a\0\x08\0\0\0"), Ok(SourceFormat::Tiff));
        assert_eq!(sniff(b"MM\0\x2a\0\0\0\x08"), Ok(SourceFormat::Tiff));
    }

    #[test]
    fn names_what_it_refuses() {
        let d = |b: &[u8]| match sniff(b) {
            Err(ImagingError::UnsupportedFormat { detected }) => detected,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(sniff(b""), Err(ImagingError::Empty));
        assert_eq!(d(b"%PDF-1.7\n"), "pdf");
        assert_eq!(d(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), "svg");
        assert_eq!(d(b"\xEF\xBB\xBF  <?xml version=\"1.0\"?>\n<!DOCTYPE svg><svg/>"), "svg");
        assert_eq!(d(b"<!DOCTYPE html><html></html>"), "html");
        assert_eq!(d(b"\0\0\0\x18ftypheic\0\0\0\0"), "heic");
        assert_eq!(d(b"\0\0\0\x1cftypavif\0\0\0\0"), "avif");
        assert_eq!(d(b"BM\0\0"), "bmp");
        assert_eq!(d(b"hello world\n"), "text");
        assert_eq!(d(&[0x00, 0x9f, 0x13, 0x77, 0xfe]), "unknown");
        // An extension or a Content-Type never matters: a PNG named .jpg is a PNG.
        assert!(sniff(b"image.jpg").is_err());
    }

    #[test]
    fn probes_a_minimal_png_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&65000u32.to_be_bytes());
        png.extend_from_slice(&65000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        let p = probe(&png).expect("probe");
        assert_eq!(
            (p.format, p.width, p.height, p.orientation),
            (SourceFormat::Png, 65000, 65000, 1)
        );
    }

    #[test]
    fn jpeg_marker_walk_is_bounded() {
        assert_eq!(probe(b"\xFF\xD8\xFF"), Err(ImagingError::Corrupt));
        assert_eq!(probe(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"), Err(ImagingError::Corrupt));
        assert_eq!(probe(b"\xFF\xD8\xFF\xE0\x00\x01"), Err(ImagingError::Corrupt));
        assert_eq!(probe(b"\xFF\xD8\xFF\xD9"), Err(ImagingError::Corrupt));
        let mut sof = b"\xFF\xD8\xFF\xC0\x00\x11\x08".to_vec();
        sof.extend_from_slice(&65000u16.to_be_bytes());
        sof.extend_from_slice(&65000u16.to_be_bytes());
        sof.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xDA, 0, 2]);
        let p = probe(&sof).expect("probe");
        assert_eq!((p.width, p.height, p.orientation), (65000, 65000, 1));
    }
}
