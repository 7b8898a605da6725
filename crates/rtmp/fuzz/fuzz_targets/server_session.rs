//! cargo-fuzz target: arbitrary bytes, in arbitrary splits, into a ServerSession.
#![no_main]

mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::drive_server(data));
