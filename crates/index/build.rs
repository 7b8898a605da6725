//! Compiles hls.js into the binary for the dashboard's player, so an index behind a firewall serves
//! a working player with no CDN. hls.js comes from the npm registry, pinned with its integrity hash
//! by `player/package-lock.json`, and is installed with `npm ci` into the build directory (never
//! into the source tree). `FERROCAST_HLS_JS=/path/to/hls.min.js` uses a file instead (offline
//! builds). Without npm the binary still builds: the dashboard then says its player is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const LOCK: &str = "player/package-lock.json";
const MANIFEST: &str = "player/package.json";

fn main() {
    println!("cargo:rerun-if-changed={LOCK}");
    println!("cargo:rerun-if-changed={MANIFEST}");
    println!("cargo:rerun-if-env-changed=FERROCAST_HLS_JS");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("hls.min.js");
    let script = match env::var_os("FERROCAST_HLS_JS") {
        Some(path) => fs::read(&path).map_err(|e| format!("FERROCAST_HLS_JS={}: {e}", Path::new(&path).display())),
        None => install(&out.join("player")),
    };
    let bytes = script.unwrap_or_else(|why| {
        println!("cargo:warning=the dashboard's player is left out of this build: {why}");
        Vec::new()
    });
    fs::write(&dest, bytes).expect("OUT_DIR is writable");
}

/// Runs `npm ci` in `dir` with the pinned lock file, unless the same lock was installed there
/// before, and returns hls.js's minified build.
fn install(dir: &Path) -> Result<Vec<u8>, String> {
    let lock = fs::read(LOCK).map_err(|e| format!("{LOCK}: {e}"))?;
    let stamp = dir.join("installed-package-lock.json");
    let script = dir.join("node_modules/hls.js/dist/hls.min.js");
    if fs::read(&stamp).ok().as_deref() != Some(&lock[..]) || !script.is_file() {
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
    fs::read(&script).map_err(|e| format!("{}: {e}", script.display()))
}
