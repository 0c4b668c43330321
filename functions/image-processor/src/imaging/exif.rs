//! The two pieces of EXIF this pipeline touches: reading the Orientation tag of an upload, and
//! writing the minimal rights block (Artist, Copyright, ImageDescription) into every rendition.
//!
//! Both work on the TIFF structure that EXIF uses (byte-order mark, IFD0). The reader is bounded
//! and never panics on hostile input; the writer is deliberately tiny, so that no camera, GPS,
//! XMP or IPTC data can ever reach an output.

/// Longest string written into one tag; longer values are cut at a character boundary.
pub const MAX_TAG_BYTES: usize = 1024;

const TAG_ORIENTATION: u16 = 0x0112;
const TAG_IMAGE_DESCRIPTION: u16 = 0x010E;
const TAG_ARTIST: u16 = 0x013B;
const TAG_COPYRIGHT: u16 = 0x8298;
const TYPE_ASCII: u16 = 2;
const TYPE_SHORT: u16 = 3;

#[derive(Clone, Copy)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    pub(crate) fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at.checked_add(2)?)?;
        Some(match self {
            ByteOrder::Little => u16::from_le_bytes([s[0], s[1]]),
            ByteOrder::Big => u16::from_be_bytes([s[0], s[1]]),
        })
    }

    pub(crate) fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at.checked_add(4)?)?;
        Some(match self {
            ByteOrder::Little => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            ByteOrder::Big => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        })
    }
}

/// Byte order and IFD0 offset of a TIFF structure, if the header is valid.
pub(crate) fn tiff_header(tiff: &[u8]) -> Option<(ByteOrder, usize)> {
    let order = match tiff.get(0..4)? {
        [b'I', b'I', 42, 0] => ByteOrder::Little,
        [b'M', b'M', 0, 42] => ByteOrder::Big,
        _ => return None,
    };
    let ifd0 = order.u32(tiff, 4)? as usize;
    Some((order, ifd0))
}

/// One IFD entry: (tag, type, count, offset of the 4-byte value field).
pub(crate) fn ifd_entries(
    tiff: &[u8],
    order: ByteOrder,
    ifd: usize,
) -> impl Iterator<Item = (u16, u16, u32, usize)> + '_ {
    // A hostile count cannot make this loop longer than the data allows.
    let count = order.u16(tiff, ifd).unwrap_or(0) as usize;
    let max_fit = tiff.len().saturating_sub(ifd.saturating_add(2)) / 12;
    (0..count.min(max_fit)).filter_map(move |i| {
        let at = ifd + 2 + i * 12;
        Some((order.u16(tiff, at)?, order.u16(tiff, at + 2)?, order.u32(tiff, at + 4)?, at + 8))
    })
}

/// The Orientation (1–8) of a TIFF-structured EXIF block; 1 when absent or invalid.
pub fn orientation_from_tiff(tiff: &[u8]) -> u8 {
    let Some((order, ifd0)) = tiff_header(tiff) else {
        return 1;
    };
    for (tag, typ, count, value_at) in ifd_entries(tiff, order, ifd0) {
        if tag == TAG_ORIENTATION && typ == TYPE_SHORT && count >= 1 {
            return match order.u16(tiff, value_at) {
                Some(v @ 1..=8) => v as u8,
                _ => 1,
            };
        }
    }
    1
}

/// The Orientation of an EXIF payload as found in a JPEG APP1 (`Exif\0\0` + TIFF), a WebP `EXIF`
/// chunk or a PNG `eXIf` chunk (TIFF, sometimes with the `Exif\0\0` prefix too).
pub fn orientation_from_exif(payload: &[u8]) -> u8 {
    let tiff = payload.strip_prefix(b"Exif\0\0").unwrap_or(payload);
    orientation_from_tiff(tiff)
}

/// Printable text for a tag: no control characters (which would end or garble the value), and
/// at most [`MAX_TAG_BYTES`] bytes.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TAG_BYTES));
    for c in s.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_TAG_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// The copyright line written for an artist.
pub fn copyright_line(artist: &str) -> String {
    format!("© {}. All rights reserved.", clean(artist))
}

/// A minimal big-endian TIFF/EXIF block carrying only ImageDescription (the artwork title),
/// Artist and Copyright. Empty values are left out; with nothing to say, returns `None`.
/// Strings are UTF-8 (what exiftool, browsers and most viewers read), NUL-terminated.
pub fn rights_tiff(artist: &str, title: &str) -> Option<Vec<u8>> {
    let artist = clean(artist);
    let title = clean(title);
    let mut tags: Vec<(u16, Vec<u8>)> = Vec::with_capacity(3);
    if !title.is_empty() {
        tags.push((TAG_IMAGE_DESCRIPTION, title.into_bytes()));
    }
    if !artist.is_empty() {
        tags.push((TAG_ARTIST, artist.clone().into_bytes()));
        tags.push((TAG_COPYRIGHT, copyright_line(&artist).into_bytes()));
    }
    if tags.is_empty() {
        return None;
    }
    // Tags are already in ascending order, as TIFF requires.
    let ifd_len = 2 + tags.len() * 12 + 4;
    let mut out =
        Vec::with_capacity(8 + ifd_len + tags.iter().map(|t| t.1.len() + 2).sum::<usize>());
    out.extend_from_slice(b"MM\0\x2a");
    out.extend_from_slice(&8u32.to_be_bytes());
    out.extend_from_slice(&(tags.len() as u16).to_be_bytes());
    let mut data: Vec<u8> = Vec::new();
    let data_start = 8 + ifd_len;
    for (tag, value) in &tags {
        let mut v = value.clone();
        v.push(0);
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&TYPE_ASCII.to_be_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        if v.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..v.len()].copy_from_slice(&v);
            out.extend_from_slice(&inline);
        } else {
            let offset = data_start + data.len();
            out.extend_from_slice(&(offset as u32).to_be_bytes());
            data.extend_from_slice(&v);
            if data.len() % 2 == 1 {
                data.push(0); // keep offsets word-aligned
            }
        }
    }
    out.extend_from_slice(&0u32.to_be_bytes()); // no IFD1: no thumbnail
    out.extend_from_slice(&data);
    Some(out)
}

/// Reads the ASCII tags of IFD0 back (tag → string); used by tests and diagnostics.
pub fn ascii_tags(tiff: &[u8]) -> Vec<(u16, String)> {
    let Some((order, ifd0)) = tiff_header(tiff) else {
        return Vec::new();
    };
    ifd_entries(tiff, order, ifd0)
        .filter(|e| e.1 == TYPE_ASCII)
        .filter_map(|(tag, _, count, at)| {
            let count = count as usize;
            let start = if count <= 4 { at } else { order.u32(tiff, at)? as usize };
            let raw = tiff.get(start..start.checked_add(count)?)?;
            let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
            Some((tag, String::from_utf8_lossy(raw).into_owned()))
        })
        .collect()
}

/// All tag numbers of IFD0 (tests check that nothing but the rights tags is present).
pub fn ifd0_tags(tiff: &[u8]) -> Vec<u16> {
    let Some((order, ifd0)) = tiff_header(tiff) else {
        return Vec::new();
    };
    ifd_entries(tiff, order, ifd0).map(|e| e.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff_with_orientation(order: ByteOrder, value: u16) -> Vec<u8> {
        let mut t = Vec::new();
        match order {
            ByteOrder::Little => {
                t.extend_from_slice(b"II\x2a\0");
                t.extend_from_slice(&8u32.to_le_bytes());
                t.extend_from_slice(&1u16.to_le_bytes());
                t.extend_from_slice(&TAG_ORIENTATION.to_le_bytes());
                t.extend_from_slice(&TYPE_SHORT.to_le_bytes());
                t.extend_from_slice(&1u32.to_le_bytes());
                t.extend_from_slice(&value.to_le_bytes());
                t.extend_from_slice(&[0, 0]);
                t.extend_from_slice(&0u32.to_le_bytes());
            }
            ByteOrder::Big => {
                t.extend_from_slice(b"MM\0\x2a");
                t.extend_from_slice(&8u32.to_be_bytes());
                t.extend_from_slice(&1u16.to_be_bytes());
                t.extend_from_slice(&TAG_ORIENTATION.to_be_bytes());
                t.extend_from_slice(&TYPE_SHORT.to_be_bytes());
                t.extend_from_slice(&1u32.to_be_bytes());
                t.extend_from_slice(&value.to_be_bytes());
                t.extend_from_slice(&[0, 0]);
                t.extend_from_slice(&0u32.to_be_bytes());
            }
        }
        t
    }

    #[test]
    fn reads_orientation_in_both_byte_orders() {
        for v in 1..=8u16 {
            assert_eq!(
                orientation_from_tiff(&tiff_with_orientation(ByteOrder::Little, v)),
                v as u8
            );
            assert_eq!(orientation_from_tiff(&tiff_with_orientation(ByteOrder::Big, v)), v as u8);
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend(tiff_with_orientation(ByteOrder::Big, v));
            assert_eq!(orientation_from_exif(&app1), v as u8);
        }
    }

    #[test]
    fn invalid_orientation_and_garbage_mean_upright() {
        assert_eq!(orientation_from_tiff(&tiff_with_orientation(ByteOrder::Little, 0)), 1);
        assert_eq!(orientation_from_tiff(&tiff_with_orientation(ByteOrder::Little, 9)), 1);
        assert_eq!(orientation_from_tiff(b""), 1);
        assert_eq!(orientation_from_tiff(b"II\x2a\0\xff\xff\xff\xff"), 1);
        let mut t = tiff_with_orientation(ByteOrder::Big, 6);
        t.truncate(20);
        assert_eq!(orientation_from_tiff(&t), 1);
        // A huge declared entry count must not loop beyond the data.
        let mut t = tiff_with_orientation(ByteOrder::Little, 3);
        t[8] = 0xff;
        t[9] = 0xff;
        assert_eq!(orientation_from_tiff(&t), 3);
    }

    #[test]
    fn rights_block_round_trips_and_holds_nothing_else() {
        let t = rights_tiff("Zoë Example", "Harbour at dusk, No. 3").expect("block");
        let tags = ascii_tags(&t);
        assert_eq!(
            tags,
            vec![
                (TAG_IMAGE_DESCRIPTION, "Harbour at dusk, No. 3".to_string()),
                (TAG_ARTIST, "Zoë Example".to_string()),
                (TAG_COPYRIGHT, "© Zoë Example. All rights reserved.".to_string()),
            ]
        );
        assert_eq!(ifd0_tags(&t), vec![TAG_IMAGE_DESCRIPTION, TAG_ARTIST, TAG_COPYRIGHT]);
        assert_eq!(orientation_from_tiff(&t), 1);
    }

    #[test]
    fn rights_block_cleans_values() {
        assert!(rights_tiff("  ", "").is_none());
        let t = rights_tiff("A\0B\nC", "").expect("block");
        assert_eq!(ascii_tags(&t)[0], (TAG_ARTIST, "A B C".to_string()));
        let long = "é".repeat(5000);
        let t = rights_tiff("", &long).expect("block");
        let title = &ascii_tags(&t)[0].1;
        assert!(title.len() <= MAX_TAG_BYTES && title.chars().all(|c| c == 'é'));
        // Short values are stored inline in the entry.
        let t = rights_tiff("", "Abc").expect("block");
        assert_eq!(ascii_tags(&t), vec![(TAG_IMAGE_DESCRIPTION, "Abc".to_string())]);
    }
}
