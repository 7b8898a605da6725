//! cargo-fuzz target `dns_query`: see `fuzz/drivers/dns_query.rs`.
#![no_main]

#[path = "../drivers/dns_query.rs"]
mod dns_query;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dns_query::drive_dns_query(data);
});
