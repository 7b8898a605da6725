//! cargo-fuzz target `av1_config`: see `fuzz/drivers/media.rs`.
#![no_main]

#[path = "../drivers/media.rs"]
mod media;

libfuzzer_sys::fuzz_target!(|data: &[u8]| media::av1_config(data));
