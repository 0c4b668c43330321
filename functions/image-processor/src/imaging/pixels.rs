//! Pixel work on 8-bit interleaved rasters: colour management (lcms2), resizing
//! (fast_image_resize, Lanczos3), orientation, alpha flattening.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use lcms2::{DisallowCache, Flags, GlobalContext, Intent, PixelFormat, Profile, Transform};

use super::error::ImagingError;

/// An 8-bit raster, RGB (3 channels) or RGBA (4 channels, straight alpha), rows packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raster {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Raster {
    pub fn has_alpha(&self) -> bool {
        self.channels == 4
    }

    fn pixel_type(&self) -> PixelType {
        if self.has_alpha() {
            PixelType::U8x4
        } else {
            PixelType::U8x3
        }
    }

    /// Drops an alpha channel that is fully opaque (saves work and bytes downstream).
    pub fn drop_opaque_alpha(self) -> Raster {
        if !self.has_alpha() || self.data.chunks_exact(4).any(|p| p[3] != 255) {
            return self;
        }
        let mut data = self.data;
        let pixels = data.len() / 4;
        for i in 0..pixels {
            data.copy_within(i * 4..i * 4 + 3, i * 3);
        }
        data.truncate(pixels * 3);
        data.shrink_to_fit();
        Raster { channels: 3, data, ..self }
    }
}

/// A transform to sRGB that can be shared between threads.
pub(crate) type SrgbTransform = Transform<u8, u8, GlobalContext, DisallowCache>;

/// The colour space family a decoded raster is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Rgb,
    Cmyk,
}

/// A transform from an embedded ICC profile to sRGB, or `None` when the profile is (named) sRGB,
/// unreadable or of another colour family than the pixels (then the pixels are taken as sRGB,
/// which is what browsers do with such files).
pub(crate) fn to_srgb(
    icc: &[u8],
    family: Family,
    in_format: PixelFormat,
    out_format: PixelFormat,
) -> Option<SrgbTransform> {
    let profile = match Profile::new_icc(icc) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an unreadable embedded ICC profile");
            return None;
        }
    };
    let expected = match family {
        Family::Rgb => lcms2::ColorSpaceSignature::RgbData,
        Family::Cmyk => lcms2::ColorSpaceSignature::CmykData,
    };
    if profile.color_space() != expected {
        tracing::warn!(space = ?profile.color_space(), "ignoring an ICC profile of another colour space");
        return None;
    }
    if family == Family::Rgb {
        let name =
            profile.info(lcms2::InfoType::Description, lcms2::Locale::none()).unwrap_or_default();
        if name.starts_with("sRGB") {
            return None; // already the output space: save the work
        }
    }
    let srgb = Profile::new_srgb();
    // Perceptual intent: lcms falls back to relative colorimetric for matrix/shaper profiles;
    // CMYK and wide-gamut LUT profiles get their gamut mapping.
    let flags = Flags::NO_CACHE | Flags::BLACKPOINT_COMPENSATION;
    match Transform::new_flags_context(
        GlobalContext::new(),
        &profile,
        in_format,
        &srgb,
        out_format,
        Intent::Perceptual,
        flags,
    ) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an ICC profile lcms cannot transform");
            None
        }
    }
}

/// Runs `f` over `data` split into `parts` row-aligned chunks on scoped threads.
pub(crate) fn par_rows<F>(data: &mut [u8], row_bytes: usize, parts: usize, f: F)
where
    F: Fn(&mut [u8]) + Sync,
{
    let rows = data.len() / row_bytes.max(1);
    if parts <= 1 || rows < 64 {
        f(data);
        return;
    }
    let per = rows.div_ceil(parts) * row_bytes;
    std::thread::scope(|s| {
        for chunk in data.chunks_mut(per) {
            let f = &f;
            s.spawn(move || f(chunk));
        }
    });
}

/// Applies an in-place RGB(A)→sRGB transform (alpha bytes are left untouched).
pub(crate) fn transform_in_place(raster: &mut Raster, t: &SrgbTransform, threads: usize) {
    let row = raster.width as usize * raster.channels as usize;
    par_rows(&mut raster.data, row, threads, |chunk| t.transform_in_place(chunk));
}

/// CMYK (4 bytes a pixel) to RGB without a profile: the naive complement product, with
/// Adobe-inverted data (Photoshop's convention when an Adobe APP14 marker is present) handled.
pub(crate) fn cmyk_to_rgb_naive(src: &[u8], inverted: bool, dst: &mut [u8]) {
    for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
        let (c, m, y, k) = if inverted {
            (255 - s[0], 255 - s[1], 255 - s[2], 255 - s[3])
        } else {
            (s[0], s[1], s[2], s[3])
        };
        let kk = 255 - u32::from(k);
        d[0] = (((255 - u32::from(c)) * kk + 127) / 255) as u8;
        d[1] = (((255 - u32::from(m)) * kk + 127) / 255) as u8;
        d[2] = (((255 - u32::from(y)) * kk + 127) / 255) as u8;
    }
}

/// Resizes with Lanczos3 (alpha-aware: premultiplied internally) to exactly `w`×`h`.
pub(crate) fn resize(src: &Raster, w: u32, h: u32) -> Result<Raster, ImagingError> {
    if src.width == w && src.height == h {
        return Ok(src.clone());
    }
    let internal = |e: &dyn std::fmt::Display| ImagingError::Internal(format!("resize: {e}"));
    let view = ImageRef::new(src.width, src.height, &src.data, src.pixel_type())
        .map_err(|e| internal(&e))?;
    let mut dst = Image::new(w, h, src.pixel_type());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(&view, &mut dst, &options).map_err(|e| internal(&e))?;
    Ok(Raster { width: w, height: h, channels: src.channels, data: dst.into_vec() })
}

/// Applies an EXIF orientation (1–8), returning the raster as it is meant to be displayed.
pub(crate) fn orient(src: &Raster, orientation: u8) -> Raster {
    if !(2..=8).contains(&orientation) {
        return src.clone();
    }
    let (w, h) = (src.width as usize, src.height as usize);
    let mut out = vec![0u8; src.data.len()];
    match src.channels {
        4 => orient_into::<4>(&src.data, w, h, orientation, &mut out),
        _ => orient_into::<3>(&src.data, w, h, orientation, &mut out),
    }
    let (ow, oh) = if orientation >= 5 { (h, w) } else { (w, h) };
    Raster { width: ow as u32, height: oh as u32, channels: src.channels, data: out }
}

/// For each display pixel (x, y), the stored pixel it comes from is:
/// 2 (w−1−x, y) · 3 (w−1−x, h−1−y) · 4 (x, h−1−y) · 5 (y, x) · 6 (y, h−1−x) ·
/// 7 (w−1−y, h−1−x) · 8 (w−1−y, x).
fn orient_into<const C: usize>(src: &[u8], w: usize, h: usize, orientation: u8, out: &mut [u8]) {
    let row_bytes = w * C;
    if orientation <= 4 {
        for (y, dst) in out.chunks_exact_mut(row_bytes).enumerate() {
            let sy = if orientation == 2 { y } else { h - 1 - y };
            let row = &src[sy * row_bytes..(sy + 1) * row_bytes];
            if orientation == 4 {
                dst.copy_from_slice(row);
            } else {
                for (d, s) in dst.chunks_exact_mut(C).zip(row.chunks_exact(C).rev()) {
                    d.copy_from_slice(s);
                }
            }
        }
        return;
    }
    // Axis-swapping orientations, in bands of output rows so that reads run along source rows
    // and writes stay within a few cache lines.
    const BAND: usize = 32;
    let (ow, oh) = (h, w);
    for y0 in (0..oh).step_by(BAND) {
        let y1 = (y0 + BAND).min(oh);
        for x in 0..ow {
            let sy = if matches!(orientation, 5 | 8) { x } else { h - 1 - x };
            let row = &src[sy * row_bytes..(sy + 1) * row_bytes];
            for y in y0..y1 {
                let sx = if matches!(orientation, 5 | 6) { y } else { w - 1 - y };
                let d = (y * ow + x) * C;
                out[d..d + C].copy_from_slice(&row[sx * C..sx * C + C]);
            }
        }
    }
}

/// RGBA composited onto white, as RGB (JPEG has no alpha).
pub(crate) fn flatten_on_white(src: &Raster) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.width as usize * src.height as usize * 3);
    for p in src.data.chunks_exact(4) {
        let a = u32::from(p[3]);
        for &v in &p[..3] {
            out.push(((u32::from(v) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster(w: u32, h: u32) -> Raster {
        // Every pixel holds its own stored coordinates.
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[x as u8, y as u8, 0]);
            }
        }
        Raster { width: w, height: h, channels: 3, data }
    }

    #[test]
    fn orientations_map_corners_like_the_exif_spec() {
        // The stored top-left pixel (0,0) must land where the EXIF table says row 0 / column 0 go.
        let src = raster(3, 2);
        let at = |r: &Raster, x: usize, y: usize| {
            let i = (y * r.width as usize + x) * 3;
            (r.data[i], r.data[i + 1])
        };
        let cases = [
            (1, (0, 0)), // top-left stays top-left
            (2, (2, 0)), // mirrored: top-right
            (3, (2, 1)), // rotated 180: bottom-right
            (4, (0, 1)), // flipped: bottom-left
            (5, (0, 0)), // transposed: top-left
            (6, (1, 0)), // rotated 90° clockwise: top-right of a 2×3 display
            (7, (1, 2)), // transverse: bottom-right
            (8, (0, 2)), // rotated 90° counter-clockwise: bottom-left
        ];
        for (o, (x, y)) in cases {
            let out = orient(&src, o);
            assert_eq!(at(&out, x, y), (0, 0), "orientation {o}");
            if o >= 5 {
                assert_eq!((out.width, out.height), (2, 3));
            }
        }
    }

    #[test]
    fn flattening_and_opaque_alpha() {
        let r =
            Raster { width: 2, height: 1, channels: 4, data: vec![0, 0, 0, 0, 10, 20, 30, 255] };
        assert_eq!(flatten_on_white(&r), vec![255, 255, 255, 10, 20, 30]);
        let opaque = Raster { width: 1, height: 1, channels: 4, data: vec![1, 2, 3, 255] };
        assert_eq!(opaque.drop_opaque_alpha().data, vec![1, 2, 3]);
    }

    #[test]
    fn naive_cmyk() {
        let mut out = [0u8; 6];
        cmyk_to_rgb_naive(&[0, 0, 0, 0, 255, 0, 0, 0], false, &mut out);
        assert_eq!(out, [255, 255, 255, 0, 255, 255]);
        cmyk_to_rgb_naive(&[255, 255, 255, 255, 0, 255, 255, 255], true, &mut out);
        assert_eq!(out, [255, 255, 255, 0, 255, 255]);
    }
}
