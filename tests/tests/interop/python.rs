//! Interop with a real Python gRPC client (grpcio, stubs generated from proto/ at test time by
//! grpcio-tools): health through grpcio-health-checking, a session kept alive over the
//! bidirectional stream, acquire, complete, a retried completion answered as already recorded,
//! and a different later outcome refused with the reason read from the trailers. Run over TCP and over the Unix socket. `scripts/test` installs the packages.

use std::process::Command;

use kanband_tests::spawn_service;

fn run_python_client(addr: &str, token: Option<&str>) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python_client.py");
    let mut command = Command::new("python3");
    command.env_remove("KANBAN_TOKEN");
    if let Some(token) = token {
        command.env("KANBAN_TOKEN", token);
    }
    let output = command.arg(script).arg("--addr").arg(addr).output().expect(
        "python3 runs (scripts/test installs grpcio, grpcio-tools, grpcio-health-checking)",
    );
    assert!(
        output.status.success(),
        "python client against {addr} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

#[tokio::test(flavor = "multi_thread")]
async fn python_client_over_tcp_and_unix_socket() {
    let service = spawn_service().await;
    let tcp = service.tcp_addr.trim_start_matches("http://").to_owned();
    let unix = service.unix_addr.clone();
    // Over TCP with the admin token; over the socket as this process's own uid, with none.
    let token = service.admin_token.clone();
    for (addr, token) in [(tcp, Some(token)), (unix, None)] {
        let seen = tokio::task::spawn_blocking(move || run_python_client(&addr, token.as_deref()))
            .await
            .unwrap();
        assert_eq!(seen["health"], "SERVING");
        assert_eq!(seen["keepalive"], "renewed");
        assert_eq!(seen["complete"], "done");
        assert_eq!(seen["refused"], "unknown");
        assert_eq!(seen["retried"], "already recorded");
        assert_eq!(seen["epoch"], 1);
    }
}
