//! Replays the fuzzing campaign's inputs for the media parsers (`fuzz/` at the repo root): every
//! input a fuzzer once crashed on (`fuzz/regressions/<target>/`) and every seed, through the same
//! drivers the cargo-fuzz targets run, plus a short proptest run so the drivers cannot rot.

#[path = "../../../fuzz/drivers/inputs.rs"]
mod inputs;
#[path = "../../../fuzz/drivers/media.rs"]
mod media;

use proptest::prelude::*;

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn flv_reader_regressions() {
    inputs::replay(&repo(), "flv_reader", media::flv_reader);
}

#[test]
fn codec_config_regressions() {
    inputs::replay(&repo(), "avc_config", media::avc_config);
    inputs::replay(&repo(), "hevc_config", media::hevc_config);
    inputs::replay(&repo(), "av1_config", media::av1_config);
    inputs::replay(&repo(), "aac_config", media::aac_config);
}

#[test]
fn ts_muxer_regressions() {
    inputs::replay(&repo(), "ts_muxer", media::ts_muxer);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn drivers_never_panic(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        media::flv_reader(&data);
        media::avc_config(&data);
        media::hevc_config(&data);
        media::av1_config(&data);
        media::aac_config(&data);
        media::ts_muxer(&data);
    }
}
