//! Replays the fuzzing campaign's inputs for the RTMP parsers (`fuzz/` at the repo root): every
//! input a fuzzer once crashed on (`fuzz/regressions/<target>/`) and every seed, through the same
//! drivers the cargo-fuzz targets run, plus a short proptest run so the drivers cannot rot.

#[path = "../../../fuzz/drivers/amf0.rs"]
mod amf0;
#[path = "../../../fuzz/drivers/inputs.rs"]
mod inputs;
#[path = "../../../fuzz/drivers/rtmp_client.rs"]
mod rtmp_client;
#[path = "../../../fuzz/drivers/rtmp_server.rs"]
mod rtmp_server;

use proptest::prelude::*;

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn server_session_regressions() {
    inputs::replay(&repo(), "rtmp_server_session", rtmp_server::drive_server);
}

#[test]
fn client_session_regressions() {
    inputs::replay(&repo(), "rtmp_client_session", rtmp_client::drive_client);
}

#[test]
fn amf0_regressions() {
    inputs::replay(&repo(), "amf0_decode", amf0::drive_amf0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn client_driver_never_panics(data in prop::collection::vec(any::<u8>(), 0..4000)) {
        rtmp_client::drive_client(&data);
    }

    #[test]
    fn amf0_driver_never_panics(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        amf0::drive_amf0(&data);
    }
}
