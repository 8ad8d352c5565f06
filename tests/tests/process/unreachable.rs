//! A `kanband-gateway` started before kanband: it says once, at warn, that kanband is
//! unreachable and what to do (each further attempt only at debug), and once kanband starts on
//! that socket it connects and says so.

use std::process::Stdio;

use kanband_tests::daemon::{Daemon, PATIENCE, collect, data_dir, workspace_bin};
use tokio::process::Command;

use crate::support::{eventually, shared};

/// How many lines of `text` contain `phrase`.
fn count(text: &str, phrase: &str) -> usize {
    text.lines().filter(|line| line.contains(phrase)).count()
}

#[tokio::test]
async fn the_gateway_warns_once_per_outage_and_says_when_kanband_is_back() {
    let _machine = shared().await;
    let (dir, data) = data_dir();
    let socket = data.join("kanband.sock");
    let mut gateway = Command::new(workspace_bin("kanband-gateway"))
        .arg("--addr")
        .arg(&socket) // a bare path: the same as unix:PATH
        .args(["--profile", "p", "--command", "true", "--workspaces"])
        .arg(dir.path().join("workspaces"))
        .env("KANBAND_GATEWAY_LOG", "warn,kanband_gateway=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn kanband-gateway");
    let stderr = collect(gateway.stderr.take().expect("stderr"));
    let log = || stderr.lock().expect("buffer").clone();

    eventually("three attempts in the outage", PATIENCE, log, async || {
        let text = log();
        (count(&text, "kanband still unreachable, retrying") >= 3)
            .then_some(())
            .ok_or(text)
    })
    .await;
    let text = log();
    let warned: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("kanband unreachable, retrying"))
        .collect();
    assert_eq!(warned.len(), 1, "one warning per outage:\n{text}");
    assert!(
        warned[0].contains("WARN")
            && warned[0].contains("no socket file at")
            && warned[0].contains("is kanband running? start it with `kanband`"),
        "the warning says what happened and what to do: {}",
        warned[0]
    );
    let _daemon = Daemon::start(&data).await;
    eventually("the gateway is back", PATIENCE, log, async || {
        let text = log();
        (count(&text, "kanband reachable again") == 1)
            .then_some(())
            .ok_or(text)
    })
    .await;
    assert_eq!(count(&log(), "kanband unreachable, retrying"), 1);
}
