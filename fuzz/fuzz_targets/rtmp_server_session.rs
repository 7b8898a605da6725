//! cargo-fuzz target `rtmp_server_session`: see `fuzz/drivers/rtmp_server.rs`.
#![no_main]

#[path = "../drivers/rtmp_server.rs"]
mod rtmp_server;

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtmp_server::drive_server(data));
