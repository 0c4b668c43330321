//! Sniffing and header probing on arbitrary bytes: never a panic, never an allocation sized by
//! what a header declares, and a probe always agrees with the sniff.
#![no_main]

use libfuzzer_sys::fuzz_target;

use image_processor::imaging::{sniff, ImagingError};

fuzz_target!(|data: &[u8]| {
    let sniffed = sniff::sniff(data);
    match sniff::probe(data) {
        Ok(p) => {
            assert_eq!(sniffed, Ok(p.format));
            assert!((1..=8).contains(&p.orientation));
            let (w, h) = (p.display_width(), p.display_height());
            assert_eq!(u64::from(w) * u64::from(h), u64::from(p.width) * u64::from(p.height));
        }
        Err(ImagingError::Empty) => assert!(data.is_empty()),
        Err(ImagingError::UnsupportedFormat { .. }) => assert!(sniffed.is_err()),
        Err(e) => {
            assert!(sniffed.is_ok());
            assert!(e.is_permanent());
        }
    }
    // The EXIF reader on the raw bytes too (it is also reached through APP1/eXIf/EXIF).
    let o = exif::orientation_from_exif(data);
    assert!((1..=8).contains(&o));
    let _ = exif::ascii_tags(data);
});
