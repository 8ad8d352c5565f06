//! The files in `deploy/` are real: systemd accepts both units as written (with `ExecStart`
//! pointed at the binaries this build made), and the binaries they start take the flags the
//! units give them.

use std::{path::Path, process::Command};

use kanband_tests::daemon;

/// The repository's `deploy/` directory.
fn deploy_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// `systemd-analyze verify` of `unit` with its binaries taken from this build; the
/// analyzer's complaints, or `None` where the machine has no systemd-analyze.
fn verify(unit: &str) -> Option<String> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed here: {unit} not verified");
        return None;
    }
    let text = std::fs::read_to_string(deploy_dir().join(unit)).expect("read the unit");
    let bin = daemon::bin_dir().display().to_string();
    let local = text.replace("/usr/local/bin/", &format!("{bin}/"));
    assert_ne!(local, text, "{unit} starts nothing from /usr/local/bin");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(unit);
    std::fs::write(&path, local).expect("write the unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || !said.is_empty(),
        "verify failed silently"
    );
    Some(if out.status.success() {
        said
    } else {
        format!("exit {}: {said}", out.status)
    })
}

#[test]
fn systemd_accepts_the_units_without_a_word() {
    for unit in ["kanband.service", "kanband-gateway.service"] {
        if let Some(complaints) = verify(unit) {
            assert_eq!(complaints.trim(), "", "{unit}");
        }
    }
}

#[test]
fn a_unit_systemd_would_complain_about_is_caught() {
    // The check above can fail: an unknown key is reported.
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = dir.path().join("broken.service");
    std::fs::write(&unit, "[Service]\nExecStart=/bin/true\nNoSuchSetting=yes\n").expect("write");
    let Ok(out) = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
    else {
        eprintln!("systemd-analyze is not installed here");
        return;
    };
    assert!(String::from_utf8_lossy(&out.stderr).contains("NoSuchSetting"));
}

#[test]
fn the_units_start_the_binaries_with_flags_they_take() {
    let units = std::fs::read_to_string(deploy_dir().join("kanband.service")).expect("read");
    let exec = units
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/kanband "))
        .expect("kanband's ExecStart");
    let mut help = Command::new(daemon::kanband_bin());
    help.args(exec.split_whitespace().take(1)).arg("--help");
    let out = help.output().expect("kanband serve --help");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in exec.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(text.contains(flag), "kanband serve has no {flag}");
    }
    let gateway =
        std::fs::read_to_string(deploy_dir().join("kanband-gateway.service")).expect("read");
    let out = Command::new(daemon::workspace_bin("kanband-gateway"))
        .arg("--help")
        .output()
        .expect("kanband-gateway --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for var in gateway
        .lines()
        .filter_map(|l| l.trim_start_matches("#   ").split_once('='))
        .map(|(name, _)| name.trim_start_matches("Environment="))
        .filter(|name| name.starts_with("KANBAN_"))
    {
        assert!(text.contains(var), "kanband-gateway --help names no {var}");
    }
}
