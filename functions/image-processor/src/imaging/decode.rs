//! Decoding to an 8-bit sRGB raster, the cheapest correct way for each format.
//!
//! * JPEG: libjpeg-turbo, DCT-scaled to the smallest factor that still covers the largest
//!   rendition (a 24 MP photo for a 2048 px rendition decodes at 1/2: a quarter of the pixels).
//! * PNG: streamed row by row (16-bit rows are converted to 8 bits, through the embedded ICC
//!   profile when there is one, as they arrive), so a 16-bit image never exists in memory whole.
//! * WebP, TIFF, GIF: the `image` crate, with allocation limits.
//!
//! Colour: embedded ICC profiles (RGB or CMYK) are converted to sRGB with lcms2.

use std::io::Cursor;

use lcms2::PixelFormat as Lcms;
use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};

use super::error::ImagingError;
use super::pixels::{self, Family, Raster};
use super::sniff::{JpegHeader, Probe, SourceFormat};

/// Decodes `input` (already probed and checked against the limits) covering at least
/// `need_w`×`need_h` in stored orientation. `threads` may be used for colour conversion.
pub(crate) fn decode(
    input: &[u8],
    probe: &Probe,
    jpeg: Option<&JpegHeader<'_>>,
    need: (u32, u32),
    max_alloc: u64,
    threads: usize,
) -> Result<Raster, ImagingError> {
    let raster = match (probe.format, jpeg) {
        (SourceFormat::Jpeg, Some(h)) => decode_jpeg(input, h, need, threads)?,
        (SourceFormat::Jpeg, None) => {
            return Err(ImagingError::Internal("jpeg header missing".into()))
        }
        (SourceFormat::Png, _) => decode_png(input, max_alloc)?,
        (format, _) => decode_with_image(input, format, max_alloc, threads)?,
    };
    if raster.width == 0 || raster.height == 0 {
        return Err(ImagingError::Corrupt);
    }
    Ok(raster.drop_opaque_alpha())
}

/// libjpeg warnings after which the decoded pixels are complete and fine to use (camera files
/// commonly have stray bytes before a marker). Anything else, notably "Premature end of JPEG
/// file" (a truncated upload), is refused as corrupt.
fn benign_jpeg_warning(message: &str) -> bool {
    const BENIGN: &[&str] = &[
        "extraneous bytes before marker",
        "unknown JFIF revision",
        "thumbnail image size does not match",
        "Invalid SOS parameters for sequential JPEG",
        "Inconsistent progression sequence",
    ];
    BENIGN.iter().any(|b| message.contains(b))
}

fn scaled(dim: u32, f: ScalingFactor) -> u32 {
    (u64::from(dim) * f.num() as u64).div_ceil(f.denom() as u64) as u32
}

/// The smallest DCT scaling factor (k/8) whose output still covers `need`.
pub(crate) fn jpeg_scale(width: u32, height: u32, need: (u32, u32)) -> ScalingFactor {
    // Only 1/8, 1/4, 1/2 and 1/1: libjpeg-turbo has SIMD IDCTs for these; the other k/8
    // factors run plain C and are slower than 1/2 although they produce fewer pixels.
    let mut factors: Vec<ScalingFactor> = Decompressor::supported_scaling_factors()
        .into_iter()
        .filter(|f| f.num() == 1 && matches!(f.denom(), 1 | 2 | 4 | 8))
        .collect();
    factors.sort_by_key(|f| scaled(width, *f));
    factors
        .into_iter()
        .find(|f| scaled(width, *f) >= need.0 && scaled(height, *f) >= need.1)
        .unwrap_or(ScalingFactor::ONE)
}

fn decode_jpeg(
    input: &[u8],
    header: &JpegHeader<'_>,
    need: (u32, u32),
    threads: usize,
) -> Result<Raster, ImagingError> {
    // libjpeg pads a truncated scan with grey and only warns, and not always: a JPEG must end
    // with an EOI marker after its scans (camera trailers after the EOI are fine).
    let scans = input.get(header.scan_start..).unwrap_or_default();
    if !scans.windows(2).rev().any(|w| w == [0xFF, 0xD9]) {
        return Err(ImagingError::Corrupt);
    }
    let internal = |e: turbojpeg::Error| ImagingError::Internal(format!("turbojpeg: {e}"));
    let mut d = Decompressor::new().map_err(internal)?;
    let tj = d.read_header(input).map_err(|_| ImagingError::Corrupt)?;
    if tj.is_lossless {
        return Err(ImagingError::UnsupportedFeature("lossless jpeg".into()));
    }
    let factor = jpeg_scale(header.width, header.height, need);
    d.set_scaling_factor(factor).map_err(internal)?;
    let tj = tj.scaled(factor);
    let cmyk = header.components == 4;
    let format = if cmyk { PixelFormat::CMYK } else { PixelFormat::RGB };
    let (w, h) = (tj.width, tj.height);
    let pitch = w * format.size();
    let mut buf = vec![0u8; pitch * h];
    let image = Image { pixels: buf.as_mut_slice(), width: w, pitch, height: h, format };
    match d.decompress(input, image) {
        Ok(()) => {}
        Err(turbojpeg::Error::TurboJpegError(msg)) if benign_jpeg_warning(&msg) => {
            tracing::debug!(warning = %msg, "jpeg decoded with a benign warning");
        }
        Err(turbojpeg::Error::TurboJpegError(msg)) => {
            tracing::info!(error = %msg, "jpeg refused");
            return Err(ImagingError::Corrupt);
        }
        Err(e) => return Err(internal(e)),
    }
    let (w, h) = (w as u32, h as u32);
    let icc = header.icc_profile();
    if cmyk {
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        let in_format = if header.adobe { Lcms::CMYK_8_REV } else { Lcms::CMYK_8 };
        match icc.as_deref().and_then(|p| pixels::to_srgb(p, Family::Cmyk, in_format, Lcms::RGB_8))
        {
            Some(t) => {
                let rows_per = (h as usize).div_ceil(threads.max(1)).max(1);
                std::thread::scope(|s| {
                    for (src, dst) in buf
                        .chunks(rows_per * w as usize * 4)
                        .zip(rgb.chunks_mut(rows_per * w as usize * 3))
                    {
                        let t = &t;
                        s.spawn(move || t.transform_pixels(src, dst));
                    }
                });
            }
            None => pixels::cmyk_to_rgb_naive(&buf, header.adobe, &mut rgb),
        }
        return Ok(Raster { width: w, height: h, channels: 3, data: rgb });
    }
    let mut raster = Raster { width: w, height: h, channels: 3, data: buf };
    if header.components == 3 {
        if let Some(t) =
            icc.as_deref().and_then(|p| pixels::to_srgb(p, Family::Rgb, Lcms::RGB_8, Lcms::RGB_8))
        {
            pixels::transform_in_place(&mut raster, &t, threads);
        }
    }
    Ok(raster)
}

fn png_error(e: png::DecodingError) -> ImagingError {
    match e {
        png::DecodingError::LimitsExceeded => {
            ImagingError::UnsupportedFeature("png needs more memory than allowed".into())
        }
        png::DecodingError::Parameter(p) => ImagingError::Internal(format!("png: {p}")),
        _ => ImagingError::Corrupt,
    }
}

/// 16-bit big-endian sample to 8 bits, rounded.
fn to8(hi: u8, lo: u8) -> u8 {
    let v = u32::from(u16::from_be_bytes([hi, lo]));
    ((v * 255 + 32767) / 65535) as u8
}

fn decode_png(input: &[u8], max_alloc: u64) -> Result<Raster, ImagingError> {
    let limits = png::Limits { bytes: usize::try_from(max_alloc).unwrap_or(usize::MAX) };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(input), limits);
    decoder.set_transformations(png::Transformations::EXPAND);
    decoder.set_ignore_text_chunk(true);
    let header = decoder.read_header_info().map_err(png_error)?;
    if header.interlaced {
        // Adam7 rows arrive pass by pass: decode the whole frame, 8-bit.
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    }
    let mut reader = decoder.read_info().map_err(png_error)?;
    let info = reader.info();
    let (w, h) = (info.width, info.height);
    let icc = info.icc_profile.as_ref().map(|p| p.to_vec());
    let interlaced = info.interlaced;
    let (color, depth) = reader.output_color_type();
    let src_channels = color.samples();
    let wide = depth == png::BitDepth::Sixteen;
    let alpha = matches!(color, png::ColorType::GrayscaleAlpha | png::ColorType::Rgba);
    let grey = matches!(color, png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha);
    let channels: u8 = if alpha { 4 } else { 3 };
    let out_row = w as usize * channels as usize;
    let out_len =
        out_row.checked_mul(h as usize).filter(|n| (*n as u64) <= max_alloc).ok_or_else(|| {
            ImagingError::UnsupportedFeature("png needs more memory than allowed".into())
        })?;

    // ICC applies to RGB(A) data; a grey image with a grey profile is taken as is.
    let transform = match (&icc, grey) {
        (Some(p), false) => {
            let in_format = match (alpha, wide) {
                (false, false) => Lcms::RGB_8,
                (true, false) => Lcms::RGBA_8,
                (false, true) => Lcms::RGB_16_SE,
                (true, true) => Lcms::RGBA_16_SE,
            };
            let out_format = if alpha { Lcms::RGBA_8 } else { Lcms::RGB_8 };
            pixels::to_srgb(p, Family::Rgb, in_format, out_format)
        }
        _ => None,
    };

    let mut data = vec![0u8; out_len];
    let convert = |src: &[u8], dst: &mut [u8]| {
        let bps = if wide { 2 } else { 1 };
        let sample = |i: usize| if wide { to8(src[i * 2], src[i * 2 + 1]) } else { src[i] };
        if let Some(t) = &transform {
            t.transform_pixels(src, dst);
            if alpha {
                for x in 0..w as usize {
                    dst[x * 4 + 3] = sample(x * src_channels + 3);
                }
            }
            return;
        }
        let _ = bps;
        for x in 0..w as usize {
            let s = x * src_channels;
            let d = x * channels as usize;
            if grey {
                let v = sample(s);
                dst[d..d + 3].fill(v);
                if alpha {
                    dst[d + 3] = sample(s + 1);
                }
            } else {
                for c in 0..channels as usize {
                    dst[d + c] = sample(s + c);
                }
            }
        }
    };

    if interlaced {
        let mut frame = vec![0u8; reader.output_buffer_size().ok_or(ImagingError::Corrupt)?];
        let out = reader.next_frame(&mut frame).map_err(png_error)?;
        for (y, dst) in data.chunks_exact_mut(out_row).enumerate() {
            let src = frame
                .get(y * out.line_size..(y + 1) * out.line_size)
                .ok_or(ImagingError::Corrupt)?;
            convert(src, dst);
        }
    } else {
        for dst in data.chunks_exact_mut(out_row) {
            let row = reader.next_row().map_err(png_error)?.ok_or(ImagingError::Corrupt)?;
            convert(row.data(), dst);
        }
    }
    // The rows may all be there while the end is not (checksum, IEND): still a truncated file.
    reader.finish().map_err(png_error)?;
    Ok(Raster { width: w, height: h, channels, data })
}

fn image_error(e: image::ImageError) -> ImagingError {
    match e {
        image::ImageError::Limits(_) => {
            ImagingError::UnsupportedFeature("the image needs more memory than allowed".into())
        }
        image::ImageError::Unsupported(u) => {
            ImagingError::UnsupportedFeature(u.to_string().to_lowercase())
        }
        image::ImageError::IoError(_) | image::ImageError::Decoding(_) => ImagingError::Corrupt,
        other => ImagingError::Internal(other.to_string()),
    }
}

fn decode_with_image(
    input: &[u8],
    format: SourceFormat,
    max_alloc: u64,
    threads: usize,
) -> Result<Raster, ImagingError> {
    use image::ImageDecoder;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    let cursor = Cursor::new(input);
    let mut decoder: Box<dyn ImageDecoder> = match format {
        SourceFormat::Webp => {
            Box::new(image::codecs::webp::WebPDecoder::new(cursor).map_err(image_error)?)
        }
        SourceFormat::Tiff => {
            Box::new(image::codecs::tiff::TiffDecoder::new(cursor).map_err(image_error)?)
        }
        SourceFormat::Gif => {
            Box::new(image::codecs::gif::GifDecoder::new(cursor).map_err(image_error)?)
        }
        SourceFormat::Jpeg | SourceFormat::Png => {
            return Err(ImagingError::Internal("wrong decoder".into()));
        }
    };
    decoder.set_limits(limits).map_err(image_error)?;
    let icc = decoder.icc_profile().ok().flatten();
    let img = image::DynamicImage::from_decoder(decoder).map_err(image_error)?;
    let mut raster = if img.color().has_alpha() {
        let rgba = img.into_rgba8();
        Raster { width: rgba.width(), height: rgba.height(), channels: 4, data: rgba.into_raw() }
    } else {
        let rgb = img.into_rgb8();
        Raster { width: rgb.width(), height: rgb.height(), channels: 3, data: rgb.into_raw() }
    };
    if let Some(p) = icc {
        let fmt = if raster.has_alpha() { Lcms::RGBA_8 } else { Lcms::RGB_8 };
        if let Some(t) = pixels::to_srgb(&p, Family::Rgb, fmt, fmt) {
            pixels::transform_in_place(&mut raster, &t, threads);
        }
    }
    Ok(raster)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_smallest_covering_dct_scale() {
        let s = jpeg_scale(6000, 4000, (2048, 1365));
        assert_eq!((s.num(), s.denom()), (1, 2));
        let s = jpeg_scale(6000, 4000, (400, 267));
        assert_eq!((s.num(), s.denom()), (1, 8));
        let s = jpeg_scale(6000, 4000, (6000, 4000));
        assert_eq!((s.num(), s.denom()), (1, 1));
        let s = jpeg_scale(16000, 12000, (2048, 1536));
        assert_eq!((s.num(), s.denom()), (1, 4));
        let s = jpeg_scale(4000, 6000, (1365, 2048));
        assert!(scaled(4000, s) >= 1365 && scaled(6000, s) >= 2048);
    }
}
