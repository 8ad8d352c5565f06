//! README's "First worker" quickstart, run exactly as written: the lines between its
//! `quickstart:begin` and `quickstart:end` markers go to `bash -e` in an empty directory, with
//! this workspace's binaries first on `PATH` and a fresh `HOME`, so the doc cannot drift from
//! what works.
//!
//! Only the environment differs from a user's shell: the TCP listener is off and the web board
//! takes a free port (`KANBAND_LISTEN`, `KANBAND_HTTP`), because the default ports would clash
//! with the tests running beside this one. The quickstart itself talks over the Unix socket.

use std::{path::Path, process::Stdio};

use kanband_tests::daemon::{PATIENCE, bin_dir};
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{process::Command, time::timeout};

use crate::support::shared;

const BEGIN: &str = "<!-- quickstart:begin -->";
const END: &str = "<!-- quickstart:end -->";

/// The shell lines of README's quickstart: the fenced block between the markers.
fn quickstart_lines(readme: &str) -> String {
    let start = readme
        .find(BEGIN)
        .expect("README has the quickstart:begin marker")
        + BEGIN.len();
    let end = readme[start..]
        .find(END)
        .expect("README has the quickstart:end marker after quickstart:begin")
        + start;
    let block = readme[start..end].trim();
    let body = block
        .strip_prefix("```sh")
        .and_then(|b| b.strip_suffix("```"))
        .expect("the quickstart is one ```sh block");
    body.trim().to_owned()
}

#[tokio::test]
async fn the_readme_quickstart_runs_a_task_to_done() {
    let _machine = shared().await;
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("read README.md");
    let lines = quickstart_lines(&readme);
    // Whatever the lines leave running is stopped when the script ends, however it ends.
    let script = format!("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{lines}\nwait\n");

    let home = tempfile::tempdir().expect("temp HOME");
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .args(["-e", "-c", &script])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("PATH", path)
        .env("KANBAND_LISTEN", "")
        .env("KANBAND_HTTP", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("KANBAN_") || name == "XDG_DATA_HOME" || name == "KANBAND_DATA_DIR" {
            command.env_remove(name);
        }
    }
    let child = command.spawn().expect("start bash");
    let group = Pid::from_raw(child.id().expect("pid") as i32);
    let output = timeout(PATIENCE * 2, child.wait_with_output()).await;
    // Nothing of the quickstart outlives the test, whatever happened.
    let _ = killpg(group, Signal::SIGKILL);
    let output = output
        .expect("the quickstart finishes within a minute")
        .expect("collect the quickstart's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the quickstart failed ({:?})\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(r#" done "Say hello""#) && stdout.contains(" completed "),
        "the task is shown done with a completed run:\n{stdout}"
    );
    assert!(
        stdout.contains("hello from t_"),
        "the worker's summary is on the task:\n{stdout}"
    );
}

#[test]
fn the_quickstart_block_is_found_between_its_markers() {
    let readme = format!("intro\n{BEGIN}\n```sh\necho one\necho two\n```\n{END}\nrest");
    assert_eq!(quickstart_lines(&readme), "echo one\necho two");
}
