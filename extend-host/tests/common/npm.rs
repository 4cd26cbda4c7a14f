//! npm tools the tests run for real (wt-cli, typescript), each installed
//! once into `target/{dir}` (npm must be on PATH; `.ci/run` installs them
//! the same way before the tests). Shared by the host's tests and the
//! cross-crate tests, which include this file by path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The executable `bin` of the npm `package` (`name@version`), installed
/// into `target/{dir}` first when missing. `manifest_dir` is the calling
/// crate's `CARGO_MANIFEST_DIR`, one level below the workspace.
pub fn tool(manifest_dir: &str, dir: &str, package: &str, bin: &str) -> PathBuf {
    let prefix = Path::new(manifest_dir).join("../target").join(dir);
    let exe = prefix.join("node_modules/.bin").join(bin);
    if !exe.exists() {
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(package)
            .status()
            .unwrap_or_else(|e| panic!("npm is needed to install {package} for this test: {e}"));
        assert!(status.success(), "npm install {package} failed");
    }
    exe
}
