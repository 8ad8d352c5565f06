//! Real Hermes Agent 0.19 boards for the import tests.
//!
//! Hermes's `hermes_cli/kanban_db.py` needs only Python's standard library, so the
//! hermes-agent 0.19.0 wheel from PyPI, unpacked, is enough to run it: [`wheel`] downloads it
//! once into the target directory (`hermes-wheel/`, with `pip download --no-deps`) and every
//! later test reuses it. The scripts under `tests/hermes/` then build boards through Hermes's
//! own code.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

use crate::daemon::bin_dir;

/// The Hermes Agent release whose boards are imported.
pub const HERMES_VERSION: &str = "0.19.0";

/// The Python interpreter: `$PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The directory holding the unpacked wheel (`hermes_cli/` inside), downloading it first if
/// this target directory has none yet.
pub fn wheel() -> PathBuf {
    static ONCE: Mutex<()> = Mutex::new(());
    let _one = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let target = bin_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .join("hermes-wheel");
    let unpacked = target.join(format!("hermes-agent-{HERMES_VERSION}"));
    if unpacked.join("hermes_cli/kanban_db.py").is_file() {
        return unpacked;
    }
    // Downloaded and unpacked beside, then renamed into place: a concurrent test process sees
    // either nothing or the whole wheel.
    let staging = target.join(format!("staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).expect("create the wheel's staging directory");
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(format!("hermes-agent=={HERMES_VERSION}"))
        .arg("-d")
        .arg(&staging)
        .status()
        .expect("run pip download");
    assert!(
        status.success(),
        "pip download hermes-agent=={HERMES_VERSION} failed"
    );
    let status = Command::new(python())
        .args([
            "-c",
            "import glob, sys, zipfile; \
             zipfile.ZipFile(glob.glob(sys.argv[1] + '/*.whl')[0]).extractall(sys.argv[2])",
        ])
        .arg(&staging)
        .arg(staging.join("unpacked"))
        .status()
        .expect("unpack the wheel");
    assert!(status.success(), "unpacking the hermes-agent wheel failed");
    if std::fs::rename(staging.join("unpacked"), &unpacked).is_err() {
        assert!(
            unpacked.join("hermes_cli/kanban_db.py").is_file(),
            "{} could not be put in place",
            unpacked.display()
        );
    }
    let _ = std::fs::remove_dir_all(&staging);
    unpacked
}

/// A script of `tests/hermes/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hermes")
        .join(name)
}

/// Runs `tests/hermes/make_boards.py`: a Hermes root at `root` with every feature an import
/// must carry, built by Hermes's own code; returns what Hermes stored (see the script).
pub fn make_boards(root: &Path) -> serde_json::Value {
    let output = Command::new(python())
        .arg(script("make_boards.py"))
        .arg(root)
        .arg(wheel())
        .output()
        .expect("run make_boards.py");
    assert!(
        output.status.success(),
        "make_boards.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("make_boards.py prints JSON")
}
