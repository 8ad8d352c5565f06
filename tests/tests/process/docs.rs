//! Every binary generates its shell completions and its man page from its own flags
//! (`completions SHELL`, `man`), and refuses bad log settings at start with one line.

use std::process::Command;

use kanband_tests::daemon;

const BINARIES: [&str; 3] = ["kanband", "kanband-gateway", "kanbanctl"];

fn run(binary: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(daemon::workspace_bin(binary))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_for_each_shell_name_the_binary_and_its_flags() {
    for binary in BINARIES {
        for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
            let (ok, out, err) = run(binary, &["completions", shell]);
            assert!(ok, "{binary} completions {shell}: {err}");
            assert!(out.contains(binary), "{binary} completions {shell}");
            assert!(
                out.contains("--help"),
                "{binary} completions {shell} lists flags"
            );
        }
    }
    let (_, bash, _) = run("kanband", &["completions", "bash"]);
    assert!(
        bash.contains("--log-format") && bash.contains("--data-dir"),
        "{bash}"
    );
    let (_, bash, _) = run("kanbanctl", &["completions", "bash"]);
    assert!(
        bash.contains("reclaim") && bash.contains("--addr"),
        "kanbanctl's verbs"
    );
}

#[test]
fn man_pages_are_roff_with_name_synopsis_and_options() {
    for binary in BINARIES {
        let (ok, out, err) = run(binary, &["man"]);
        assert!(ok, "{binary} man: {err}");
        assert!(out.contains(&format!(".TH {binary} 1")), "{binary}: {out}");
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS"] {
            assert!(out.contains(section), "{binary} man has {section}");
        }
    }
    let (_, man, _) = run("kanband", &["man"]);
    assert!(
        man.contains(r"\fB\-\-log\-format\fR"),
        "kanband's man page has --log-format"
    );
}

#[test]
fn a_bad_log_filter_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data").display().to_string();
    for (binary, var, args) in [
        (
            "kanband",
            "KANBAND_LOG",
            ["--data-dir", data_dir.as_str(), "--http", ""],
        ),
        (
            "kanband-gateway",
            "KANBAND_GATEWAY_LOG",
            ["--profile", "p", "--command", "true"],
        ),
    ] {
        let out = Command::new(daemon::workspace_bin(binary))
            .args(args)
            .env(var, "kanband=loud")
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{binary}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{binary}: {err}");
        assert!(
            err.contains(var) && err.contains("\"kanband=loud\""),
            "{err}"
        );
        assert!(!err.contains("backtrace"), "{err}");
        let (help_ok, help, _) = run(binary, &["--help"]);
        assert!(help_ok && help.contains(var), "{binary} --help names {var}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "kanband stopped before touching its data directory"
    );
}
