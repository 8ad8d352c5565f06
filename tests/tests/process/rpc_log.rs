//! The debug line kanband writes per RPC (target `kanband::rpc`) names who made the call and
//! with which role, read from the real process's log.

use kanband_gateway::Target;
use kanband_proto::pb;
use kanband_tests::daemon::{Daemon, PATIENCE, data_dir};

use crate::support::{connect, eventually, shared};

#[tokio::test]
async fn each_rpc_line_names_the_callers_identity_and_role() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start_with(&data, &["--log", "info,kanband::rpc=debug"]).await;
    let mut owner = daemon.client().await;
    let reader = owner
        .admin
        .create_token(pb::CreateTokenRequest {
            name: "dash-reader".into(),
            role: "reader".into(),
            ..Default::default()
        })
        .await
        .expect("a reader token")
        .into_inner()
        .secret;
    let mut client = connect(Target::new(&daemon.tcp_addr, Some(reader))).await;
    client
        .admin
        .stats(pb::StatsRequest::default())
        .await
        .expect("a reader reads stats");
    let mut anonymous = connect(Target::new(&daemon.tcp_addr, None)).await;
    anonymous
        .admin
        .stats(pb::StatsRequest::default())
        .await
        .expect_err("no token over TCP");

    let lines = |pattern: &'static str| {
        let log = daemon.stderr.lock().unwrap().clone();
        let found: Vec<String> = log
            .lines()
            .filter(|l| l.contains("kanband::rpc") && l.contains(pattern))
            .map(str::to_owned)
            .collect();
        if found.is_empty() {
            Err(log)
        } else {
            Ok(found)
        }
    };
    // Lines are written when a call's answer ends, so they are waited for.
    let token_call = eventually(
        "the reader's Stats line",
        PATIENCE,
        String::new,
        async || {
            lines("code=\"OK\"").and_then(|found| {
                found
                    .into_iter()
                    .find(|l| l.contains("Admin/Stats"))
                    .ok_or_else(String::new)
            })
        },
    )
    .await;
    assert!(
        token_call.contains("caller=\"dash-reader\""),
        "{token_call}"
    );
    assert!(token_call.contains("role=\"reader\""), "{token_call}");

    let owner_call = eventually("the owner's line", PATIENCE, String::new, async || {
        lines("Admin/CreateToken")
    })
    .await;
    assert!(owner_call[0].contains("caller=\"admin\""), "{owner_call:?}");
    assert!(owner_call[0].contains("role=\"admin\""), "{owner_call:?}");

    // A refused call has no identity to name.
    let refused = eventually("the refused line", PATIENCE, String::new, async || {
        lines("UNAUTHENTICATED")
    })
    .await;
    assert!(!refused[0].contains("caller="), "{refused:?}");
    daemon.terminate().await;
}
