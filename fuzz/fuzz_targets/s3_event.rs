//! `fuzz_targets::s3_event` under libFuzzer (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::s3_event(data));
