//! cargo-fuzz target `amf0_decode`: see `fuzz/drivers/amf0.rs`.
#![no_main]

#[path = "../drivers/amf0.rs"]
mod amf0;

libfuzzer_sys::fuzz_target!(|data: &[u8]| amf0::drive_amf0(data));
