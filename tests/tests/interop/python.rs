//! Interop with a real Python gRPC client (grpcio, stubs generated from proto/ at test time by
//! grpcio-tools): health through grpcio-health-checking, a session kept alive over the
//! bidirectional stream, acquire, complete, a retried completion answered as already recorded,
//! and a different later outcome refused with the reason read from the trailers. Run over TCP and over the Unix socket. `scripts/test` installs the packages.

use std::process::Command;

use kanband_tests::spawn_service;

fn run_python_client(addr: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python_client.py");
    let output = Command::new("python3")
        .arg(script)
        .arg("--addr")
        .arg(addr)
        .output()
        .expect(
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
    for addr in [tcp, unix] {
        let seen = tokio::task::spawn_blocking(move || run_python_client(&addr))
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
