//! Compiles hls.js (the dashboard's player) and uPlot (its charts) into the binary, so an index
//! behind a firewall serves a working dashboard with no CDN. Both come from the npm registry,
//! pinned with their integrity hashes by `player/package-lock.json`, and are installed with
//! `npm ci` into the build directory (never into the source tree). `FERROCAST_HLS_JS=/path/to/
//! hls.min.js` and `FERROCAST_UPLOT_DIR=/path/to/uplot/dist` use files instead (offline builds).
//! Without npm the binary still builds: the dashboard then says its player and charts are missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const LOCK: &str = "player/package-lock.json";
const MANIFEST: &str = "player/package.json";

/// (file written to OUT_DIR, its path in the npm package, the variable that overrides it).
const FILES: [(&str, &str, &str); 3] = [
    ("hls.min.js", "hls.js/dist/hls.min.js", "FERROCAST_HLS_JS"),
    ("uplot.min.js", "uplot/dist/uPlot.iife.min.js", "FERROCAST_UPLOT_DIR"),
    ("uplot.min.css", "uplot/dist/uPlot.min.css", "FERROCAST_UPLOT_DIR"),
];

fn main() {
    println!("cargo:rerun-if-changed={LOCK}");
    println!("cargo:rerun-if-changed={MANIFEST}");
    println!("cargo:rerun-if-env-changed=FERROCAST_HLS_JS");
    println!("cargo:rerun-if-env-changed=FERROCAST_UPLOT_DIR");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut installed = None;
    for (name, in_package, var) in FILES {
        let file = match (env::var_os(var), var) {
            (Some(path), "FERROCAST_HLS_JS") => {
                fs::read(&path).map_err(|e| format!("{var}={}: {e}", Path::new(&path).display()))
            }
            (Some(dir), _) => {
                let path = Path::new(&dir).join(Path::new(in_package).file_name().expect("a file name"));
                fs::read(&path).map_err(|e| format!("{var}: {}: {e}", path.display()))
            }
            (None, _) => {
                let dir = out.join("player");
                installed.get_or_insert_with(|| install(&dir)).clone().and_then(|()| {
                    fs::read(dir.join("node_modules").join(in_package)).map_err(|e| format!("{in_package}: {e}"))
                })
            }
        };
        let bytes = file.unwrap_or_else(|why| {
            println!("cargo:warning=the dashboard's {name} is left out of this build: {why}");
            Vec::new()
        });
        fs::write(out.join(name), bytes).expect("OUT_DIR is writable");
    }
}

/// Runs `npm ci` in `dir` with the pinned lock file, unless the same lock was installed there
/// before.
fn install(dir: &Path) -> Result<(), String> {
    let lock = fs::read(LOCK).map_err(|e| format!("{LOCK}: {e}"))?;
    let stamp = dir.join("installed-package-lock.json");
    let complete = FILES.iter().all(|(_, in_package, _)| dir.join("node_modules").join(in_package).is_file());
    if fs::read(&stamp).ok().as_deref() != Some(&lock[..]) || !complete {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        fs::copy(MANIFEST, dir.join("package.json")).map_err(|e| format!("{MANIFEST}: {e}"))?;
        fs::write(dir.join("package-lock.json"), &lock).map_err(|e| format!("{}: {e}", dir.display()))?;
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .status()
            .map_err(|e| format!("cannot run npm ({e}); install Node.js and npm, or set FERROCAST_HLS_JS"))?;
        if !status.success() {
            return Err(format!("`npm ci` in {} failed ({status})", dir.display()));
        }
        fs::write(&stamp, &lock).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    Ok(())
}
