//! cargo-fuzz target `srs_api`: see `fuzz/drivers/srs_api.rs`.
#![no_main]

#[path = "../drivers/srs_api.rs"]
mod srs_api;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    srs_api::drive_srs_api(data);
});
