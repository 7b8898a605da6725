//! cargo-fuzz target `hook_answer`: see `fuzz/drivers/hook_answer.rs`.
#![no_main]

#[path = "../drivers/hook_answer.rs"]
mod hook_answer;

libfuzzer_sys::fuzz_target!(|data: &[u8]| hook_answer::drive_hook_answer(data));
