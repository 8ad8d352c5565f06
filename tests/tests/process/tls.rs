//! The real `kanband` binary with TLS and the listening rules: a non-loopback `--listen` is
//! refused without TLS (unless the named insecure flag, which warns), accepted with it; a
//! `kanband-gateway` holds its claim over TLS across a kanband restart; and another uid on the
//! Unix socket is refused.

use std::{os::unix::fs::PermissionsExt as _, path::Path, process::Stdio};

use kanband_proto::pb;
use kanband_tests::{
    calls::status_in,
    daemon::{Daemon, Gateway, PATIENCE, data_dir, workspace_bin},
    pki::Pki,
};
use tokio::time::timeout;

use crate::support::{detail, eventually, refused_start, shared};

fn tls_args<'a>(cert: &'a str, key: &'a str) -> [&'a str; 4] {
    ["--tls-cert", cert, "--tls-key", key]
}

#[tokio::test]
async fn a_non_loopback_listen_needs_tls_or_the_named_insecure_flag() {
    let _machine = shared().await;
    let (dir, data) = data_dir();

    let said = refused_start(&data, &["--listen", "0.0.0.0:0"]).await;
    for flag in ["--tls-cert", "--tls-key", "--insecure-listen-without-tls"] {
        assert!(said.contains(flag), "names {flag}: {said}");
    }
    assert!(!data.exists(), "a refused start creates no data directory");
    // The board's listener obeys the same rule.
    let said = refused_start(&data, &["--http", "0.0.0.0:0"]).await;
    assert!(said.contains("--insecure-listen-without-tls"), "{said}");

    let insecure = Daemon::start_with(
        &data,
        &["--listen", "0.0.0.0:0", "--insecure-listen-without-tls"],
    )
    .await;
    assert!(
        insecure.tcp_addr.starts_with("http://0.0.0.0:"),
        "{}",
        insecure.tcp_addr
    );
    let log = insecure.stderr.lock().unwrap().clone();
    assert!(
        log.contains("WARN") && log.contains("without TLS"),
        "warns at start: {log}"
    );
    insecure.terminate().await;

    let pki = Pki::new(&dir.path().join("pki"), "test");
    let server = pki.server();
    let (cert, key) = (server.cert.to_str().unwrap(), server.key.to_str().unwrap());
    let mut args = vec!["--listen", "0.0.0.0:0"];
    args.extend(tls_args(cert, key));
    let secure = Daemon::start_with(&data, &args).await;
    assert!(
        secure.tcp_addr.starts_with("https://0.0.0.0:"),
        "{}",
        secure.tcp_addr
    );
    let log = secure.stderr.lock().unwrap().clone();
    assert!(!log.contains("without TLS"), "no warning with TLS: {log}");
    secure.terminate().await;

    // Bad TLS files: one line naming the file, nothing started.
    let other = Pki::new(&dir.path().join("pki"), "other").server();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let wrong_key = other.key.to_str().unwrap();
    for (args, names) in [
        (tls_args(missing, key), missing),
        (tls_args(garbage, key), garbage),
        (tls_args(cert, garbage), garbage),
        (tls_args(cert, wrong_key), wrong_key),
    ] {
        let said = refused_start(&data, &args).await;
        assert!(said.contains(names), "names {names}: {said}");
        assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    }
}

#[tokio::test]
async fn a_gateway_holds_its_claim_over_tls_across_a_kanband_restart() {
    let _machine = shared().await;
    let (dir, data) = data_dir();
    let pki = Pki::new(&dir.path().join("pki"), "test");
    let server = pki.server();
    // A fixed port, so the supervisor finds kanband again after the restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["--listen", listen.as_str()];
    args.extend(tls_args(
        server.cert.to_str().unwrap(),
        server.key.to_str().unwrap(),
    ));
    let daemon = Daemon::start_with(&data, &args).await;
    let addr = format!("https://{listen}");
    assert_eq!(daemon.tcp_addr, addr);

    let mut admin = daemon.client().await;
    let supervisor = admin
        .admin
        .create_token(pb::CreateTokenRequest {
            name: "remote-gw".into(),
            role: "supervisor".into(),
            machine_id: "gw-tls".into(),
            profiles: vec![],
            ..Default::default()
        })
        .await
        .expect("a supervisor token")
        .into_inner()
        .secret;
    let ca = pki.ca();
    let workspaces = dir.path().join("workspaces");
    // The worker's kanbanctl reaches kanband over TLS too, with the CA the supervisor passes.
    let script = "touch \"$KANBAN_WORKSPACE/started\"; \
                  while [ ! -e \"$KANBAN_WORKSPACE/go\" ]; do sleep 0.05; done; \
                  kanbanctl complete --summary 'over TLS across a restart'";
    let gateway = Gateway::start(
        &addr,
        "p",
        script,
        &workspaces,
        &[
            "--ca",
            ca.to_str().unwrap(),
            "--token",
            &supervisor,
            "--machine-id",
            "gw-tls",
            "--ttl-ms",
            "10000",
        ],
    )
    .await;
    let task = kanband_tests::calls::create_with(
        &mut admin,
        pb::CreateTaskRequest {
            title: "survive".into(),
            assignee: "p".into(),
            ..Default::default()
        },
    )
    .await
    .task
    .expect("the new task");
    let workspace = workspaces.join(&task.id);
    let until = async |daemon: &Daemon, what: &str, check: &dyn Fn(&pb::TaskDetail) -> bool| {
        let mut client = daemon.client().await;
        eventually(what, PATIENCE, String::new, async || {
            let detail = detail(&mut client, &task.id).await;
            if check(&detail) {
                Ok(detail)
            } else {
                Err(format!("{detail:?}"))
            }
        })
        .await
    };
    until(&daemon, "running", &|d| {
        status_in(d) == pb::TaskStatus::Running && workspace.join("started").exists()
    })
    .await;

    daemon.terminate().await;
    let daemon = Daemon::start_with(&data, &args).await;
    std::fs::write(workspace.join("go"), "").unwrap();
    let done = until(&daemon, "done", &|d| status_in(d) == pb::TaskStatus::Done).await;
    assert_eq!(done.task.unwrap().summary, "over TLS across a restart");
    assert_eq!(done.runs.len(), 1, "the same claim, never re-granted");
    let mut gateway = gateway;
    assert!(
        gateway.child.try_wait().unwrap().is_none(),
        "the supervisor is still running; stderr:\n{}",
        gateway.stderr.lock().unwrap()
    );
}

/// Runs `kanbanctl --addr ADDR stats` as uid and gid 65534 (nobody).
async fn kanbanctl_as_nobody(addr: &str) -> (i32, String) {
    let output = timeout(
        PATIENCE,
        tokio::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(workspace_bin("kanbanctl"))
            .args(["--addr", addr, "stats"])
            .env_remove("KANBAN_TOKEN")
            .env_remove("KANBAN_TOKEN_FILE")
            .env_remove("KANBAN_CLAIM_TOKEN")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("kanbanctl finishes in time")
    .expect("run setpriv");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn another_uid_on_the_unix_socket_is_refused_and_the_owner_is_not() {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the process's effective uid.
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        println!("skipped: needs root to run a client as another uid");
        return;
    }
    if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    let _machine = shared().await;
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let socket = daemon.unix_addr.strip_prefix("unix:").unwrap().to_owned();

    // Default modes (socket 0600 in a 0700 directory): nobody cannot even connect.
    let (code, said) = kanbanctl_as_nobody(&daemon.unix_addr).await;
    assert_eq!(code, 5, "unreachable: {said}");
    assert!(said.to_lowercase().contains("permission denied"), "{said}");

    // Opened up, the connection is made, and SO_PEERCRED tells the caller is not the owner.
    for (path, mode) in [
        (dir.path(), 0o711),
        (data.as_path(), 0o711),
        (Path::new(&socket), 0o666),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (code, said) = kanbanctl_as_nobody(&daemon.unix_addr).await;
    assert_eq!(code, 6, "refused as not allowed: {said}");
    assert!(said.contains("token refused (UNAUTHENTICATED)"), "{said}");

    // The owner over the same socket is the admin without a token.
    let mut owner = daemon.client().await;
    owner
        .admin
        .stats(pb::StatsRequest::default())
        .await
        .expect("the owner's uid is admin on the socket");
    daemon.terminate().await;
}
