//! The rendition pipeline end to end, on images generated here: orientation, colour
//! management, metadata hygiene (outputs are parsed, not trusted), limits and bombs, refusals.

use std::borrow::Cow;
use std::process::Command;

use image::{imageops, ImageBuffer, Rgb, RgbImage};
use image_processor::imaging::{
    self, exif, probe, render, render_with_threads, sniff, ImagingError, Limits, OutputFormat,
    Rendition, Rights, SourceFormat,
};
use lcms2::{CIExyY, CIExyYTRIPLE, Profile, ToneCurve};
use turbojpeg::{Colorspace, Compressor, Image, PixelFormat, Subsamp};

fn rights() -> Rights {
    Rights { artist: "Ada Example".into(), title: "Harbour at Dusk".into() }
}

// ---------------------------------------------------------------------------------------------
// Building inputs

fn jpeg_from(
    pixels: &[u8],
    w: usize,
    h: usize,
    format: PixelFormat,
    subsamp: Subsamp,
    quality: i32,
) -> Vec<u8> {
    let mut c = Compressor::new().expect("compressor");
    c.set_quality(quality).expect("quality");
    c.set_subsamp(subsamp).expect("subsamp");
    let image = Image { pixels, width: w, pitch: w * format.size(), height: h, format };
    c.compress_to_vec(image).expect("compress")
}

fn jpeg_rgb(img: &RgbImage, quality: i32) -> Vec<u8> {
    jpeg_from(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
        PixelFormat::RGB,
        Subsamp::None,
        quality,
    )
}

/// Inserts a marker segment right after SOI.
fn with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Removes every segment with this marker (before the first scan).
fn without_segment(jpeg: &[u8], marker: u8) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF && jpeg[pos + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
        if jpeg[pos + 1] != marker {
            out.extend_from_slice(&jpeg[pos..pos + 2 + len]);
        }
        pos += 2 + len;
    }
    out.extend_from_slice(&jpeg[pos..]);
    out
}

/// A camera-style EXIF block (little-endian): Orientation, Make, Model, and a GPS IFD.
fn camera_exif(orientation: u16) -> Vec<u8> {
    let mut t = b"II\x2a\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    let entries: u16 = 4;
    let ifd0_end = 8 + 2 + 12 * entries as u32 + 4;
    let make_at = ifd0_end;
    let model_at = make_at + 6;
    let gps_at = model_at + 10;
    t.extend_from_slice(&entries.to_le_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&typ.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    entry(&mut t, 0x010F, 2, 6, make_at); // Make
    entry(&mut t, 0x0110, 2, 10, model_at); // Model
    entry(&mut t, 0x0112, 3, 1, u32::from(orientation)); // Orientation
    entry(&mut t, 0x8825, 4, 1, gps_at); // GPS IFD pointer
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(b"Canon\0");
    t.extend_from_slice(b"EOS 5D IV\0");
    // GPS IFD: GPSLatitudeRef = "N", GPSLongitudeRef = "E".
    t.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0003, 2, 2, u32::from_le_bytes(*b"E\0\0\0"));
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

fn app1_exif(tiff: &[u8]) -> Vec<u8> {
    let mut p = b"Exif\0\0".to_vec();
    p.extend_from_slice(tiff);
    p
}

const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF \
xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description \
xmlns:exif='http://ns.adobe.com/exif/1.0/' exif:GPSLatitude='48,51.5N' \
xmlns:photoshop='http://ns.adobe.com/photoshop/1.0/' photoshop:City='Paris'/></rdf:RDF></x:xmpmeta>";

/// A Photoshop APP13 with an IPTC City dataset.
fn iptc_app13() -> Vec<u8> {
    let mut iptc = vec![0x1C, 2, 90, 0, 5];
    iptc.extend_from_slice(b"Paris");
    let mut p = b"Photoshop 3.0\08BIM\x04\x04\0\0".to_vec();
    p.extend_from_slice(&(iptc.len() as u32).to_be_bytes());
    p.extend_from_slice(&iptc);
    p
}

fn icc_app2(profile: &[u8]) -> Vec<u8> {
    let mut p = b"ICC_PROFILE\0\x01\x01".to_vec();
    p.extend_from_slice(profile);
    p
}

fn png_bytes(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    extra: &[(png::chunk::ChunkType, Vec<u8>)],
    icc: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut info = png::Info::with_size(w, h);
        info.color_type = color;
        info.bit_depth = depth;
        info.icc_profile = icc.map(Cow::Owned);
        let enc = png::Encoder::with_info(&mut out, info).expect("encoder");
        let mut writer = enc.write_header().expect("header");
        for (kind, data) in extra {
            writer.write_chunk(*kind, data).expect("chunk");
        }
        writer.write_image_data(data).expect("data");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading outputs (independently of the writer)

fn decode_jpeg(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let img = turbojpeg::decompress(bytes, PixelFormat::RGB).expect("output jpeg decodes");
    (img.width as u32, img.height as u32, img.pixels)
}

fn decode_webp(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::WebP)
        .expect("output webp decodes")
        .to_rgba8()
}

fn rgb_at(r: &Rendition, x: u32, y: u32) -> [u8; 3] {
    match r.format {
        OutputFormat::Jpeg => {
            let (w, _, px) = decode_jpeg(&r.bytes);
            let i = ((y * w + x) * 3) as usize;
            [px[i], px[i + 1], px[i + 2]]
        }
        OutputFormat::Webp => {
            let p = decode_webp(&r.bytes).get_pixel(x, y).0;
            [p[0], p[1], p[2]]
        }
    }
}

/// Every metadata-bearing part of an output: (kind, payload). Fails on anything unexpected.
fn metadata_parts(r: &Rendition) -> Vec<(String, Vec<u8>)> {
    let b = &r.bytes;
    let mut parts = Vec::new();
    match r.format {
        OutputFormat::Jpeg => {
            assert_eq!(&b[..2], &[0xFF, 0xD8]);
            let mut pos = 2;
            loop {
                assert_eq!(b[pos], 0xFF, "marker expected at {pos}");
                let m = b[pos + 1];
                let len = u16::from_be_bytes([b[pos + 2], b[pos + 3]]) as usize;
                let payload = b[pos + 4..pos + 2 + len].to_vec();
                match m {
                    0xDA => break,
                    0xDB | 0xC4 | 0xDD => {}
                    0xC0 => {
                        // Baseline, 3 components, luma 2×2 and chroma 1×1: 4:2:0.
                        assert_eq!(payload[5], 3);
                        assert_eq!(payload[7], 0x22, "luma sampling");
                        assert_eq!(payload[10], 0x11, "Cb sampling");
                        assert_eq!(payload[13], 0x11, "Cr sampling");
                    }
                    0xE0 => assert!(payload.starts_with(b"JFIF\0")),
                    0xE1 => parts.push(("jpeg-app1".into(), payload)),
                    other => panic!("unexpected JPEG segment 0xFF{other:02X} in output"),
                }
                pos += 2 + len;
            }
        }
        OutputFormat::Webp => {
            assert_eq!(&b[..4], b"RIFF");
            assert_eq!(&b[8..12], b"WEBP");
            assert_eq!(u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize, b.len() - 8);
            let mut pos = 12;
            while pos < b.len() {
                let kind = String::from_utf8_lossy(&b[pos..pos + 4]).into_owned();
                let len =
                    u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
                let data = b[pos + 8..pos + 8 + len].to_vec();
                match kind.as_str() {
                    "VP8X" => assert_eq!(data[0] & 0x08, 0x08, "EXIF flag"),
                    "VP8 " | "VP8L" | "ALPH" => {}
                    "EXIF" => parts.push(("webp-exif".into(), data)),
                    other => panic!("unexpected WebP chunk {other:?} in output"),
                }
                pos += 8 + len + (len & 1);
            }
        }
    }
    parts
}

fn assert_only_rights(r: &Rendition, rights: &Rights) {
    let parts = metadata_parts(r);
    assert_eq!(parts.len(), 1, "exactly one EXIF block in {:?}", r);
    let tiff = match parts[0].0.as_str() {
        "jpeg-app1" => {
            parts[0].1.strip_prefix(b"Exif\0\0").expect("an Exif APP1, not XMP").to_vec()
        }
        _ => parts[0].1.clone(),
    };
    assert_eq!(
        exif::ifd0_tags(&tiff),
        vec![0x010E, 0x013B, 0x8298],
        "only title, artist, copyright"
    );
    let tags = exif::ascii_tags(&tiff);
    assert_eq!(tags[0].1, rights.title);
    assert_eq!(tags[1].1, rights.artist);
    assert!(tags[2].1.contains(&rights.artist));
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for needle in [&b"Canon"[..], b"Paris", b"8BIM", b"EOS 5D", b"ns.adobe.com", b"xmpmeta"] {
        assert!(!has(&r.bytes, needle), "{:?} found in {:?}", String::from_utf8_lossy(needle), r);
    }
    for needle in [&b"GPS"[..], b"xmp", b"Photoshop"] {
        assert!(
            !has(&tiff, needle),
            "{:?} found in the EXIF of {:?}",
            String::from_utf8_lossy(needle),
            r
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Orientation

const TL: [u8; 3] = [220, 30, 30];
const TR: [u8; 3] = [30, 200, 30];
const BL: [u8; 3] = [30, 30, 220];
const BR: [u8; 3] = [230, 230, 40];

/// 64×40 as displayed, one colour per quadrant (asymmetric in both axes).
fn canonical() -> RgbImage {
    ImageBuffer::from_fn(64, 40, |x, y| {
        Rgb(match (x < 32, y < 20) {
            (true, true) => TL,
            (false, true) => TR,
            (true, false) => BL,
            (false, false) => BR,
        })
    })
}

/// What a camera stores so that applying `orientation` shows `display`.
fn stored_for(display: &RgbImage, orientation: u8) -> RgbImage {
    match orientation {
        1 => display.clone(),
        2 => imageops::flip_horizontal(display),
        3 => imageops::rotate180(display),
        4 => imageops::flip_vertical(display),
        5 => imageops::rotate270(&imageops::flip_horizontal(display)), // a transpose
        6 => imageops::rotate270(display),
        7 => imageops::rotate90(&imageops::flip_horizontal(display)), // a transverse
        8 => imageops::rotate90(display),
        _ => unreachable!(),
    }
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter().zip(b).all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tol)
}

fn assert_corners(renditions: &[Rendition], what: &str) {
    assert_eq!(renditions.len(), 2, "{what}: one size (smaller than 400) in two formats");
    for r in renditions {
        assert_eq!((r.width, r.height), (64, 40), "{what} {:?}", r.format);
        for (x, y, want) in [(4, 4, TL), (59, 4, TR), (4, 35, BL), (59, 35, BR)] {
            let got = rgb_at(r, x, y);
            assert!(
                close(got, want, 40),
                "{what} {:?}: pixel ({x},{y}) is {got:?}, want {want:?}",
                r.format
            );
        }
    }
}

#[test]
fn jpeg_orientations_1_to_8_are_applied() {
    for o in 1..=8u8 {
        let stored = stored_for(&canonical(), o);
        let jpeg =
            with_segment(&jpeg_rgb(&stored, 95), 0xE1, &app1_exif(&camera_exif(u16::from(o))));
        let p = probe(&jpeg).expect("probe");
        assert_eq!((p.orientation, p.display_width(), p.display_height()), (o, 64, 40));
        let out = render(&jpeg, &Limits::default(), &rights()).expect("render");
        assert_corners(&out, &format!("jpeg orientation {o}"));
    }
}

#[test]
fn png_and_webp_orientations_are_applied() {
    for o in [3u8, 6, 8] {
        let stored = stored_for(&canonical(), o);
        let tiff = camera_exif(u16::from(o));
        let png = png_bytes(
            stored.width(),
            stored.height(),
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            stored.as_raw(),
            &[(png::chunk::eXIf, tiff.clone())],
            None,
        );
        let out = render(&png, &Limits::default(), &rights()).expect("png");
        assert_corners(&out, &format!("png orientation {o}"));

        // A lossless WebP (image's encoder) made extended with an EXIF chunk.
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .encode(
                stored.as_raw(),
                stored.width(),
                stored.height(),
                image::ExtendedColorType::Rgb8,
            )
            .expect("webp");
        let webp = add_webp_exif(&webp, stored.width(), stored.height(), &tiff);
        assert_eq!(probe(&webp).expect("probe").orientation, o);
        let out = render(&webp, &Limits::default(), &rights()).expect("webp");
        assert_corners(&out, &format!("webp orientation {o}"));
    }
}

fn add_webp_exif(simple: &[u8], w: u32, h: u32, tiff: &[u8]) -> Vec<u8> {
    let mut vp8x = vec![0x08, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&vp8x);
    body.extend_from_slice(&simple[12..]);
    body.extend_from_slice(b"EXIF");
    body.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
    body.extend_from_slice(tiff);
    if tiff.len() % 2 == 1 {
        body.push(0);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

// ---------------------------------------------------------------------------------------------
// Colour

type M3 = [[f64; 3]; 3];

fn mul(a: &M3, b: &M3) -> M3 {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn apply(m: &M3, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

fn inv(m: &M3) -> M3 {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    [
        [c(1, 1, 2, 2) / det, -c(0, 1, 2, 2) / det, c(0, 1, 1, 2) / det],
        [-c(1, 0, 2, 2) / det, c(0, 0, 2, 2) / det, -c(0, 0, 1, 2) / det],
        [c(1, 0, 2, 1) / det, -c(0, 0, 2, 1) / det, c(0, 0, 1, 1) / det],
    ]
}

fn xyz_of(x: f64, y: f64) -> [f64; 3] {
    [x / y, 1.0, (1.0 - x - y) / y]
}

/// RGB → XYZ matrix of a colour space given its primaries and white point (xy).
fn rgb_to_xyz(prim: [(f64, f64); 3], white: (f64, f64)) -> M3 {
    let p =
        [xyz_of(prim[0].0, prim[0].1), xyz_of(prim[1].0, prim[1].1), xyz_of(prim[2].0, prim[2].1)];
    let m = [[p[0][0], p[1][0], p[2][0]], [p[0][1], p[1][1], p[2][1]], [p[0][2], p[1][2], p[2][2]]];
    let s = apply(&inv(&m), xyz_of(white.0, white.1));
    [0, 1, 2].map(|i| [m[i][0] * s[0], m[i][1] * s[1], m[i][2] * s[2]])
}

/// Bradford adaptation between two white points.
fn bradford(from: (f64, f64), to: (f64, f64)) -> M3 {
    let b: M3 = [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]];
    let s = apply(&b, xyz_of(from.0, from.1));
    let d = apply(&b, xyz_of(to.0, to.1));
    let scale = [[d[0] / s[0], 0.0, 0.0], [0.0, d[1] / s[1], 0.0], [0.0, 0.0, d[2] / s[2]]];
    mul(&inv(&b), &mul(&scale, &b))
}

const D65: (f64, f64) = (0.3127, 0.3290);
const D50: (f64, f64) = (0.3457, 0.3585);
const SRGB_PRIMARIES: [(f64, f64); 3] = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)];

fn srgb_encode(v: f64) -> f64 {
    let v = v.clamp(0.0, 1.0);
    if v <= 0.0031308 {
        12.92 * v
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

fn srgb_decode(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn lab(rgb: [f64; 3]) -> [f64; 3] {
    let lin = rgb.map(|c| srgb_decode(c / 255.0));
    let xyz = apply(&rgb_to_xyz(SRGB_PRIMARIES, D65), lin);
    let w = xyz_of(D65.0, D65.1);
    let f =
        |t: f64| if t > 216.0 / 24389.0 { t.cbrt() } else { (24389.0 / 27.0 * t + 16.0) / 116.0 };
    let (fx, fy, fz) = (f(xyz[0] / w[0]), f(xyz[1] / w[1]), f(xyz[2] / w[2]));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

fn delta_e(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (a, b) = (lab(a), lab(b));
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

struct Space {
    name: &'static str,
    primaries: [(f64, f64); 3],
    white: (f64, f64),
    decode: fn(f64) -> f64,
    profile: fn() -> Profile,
}

fn lcms_profile(white: (f64, f64), prim: [(f64, f64); 3], curve: &ToneCurve) -> Profile {
    let xyy = |p: (f64, f64)| CIExyY { x: p.0, y: p.1, Y: 1.0 };
    let primaries = CIExyYTRIPLE { Red: xyy(prim[0]), Green: xyy(prim[1]), Blue: xyy(prim[2]) };
    Profile::new_rgb(&xyy(white), &primaries, &[curve, curve, curve]).expect("profile")
}

const ADOBE_PRIMARIES: [(f64, f64); 3] = [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)];
const P3_PRIMARIES: [(f64, f64); 3] = [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)];
const PROPHOTO_PRIMARIES: [(f64, f64); 3] = [(0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)];

fn spaces() -> Vec<Space> {
    vec![
        Space {
            name: "adobe rgb",
            primaries: ADOBE_PRIMARIES,
            white: D65,
            decode: |v| v.powf(563.0 / 256.0),
            profile: || lcms_profile(D65, ADOBE_PRIMARIES, &ToneCurve::new(563.0 / 256.0)),
        },
        Space {
            name: "display p3",
            primaries: P3_PRIMARIES,
            white: D65,
            decode: srgb_decode,
            profile: || {
                let curve = ToneCurve::new_parametric(
                    4,
                    &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045],
                )
                .expect("curve");
                lcms_profile(D65, P3_PRIMARIES, &curve)
            },
        },
        Space {
            name: "prophoto",
            primaries: PROPHOTO_PRIMARIES,
            white: D50,
            decode: |v| v.powf(1.8),
            profile: || lcms_profile(D50, PROPHOTO_PRIMARIES, &ToneCurve::new(1.8)),
        },
    ]
}

/// The sRGB value a colour in `space` should become, computed here from first principles.
fn expected_srgb(space: &Space, rgb: [u8; 3]) -> [f64; 3] {
    let lin = rgb.map(|c| (space.decode)(f64::from(c) / 255.0));
    let xyz = apply(&rgb_to_xyz(space.primaries, space.white), lin);
    let xyz = apply(&bradford(space.white, D65), xyz);
    let srgb_lin = apply(&inv(&rgb_to_xyz(SRGB_PRIMARIES, D65)), xyz);
    srgb_lin.map(|c| srgb_encode(c) * 255.0)
}

fn flat(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
    ImageBuffer::from_pixel(w, h, Rgb(rgb))
}

#[test]
fn embedded_rgb_profiles_come_out_right_in_srgb() {
    let patches = [[180u8, 90, 60], [70, 140, 100], [128, 128, 128], [200, 180, 120]];
    for space in spaces() {
        let icc = (space.profile)().icc().expect("icc bytes");
        for rgb in patches {
            let want = expected_srgb(&space, rgb);
            // JPEG input (APP2 ICC) …
            let jpeg = with_segment(&jpeg_rgb(&flat(48, 48, rgb), 100), 0xE2, &icc_app2(&icc));
            // … and a 16-bit PNG (iCCP), which takes the streaming 16-bit path.
            let wide: Vec<u8> = flat(48, 48, rgb)
                .as_raw()
                .iter()
                .flat_map(|v| (u16::from(*v) * 257).to_be_bytes())
                .collect();
            let png = png_bytes(
                48,
                48,
                png::ColorType::Rgb,
                png::BitDepth::Sixteen,
                &wide,
                &[],
                Some(icc.clone()),
            );
            for (kind, input) in [("jpeg", &jpeg), ("png16", &png)] {
                for r in render(input, &Limits::default(), &rights()).expect("render") {
                    let got = rgb_at(&r, 24, 24).map(f64::from);
                    let de = delta_e(got, want);
                    assert!(
                        de < 2.5,
                        "{} {kind} {rgb:?} → {:?}: got {got:?}, want {want:?} (ΔE {de:.2})",
                        space.name,
                        r.format
                    );
                    // Ignoring the profile would be visibly wrong for saturated colours.
                    if rgb != [128, 128, 128] && space.name != "display p3" {
                        assert!(delta_e(rgb.map(f64::from), want) > 3.0);
                    }
                }
            }
        }
    }
}

/// A CMYK JPEG of one flat colour; `adobe_inverted` writes Photoshop-style inverted data
/// (libjpeg-turbo always writes an Adobe marker for CMYK); otherwise the marker is removed.
fn cmyk_jpeg(cmyk: [u8; 4], adobe_inverted: bool) -> Vec<u8> {
    let px = if adobe_inverted { cmyk.map(|v| 255 - v) } else { cmyk };
    let data: Vec<u8> = (0..32 * 32).flat_map(|_| px).collect();
    let mut c = Compressor::new().expect("compressor");
    c.set_quality(100).expect("q");
    c.set_subsamp(Subsamp::None).expect("s");
    c.set_colorspace(Colorspace::CMYK).expect("cs");
    let out = c
        .compress_to_vec(Image {
            pixels: data.as_slice(),
            width: 32,
            pitch: 128,
            height: 32,
            format: PixelFormat::CMYK,
        })
        .expect("cmyk");
    if adobe_inverted {
        out
    } else {
        without_segment(&out, 0xEE)
    }
}

#[test]
fn cmyk_jpegs_plain_and_adobe_inverted() {
    // (C, M, Y, K) → the naive sRGB value (1−C)(1−K) etc.
    let cases = [
        ([0u8, 128, 255, 0], [255.0, 127.0, 0.0]),
        ([255, 0, 0, 0], [0.0, 255.0, 255.0]),
        ([0, 0, 0, 128], [127.0, 127.0, 127.0]),
        ([40, 80, 0, 30], [(215.0 * 225.0) / 255.0, (175.0 * 225.0) / 255.0, 225.0]),
    ];
    for adobe in [true, false] {
        for (cmyk, want) in cases {
            let jpeg = cmyk_jpeg(cmyk, adobe);
            assert_eq!(probe(&jpeg).expect("probe").format, SourceFormat::Jpeg);
            for r in render(&jpeg, &Limits::default(), &rights()).expect("render cmyk") {
                let got = rgb_at(&r, 16, 16).map(f64::from);
                let de = delta_e(got, want);
                assert!(
                    de < 3.0,
                    "cmyk {cmyk:?} adobe={adobe} {:?}: got {got:?} want {want:?} ΔE {de:.2}",
                    r.format
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[test]
fn outputs_carry_rights_and_nothing_else() {
    let photo = ImageBuffer::from_fn(900, 600, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut jpeg = jpeg_rgb(&photo, 90);
    jpeg = with_segment(&jpeg, 0xED, &iptc_app13());
    jpeg = with_segment(&jpeg, 0xE1, XMP);
    jpeg = with_segment(&jpeg, 0xE2, &icc_app2(&Profile::new_srgb().icc().expect("icc")));
    jpeg = with_segment(&jpeg, 0xE1, &app1_exif(&camera_exif(1)));
    let png = png_bytes(
        900,
        600,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        photo.as_raw(),
        &[
            (png::chunk::eXIf, camera_exif(1)),
            (png::chunk::iTXt, b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>Paris</x:xmpmeta>".to_vec()),
        ],
        None,
    );
    for input in [jpeg, png] {
        let out = render(&input, &Limits::default(), &rights()).expect("render");
        assert_eq!(out.len(), 4, "1024 (at 900×600) and 400, two formats each");
        for r in &out {
            assert_only_rights(r, &rights());
        }
    }
}

#[test]
fn empty_rights_mean_no_metadata_at_all() {
    let jpeg =
        with_segment(&jpeg_rgb(&flat(32, 32, [9, 9, 9]), 90), 0xE1, &app1_exif(&camera_exif(1)));
    for r in render(&jpeg, &Limits::default(), &Rights::default()).expect("render") {
        assert!(metadata_parts(&r).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes, formats, alpha, determinism

#[test]
fn renditions_cascade_with_the_documented_sizes() {
    let photo = ImageBuffer::from_fn(2100, 1400, |x, y| {
        Rgb([(x / 9) as u8, (y / 6) as u8, ((x ^ y) & 0xFF) as u8])
    });
    let jpeg = jpeg_rgb(&photo, 85);
    let out = render(&jpeg, &Limits::default(), &rights()).expect("render");
    let got: Vec<_> = out.iter().map(|r| (r.long_edge, r.format, r.width, r.height)).collect();
    assert_eq!(
        got,
        vec![
            (2048, OutputFormat::Jpeg, 2048, 1365),
            (2048, OutputFormat::Webp, 2048, 1365),
            (1024, OutputFormat::Jpeg, 1024, 683),
            (1024, OutputFormat::Webp, 1024, 683),
            (400, OutputFormat::Jpeg, 400, 267),
            (400, OutputFormat::Webp, 400, 267),
        ]
    );
    for r in &out {
        use sha2::Digest;
        assert_eq!(r.sha256, hex::encode(sha2::Sha256::digest(&r.bytes)));
        assert_eq!(
            sniff(&r.bytes).expect("sniff output"),
            match r.format {
                OutputFormat::Jpeg => SourceFormat::Jpeg,
                OutputFormat::Webp => SourceFormat::Webp,
            }
        );
        let p = probe(&r.bytes).expect("probe output");
        assert_eq!((p.width, p.height), (r.width, r.height));
        assert_only_rights(r, &rights());
    }
    // Same input, any thread count, concurrently: same bytes.
    let single = render_with_threads(&jpeg, &Limits::default(), &rights(), 1).expect("single");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| render(&jpeg, &Limits::default(), &rights()).expect("render")))
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("thread"), single);
        }
    });
    assert_eq!(single, out);
}

#[test]
fn accepts_every_listed_input_kind() {
    let photo = ImageBuffer::from_fn(120, 80, |x, y| Rgb([(x * 2) as u8, (y * 3) as u8, 90]));
    let (w, h) = (photo.width(), photo.height());
    let mut inputs: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut c = Compressor::new().expect("c");
    c.set_progressive(true).expect("p");
    c.set_quality(90).expect("q");
    c.set_subsamp(Subsamp::Sub2x2).expect("s");
    inputs.push((
        "progressive jpeg",
        c.compress_to_vec(Image {
            pixels: photo.as_raw().as_slice(),
            width: 120,
            pitch: 360,
            height: 80,
            format: PixelFormat::RGB,
        })
        .expect("prog"),
    ));
    let grey: Vec<u8> = photo.pixels().map(|p| p.0[0]).collect();
    inputs.push(("grey jpeg", jpeg_from(&grey, 120, 80, PixelFormat::GRAY, Subsamp::Gray, 90)));
    inputs.push((
        "png 8-bit",
        png_bytes(w, h, png::ColorType::Rgb, png::BitDepth::Eight, photo.as_raw(), &[], None),
    ));
    let wide: Vec<u8> =
        photo.as_raw().iter().flat_map(|v| (u16::from(*v) * 257).to_be_bytes()).collect();
    inputs.push((
        "png 16-bit",
        png_bytes(w, h, png::ColorType::Rgb, png::BitDepth::Sixteen, &wide, &[], None),
    ));
    inputs.push((
        "png grey",
        png_bytes(w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &grey, &[], None),
    ));
    let mut enc = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut enc)
        .encode(
            &image::DynamicImage::ImageRgb8(photo.clone()).to_rgba8(),
            w,
            h,
            image::ExtendedColorType::Rgba8,
        )
        .expect("gif");
    inputs.push(("gif", enc));
    let mut tiff = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(photo.clone())
        .write_to(&mut tiff, image::ImageFormat::Tiff)
        .expect("tiff");
    inputs.push(("tiff", tiff.into_inner()));
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(photo.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("webp");
    inputs.push(("webp", webp));
    for (what, bytes) in inputs {
        let out =
            render(&bytes, &Limits::default(), &rights()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(out.len(), 2, "{what}");
        for r in &out {
            assert_eq!((r.width, r.height), (120, 80), "{what}");
            let want = if what.contains("grey") { [40, 40, 40] } else { [40, 60, 90] };
            let got = rgb_at(r, 20, 20);
            assert!(close(got, want, 12), "{what} {:?}: {got:?} vs {want:?}", r.format);
        }
    }
}

#[test]
fn alpha_is_flattened_on_white_for_jpeg_and_kept_in_webp() {
    let rgba: Vec<u8> = (0..64 * 64)
        .flat_map(|i| if i % 64 < 32 { [200, 20, 20, 255] } else { [0, 0, 0, 0] })
        .collect();
    let png = png_bytes(64, 64, png::ColorType::Rgba, png::BitDepth::Eight, &rgba, &[], None);
    let out = render(&png, &Limits::default(), &rights()).expect("render");
    let jpeg = out.iter().find(|r| r.format == OutputFormat::Jpeg).expect("jpeg");
    assert!(close(rgb_at(jpeg, 48, 32), [255, 255, 255], 6), "transparent becomes white");
    assert!(close(rgb_at(jpeg, 10, 32), [200, 20, 20], 20));
    let webp = out.iter().find(|r| r.format == OutputFormat::Webp).expect("webp");
    let decoded = decode_webp(&webp.bytes);
    assert_eq!(decoded.get_pixel(48, 32).0[3], 0, "alpha kept");
    assert_eq!(decoded.get_pixel(10, 32).0[3], 255);
    assert_only_rights(webp, &rights());
}

// ---------------------------------------------------------------------------------------------
// Refusals

fn refused(input: &[u8], limits: &Limits) -> ImagingError {
    let e = render(input, limits, &rights()).expect_err("must be refused");
    assert!(e.is_permanent(), "{e} must be permanent");
    e
}

#[test]
fn refuses_what_is_not_a_supported_image() {
    assert_eq!(refused(b"", &Limits::default()), ImagingError::Empty);
    assert_eq!(refused(b"", &Limits::default()).to_string(), "the file is empty");
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";
    assert_eq!(
        refused(pdf, &Limits::default()).to_string(),
        "the file is not a supported image (detected: pdf)"
    );
    let svg =
        br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#;
    assert_eq!(
        refused(svg, &Limits::default()).to_string(),
        "the file is not a supported image (detected: svg)"
    );
    // Deterministic pseudo-random bytes.
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    assert!(matches!(refused(&noise, &Limits::default()), ImagingError::UnsupportedFormat { .. }));
}

#[test]
fn refuses_truncated_and_corrupt_images() {
    let photo = ImageBuffer::from_fn(300, 200, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
    let jpeg = jpeg_rgb(&photo, 90);
    for cut in [jpeg.len() / 2, jpeg.len() - 50, 200, 20, 3] {
        let e = refused(&jpeg[..cut], &Limits::default());
        assert_eq!(e.to_string(), "the image data is truncated or corrupt", "jpeg cut at {cut}");
    }
    let png =
        png_bytes(300, 200, png::ColorType::Rgb, png::BitDepth::Eight, photo.as_raw(), &[], None);
    for cut in [png.len() / 2, png.len() - 20, 40, 12] {
        assert_eq!(
            refused(&png[..cut], &Limits::default()),
            ImagingError::Corrupt,
            "png cut at {cut}"
        );
    }
    // Flipped bytes anywhere: an answer, never a panic.
    let mut seed: u32 = 12345;
    for i in 0..300 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let src = if i % 2 == 0 { &jpeg } else { &png };
        let mut bad = src.clone();
        let at = (seed as usize >> 4) % bad.len();
        bad[at] ^= (seed >> 24) as u8 | 1;
        let _ = render(&bad, &Limits::default(), &rights());
    }
}

/// A PNG bomb: the header declares `w`×`h` grey pixels and the IDAT holds deflated zero rows,
/// which is how such files stay tiny. (Only the first rows are actually written: compressing
/// hundreds of megabytes would make the test slow, and a refusal must come from the header.)
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let rows = 64.min(h);
    let full = png_bytes(
        w,
        rows,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &vec![0u8; (w * rows) as usize],
        &[],
        None,
    );
    let mut out = full.clone();
    out[20..24].copy_from_slice(&h.to_be_bytes());
    // Fix the IHDR CRC so that only the declared size is hostile.
    let crc = crc32(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A JPEG whose SOF declares `w`×`h`, followed by a scan of nothing.
fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
    let small = jpeg_rgb(&flat(16, 16, [1, 2, 3]), 90);
    let mut out = Vec::new();
    let mut pos = 2;
    out.extend_from_slice(&small[..2]);
    while small[pos + 1] != 0xDA {
        let len = u16::from_be_bytes([small[pos + 2], small[pos + 3]]) as usize;
        let mut seg = small[pos..pos + 2 + len].to_vec();
        if seg[1] == 0xC0 {
            seg[5..7].copy_from_slice(&h.to_be_bytes());
            seg[7..9].copy_from_slice(&w.to_be_bytes());
        }
        out.extend_from_slice(&seg);
        pos += 2 + len;
    }
    out.extend_from_slice(&small[pos..]);
    out
}

fn bomb_checks() {
    let limits = Limits { max_pixels: 100_000_000, max_edge: 65_535, max_bytes: None };
    let jpeg = jpeg_declaring(65_000, 65_000);
    assert_eq!(
        refused(&jpeg, &limits).to_string(),
        "image is 65000×65000 pixels; the limit is 100 megapixels"
    );
    assert!(matches!(refused(&jpeg, &Limits::default()), ImagingError::EdgeTooLong { .. }));
    // 20000×20000 = 400 MP of zeros in a file of a few kilobytes.
    let bomb = png_bomb(20_000, 20_000);
    assert!(bomb.len() < 100_000, "the bomb is small: {} bytes", bomb.len());
    assert_eq!(probe(&bomb).map(|p| (p.width, p.height)), Ok((20_000, 20_000)));
    assert!(matches!(
        refused(&bomb, &limits),
        ImagingError::TooManyPixels { width: 20_000, height: 20_000, .. }
    ));
    // A header-only PNG declaring 2^31−1 square.
    let mut huge = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    huge.extend_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    huge.extend_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    huge.extend_from_slice(&[16, 6, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(refused(&huge, &limits), ImagingError::EdgeTooLong { .. }));
    // Within a small pixel limit, the same holds for a modest bomb.
    let small_limits =
        Limits { max_pixels: 1_000_000, max_edge: 10_000, max_bytes: Some(10_000_000) };
    assert!(matches!(
        refused(&png_bomb(2_000, 2_000), &small_limits),
        ImagingError::TooManyPixels { .. }
    ));
    assert!(matches!(
        refused(&vec![0xFF; 10_000_001], &small_limits),
        ImagingError::TooManyBytes { .. }
    ));
}

/// The bomb checks run in a child process whose address space is capped at 1 GiB: any attempt
/// to allocate a buffer for the declared pixels (12 GB for 65000×65000 RGB) would abort it.
#[test]
fn bombs_are_refused_before_any_large_allocation() {
    if std::env::var_os("IMAGING_BOMB_CHILD").is_some() {
        bomb_checks();
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args([
            "--exact",
            "bombs_are_refused_before_any_large_allocation",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("IMAGING_BOMB_CHILD", "1")
        .status()
        .expect("child");
    assert!(status.success(), "the bomb checks failed or allocated too much under a 1 GiB cap");
}

#[test]
fn errors_read_well_and_classify() {
    let e = ImagingError::TooManyPixels { width: 65000, height: 65000, limit_megapixels: 100 };
    assert_eq!(e.to_string(), "image is 65000×65000 pixels; the limit is 100 megapixels");
    assert!(e.is_permanent());
    assert!(!ImagingError::Internal("encoder".into()).is_permanent());
    assert_eq!(imaging::rendition_sizes(300, 200), vec![(400, 300, 200)]);
}
