//! `fuzz_targets::backup_stream` under libFuzzer (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::backup_stream(data));
