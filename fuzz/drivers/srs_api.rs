//! The SRS HTTP API JSON the index reads from every node it polls, through the whole read path:
//! parse, node report, directory merge, and everything served from the directory. The function
//! lives in the index (`ferrocast_index::fuzzing`, feature `test-support`) because the path is
//! crate-private; this driver is what the cargo-fuzz target `srs_api` and
//! `crates/index/tests/fuzz_regressions.rs` call.

/// Returns how many streams the directory lists.
pub fn drive_srs_api(data: &[u8]) -> usize {
    ferrocast_index::fuzzing::poll_answers_to_directory(data)
}
