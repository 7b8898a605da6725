//! cargo-fuzz target `hevc_config`: see `fuzz/drivers/media.rs`.
#![no_main]

#[path = "../drivers/media.rs"]
mod media;

libfuzzer_sys::fuzz_target!(|data: &[u8]| media::hevc_config(data));
