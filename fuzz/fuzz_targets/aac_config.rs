//! cargo-fuzz target `aac_config`: see `fuzz/drivers/media.rs`.
#![no_main]

#[path = "../drivers/media.rs"]
mod media;

libfuzzer_sys::fuzz_target!(|data: &[u8]| media::aac_config(data));
