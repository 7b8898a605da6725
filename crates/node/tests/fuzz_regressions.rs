//! Replays the fuzzing campaign's inputs for the hook answer parser (`fuzz/` at the repo root):
//! every input a fuzzer once crashed on (`fuzz/regressions/hook_answer/`) and every seed, through
//! the driver the cargo-fuzz target runs, plus answers real backends give.

#[path = "../../../fuzz/drivers/hook_answer.rs"]
mod hook_answer;
#[path = "../../../fuzz/drivers/inputs.rs"]
mod inputs;

#[test]
fn hook_answer_regressions() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    inputs::replay(&repo, "hook_answer", hook_answer::drive_hook_answer);
    for body in ["0", "{\"code\":0}", "{\"code\":0,\"data\":{\"urls\":[\"rtmp://b/live/x\",\"\"]}}", "{\"code\":1}"] {
        let mut input = 200u16.to_be_bytes().to_vec();
        input.extend_from_slice(body.as_bytes());
        hook_answer::drive_hook_answer(&input);
    }
}
