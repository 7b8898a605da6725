//! DNS queries as the index's DNS server receives them, through its whole answer path. The
//! function lives in the index (`ferrocast_index::fuzzing::dns_query`, feature `test-support`);
//! this driver is what the cargo-fuzz target `dns_query` and
//! `crates/index/tests/fuzz_regressions.rs` call.

/// Returns the answer's record count, or None for silence.
pub fn drive_dns_query(data: &[u8]) -> Option<usize> {
    ferrocast_index::fuzzing::dns_query(data)
}
