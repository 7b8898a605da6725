//! The campaign's committed inputs for one target, for the crates' regression tests: every input
//! a fuzzer once crashed on (`fuzz/regressions/<target>/`) and every seed (`fuzz/seeds/<target>/`).

use std::path::{Path, PathBuf};

/// The files of `fuzz/regressions/{target}` and `fuzz/seeds/{target}` (none is fine), given the
/// repo root relative to the calling crate (`env!("CARGO_MANIFEST_DIR")/../..`).
pub fn inputs(repo: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(repo.join("fuzz").join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path, bytes));
        }
    }
    out
}

/// Runs `driver` on every committed input of `target`, naming each on stderr so a failure
/// says which file.
pub fn replay(repo: &Path, target: &str, driver: impl Fn(&[u8])) {
    for (path, data) in inputs(repo, target) {
        eprintln!("replaying {}", path.display());
        driver(&data);
    }
}
