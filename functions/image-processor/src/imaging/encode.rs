//! Encoders for the renditions: JPEG (libjpeg-turbo, quality 82, 4:2:0, optimised Huffman
//! tables) and lossy WebP (libwebp, quality 80, method 4), each carrying only the minimal rights
//! EXIF block built in [`super::exif`].

use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

use super::error::ImagingError;
use super::pixels::{self, Raster};

/// JPEG quality of every rendition.
pub const JPEG_QUALITY: i32 = 82;
/// WebP quality of every rendition.
pub const WEBP_QUALITY: f32 = 80.0;

/// Encodes a raster as baseline JPEG, flattening alpha onto white, with `exif` (a TIFF block)
/// as the only metadata.
pub(crate) fn jpeg(raster: &Raster, exif: Option<&[u8]>) -> Result<Vec<u8>, ImagingError> {
    let internal = |e: turbojpeg::Error| ImagingError::Internal(format!("jpeg encoder: {e}"));
    let flat;
    let rgb: &[u8] = if raster.has_alpha() {
        flat = pixels::flatten_on_white(raster);
        &flat
    } else {
        &raster.data
    };
    let (w, h) = (raster.width as usize, raster.height as usize);
    let mut c = Compressor::new().map_err(internal)?;
    c.set_quality(JPEG_QUALITY).map_err(internal)?;
    c.set_subsamp(Subsamp::Sub2x2).map_err(internal)?;
    c.set_optimize(true).map_err(internal)?;
    let image = Image { pixels: rgb, width: w, pitch: w * 3, height: h, format: PixelFormat::RGB };
    let out = c.compress_to_vec(image).map_err(internal)?;
    Ok(match exif {
        Some(tiff) => insert_jpeg_exif(&out, tiff),
        None => out,
    })
}

/// Inserts an APP1 Exif segment after SOI and a leading JFIF APP0, which must stay first.
pub(crate) fn insert_jpeg_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) {
        if let Some(len) = jpeg.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize) {
            at = (4 + len).min(jpeg.len());
        }
    }
    let seg_len = 2 + 6 + tiff.len();
    debug_assert!(seg_len <= usize::from(u16::MAX));
    let mut out = Vec::with_capacity(jpeg.len() + seg_len + 2);
    out.extend_from_slice(&jpeg[..at]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(seg_len as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// Encodes a raster as lossy WebP (alpha kept), with `exif` in an `EXIF` chunk.
pub(crate) fn webp(raster: &Raster, exif: Option<&[u8]>) -> Result<Vec<u8>, ImagingError> {
    let encoder = if raster.has_alpha() {
        webp::Encoder::from_rgba(&raster.data, raster.width, raster.height)
    } else {
        webp::Encoder::from_rgb(&raster.data, raster.width, raster.height)
    };
    let mut config =
        webp::WebPConfig::new().map_err(|_| ImagingError::Internal("webp config".into()))?;
    config.quality = WEBP_QUALITY;
    config.method = 4;
    config.alpha_quality = 100;
    // The 2048 WebP is the pipeline's longest single task; libwebp's own worker
    // thread overlaps its analysis with encoding. The bitstream is unchanged.
    config.thread_level = 1;
    let out = encoder
        .encode_advanced(&config)
        .map_err(|e| ImagingError::Internal(format!("webp encoder: {e:?}")))?;
    match exif {
        Some(tiff) => webp_with_exif(&out, raster.width, raster.height, tiff),
        None => Ok(out.to_vec()),
    }
}

/// Rewrites a simple or extended WebP as extended (VP8X) with an `EXIF` chunk appended.
pub(crate) fn webp_with_exif(
    webp: &[u8],
    width: u32,
    height: u32,
    tiff: &[u8],
) -> Result<Vec<u8>, ImagingError> {
    const EXIF_FLAG: u8 = 0x08;
    let bad = || ImagingError::Internal("webp encoder produced an unexpected container".into());
    if webp.len() < 12 || &webp[0..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return Err(bad());
    }
    let mut chunks: Vec<(&[u8], &[u8])> = Vec::new();
    let mut pos = 12;
    while pos + 8 <= webp.len() {
        let kind = &webp[pos..pos + 4];
        let len = u32::from_le_bytes([webp[pos + 4], webp[pos + 5], webp[pos + 6], webp[pos + 7]])
            as usize;
        let data = webp.get(pos + 8..pos + 8 + len).ok_or_else(bad)?;
        chunks.push((kind, data));
        pos += 8 + len + (len & 1);
    }
    let mut body: Vec<u8> = Vec::with_capacity(webp.len() + tiff.len() + 32);
    let push = |body: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        body.extend_from_slice(kind);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    };
    match chunks.first() {
        Some((kind, data)) if *kind == b"VP8X" && data.len() >= 10 => {
            let mut vp8x = data.to_vec();
            vp8x[0] |= EXIF_FLAG;
            push(&mut body, b"VP8X", &vp8x);
            for (kind, data) in &chunks[1..] {
                if *kind != b"EXIF" {
                    push(&mut body, kind, data);
                }
            }
        }
        Some(_) => {
            let mut vp8x = [0u8; 10];
            vp8x[0] = EXIF_FLAG;
            vp8x[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
            vp8x[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
            push(&mut body, b"VP8X", &vp8x);
            for (kind, data) in &chunks {
                push(&mut body, kind, data);
            }
        }
        None => return Err(bad()),
    }
    push(&mut body, b"EXIF", tiff);
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    Ok(out)
}
