//! The whole rendition pipeline on arbitrary bytes, with small limits so that each run stays
//! fast: an answer (renditions or a refusal) every time, never a panic or runaway memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

use image_processor::imaging;

fuzz_target!(|data: &[u8]| {
    let limits = imaging::Limits { max_pixels: 1_000_000, max_edge: 4_000, max_bytes: Some(1 << 20) };
    let rights = imaging::Rights { artist: "Fuzz".into(), title: "Target".into() };
    match imaging::render_with_threads(data, &limits, &rights, 1) {
        Ok(renditions) => {
            assert!(!renditions.is_empty());
            for r in renditions {
                assert!(r.width >= 1 && r.height >= 1 && r.width.max(r.height) <= r.long_edge);
                assert!(!r.bytes.is_empty());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
