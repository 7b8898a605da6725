//! cargo-fuzz target `rtmp_client_session`: see `fuzz/drivers/rtmp_client.rs`.
#![no_main]

#[path = "../drivers/rtmp_client.rs"]
mod rtmp_client;

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtmp_client::drive_client(data));
