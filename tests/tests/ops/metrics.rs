//! `/metrics` over real HTTP, parsed with a Prometheus text-format parser: each metric moves
//! when its cause happens (a grant, an expiry, a revocation, a refusal, a waiting poller, an
//! open stream, a release waiting for disk space), and who may scrape.

use kanband_proto::pb;
use kanband_tests::{
    calls::{
        self, CODER, acquire_now, archive, create_assigned, heartbeat, open_session, try_acquire,
    },
    metrics::{Scrape, scrape},
    raw, spawn_service,
};
use tokio_stream::StreamExt as _;

use crate::{scrape_until, serial};

#[tokio::test]
async fn each_metric_moves_when_its_cause_happens() {
    let _turn = serial().await;
    let svc = spawn_service().await;
    let base = svc.board.url();
    let mut client = svc.tcp.clone();
    let before = scrape(&base).await;
    let moved = |after: &Scrape, name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };

    // A grant: the grant counter, the ready -> granted latency, a dispatcher pass, commits.
    let task = create_assigned(&mut client, "", "measured", CODER).await;
    let session = open_session(&mut client, CODER, 60_000).await;
    let grant = acquire_now(&mut client, &session.id).await;
    let after = scrape(&base).await;
    assert_eq!(moved(&after, "kanband_grants_total", &[]), 1.0);
    assert_eq!(moved(&after, "kanband_ready_to_granted_seconds", &[]), 1.0);
    assert!(moved(&after, "kanband_dispatch_pass_duration_seconds", &[]) >= 1.0);
    assert!(moved(&after, "kanband_commit_duration_seconds", &[]) >= 3.0);
    assert!(moved(&after, "kanband_commit_batch_size", &[]) >= 3.0);
    let acquired = [("method", "/kanban.v1.Leases/Acquire"), ("code", "OK")];
    assert_eq!(moved(&after, "kanband_rpc_requests_total", &acquired), 1.0);
    assert_eq!(
        moved(&after, "kanband_rpc_duration_seconds", &acquired),
        1.0
    );
    assert_eq!(after.value("kanband_live_sessions", &[]), 1.0);
    assert_eq!(after.value("kanband_live_claims", &[]), 1.0);
    let running = [("board", "default"), ("status", "running")];
    assert_eq!(after.value("kanband_tasks", &running), 1.0);
    let ready = [("board", "default"), ("status", "ready")];
    assert_eq!(
        after.value("kanband_tasks", &ready),
        0.0,
        "a drained status reads 0"
    );

    // A revocation (archive), then the holder's next call is a fencing refusal.
    archive(&mut client, &task.id).await;
    let refused = heartbeat(&mut client, &grant.claim_token).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Aborted);
    let after = scrape(&base).await;
    assert_eq!(
        moved(
            &after,
            "kanband_revocations_total",
            &[("cause", "archived")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            &after,
            "kanband_fencing_refusals_total",
            &[("reason", "revoked")]
        ),
        1.0
    );
    let aborted = [
        ("method", "/kanban.v1.Leases/Heartbeat"),
        ("code", "ABORTED"),
    ];
    assert_eq!(moved(&after, "kanband_rpc_requests_total", &aborted), 1.0);

    // A waiting poller and an open stream are gauges while they last.
    let poller = tokio::spawn({
        let mut client = client.clone();
        let session = session.id.clone();
        async move { try_acquire(&mut client, &session, 30_000).await }
    });
    scrape_until(&base, "a waiting poller", |s| {
        s.value("kanband_waiting_pollers", &[]) == 1.0
    })
    .await;
    let mut watch = client
        .events
        .watch(pb::WatchRequest::default())
        .await
        .expect("Watch")
        .into_inner();
    scrape_until(&base, "an open watch stream", |s| {
        s.value("kanband_open_streams", &[("pool", "watch")]) == 1.0
    })
    .await;
    let _ = watch.next().await;
    drop(watch);
    scrape_until(&base, "the watch stream closed", |s| {
        s.value("kanband_open_streams", &[("pool", "watch")]) == 0.0
            && s.value(
                "kanband_rpc_requests_total",
                &[("method", "/kanban.v1.Events/Watch")],
            ) >= 1.0
    })
    .await;
    poller.abort();

    // An expiry: a session left unrenewed for its 1 s lease releases its claim.
    create_assigned(&mut client, "", "left to expire", CODER).await;
    let short = open_session(&mut client, CODER, 1_000).await;
    acquire_now(&mut client, &short.id).await;
    let after = scrape_until(&base, "the claim's expiry", |s| {
        s.value("kanband_expiries_total", &[("lease", "session")])
            > before.value("kanband_expiries_total", &[("lease", "session")])
    })
    .await;
    assert_eq!(
        moved(&after, "kanband_expiries_total", &[("lease", "session")]),
        1.0
    );
    assert_eq!(moved(&after, "kanband_expiry_lag_seconds", &[]), 1.0);
    assert_eq!(after.value("kanband_deadlines_retrying", &[]), 0.0);
    assert_eq!(after.value("kanband_lease_health_serving", &[]), 1.0);
}

#[tokio::test]
async fn every_listed_metric_is_in_a_scrape_with_its_help() {
    let _turn = serial().await;
    let svc = spawn_service().await;
    let base = svc.board.url();
    calls::create(&mut svc.tcp.clone(), "one call, so the call metrics exist").await;
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names = Scrape::parse(&text).names();
    for (name, help) in kanband::metrics::ALL {
        assert!(
            names.iter().any(|n| n == name),
            "{name} is missing from a scrape of a fresh kanband: {names:?}"
        );
        assert!(
            text.contains(&format!("# HELP {name} {help}")),
            "{name}'s help"
        );
    }
}

#[tokio::test]
async fn calls_to_methods_kanband_does_not_serve_are_counted_as_other() {
    let _turn = serial().await;
    let svc = spawn_service().await;
    let base = svc.board.url();
    let before = scrape(&base).await;
    let unserved = [
        "/kanban.v1.Tasks/Nope",
        "/grpc.health.v1.Health/Nope",
        "/scanner.Probe/x0000000000000001",
    ];
    let channel = kanband_gateway::connect(&svc.tcp_addr)
        .await
        .expect("connect over TCP");
    for secret in [None, Some(svc.admin_token.as_str())] {
        let bearer = kanband_gateway::Bearer::new(secret).unwrap();
        let mut grpc = raw::grpc(channel.clone(), bearer);
        for path in unserved {
            let answer = raw::call(&mut grpc, path, Vec::new()).await;
            assert!(answer.is_err(), "{path} is not served: {answer:?}");
        }
    }
    let mut grpc = raw::grpc(channel, svc.bearer());
    raw::call(&mut grpc, "/kanban.v1.Admin/Stats", Vec::new())
        .await
        .expect("a served method");

    let after = scrape(&base).await;
    let moved = |labels: &[(&str, &str)]| {
        after.value("kanband_rpc_requests_total", labels)
            - before.value("kanband_rpc_requests_total", labels)
    };
    assert_eq!(moved(&[("method", "other")]), 6.0);
    assert_eq!(
        moved(&[("method", "/kanban.v1.Admin/Stats"), ("code", "OK")]),
        1.0
    );
    for path in unserved {
        assert_eq!(
            after.value("kanband_rpc_requests_total", &[("method", path)]),
            0.0,
            "{path} has no series of its own"
        );
        assert_eq!(
            after.value("kanband_rpc_duration_seconds", &[("method", path)]),
            0.0
        );
    }
}

#[tokio::test]
async fn a_rebinding_host_is_refused() {
    let _turn = serial().await;
    let svc = spawn_service().await;
    let response = reqwest::Client::new()
        .get(format!("{}/metrics", svc.board.url()))
        .header("host", "attacker.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
}

/// Scrapes until `check` holds, yielding between scrapes, for up to 10 s of real time: for a
/// paused clock, which a timed sleep would leave waiting.
async fn scrape_until_real(base: &str, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let scraped = scrape(base).await;
        if check(&scraped) {
            return scraped;
        }
        assert!(std::time::Instant::now() < give_up, "{what}: never seen");
        tokio::task::yield_now().await;
    }
}

/// A disk-full database, rehearsed as the api tests do: the storage cap set at the current
/// size, then big creates until one is refused with RESOURCE_EXHAUSTED.
async fn fill(client: &mut kanband_gateway::Client) {
    client
        .admin
        .set_storage_limit(pb::SetStorageLimitRequest { max_bytes: 1 })
        .await
        .expect("SetStorageLimit");
    for _ in 0..500 {
        let big = pb::CreateTaskRequest {
            title: "fill".into(),
            body: "x".repeat(60 * 1024),
            ..Default::default()
        };
        match client.tasks.create_task(big).await {
            Ok(_) => continue,
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                return;
            }
        }
    }
    panic!("the storage cap never bit");
}

#[tokio::test(start_paused = true)]
async fn the_retrying_gauge_counts_a_release_that_waits_for_disk_space() {
    let _turn = serial().await;
    // Hold the paused clock: it moves only with `advance`, so the lease runs out only once the
    // disk is full.
    let spinner = tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    });
    let svc = spawn_service().await;
    let base = svc.board.url();
    let mut client = svc.tcp.clone();
    // Enough claims that their releases together need more pages than a full disk has left.
    let mut ids = Vec::new();
    for i in 0..64 {
        ids.push(
            create_assigned(&mut client, "", &format!("t{i}"), CODER)
                .await
                .id,
        );
    }
    let request = pb::OpenSessionRequest {
        slots: 64,
        ..calls::session_request(CODER, 1_000)
    };
    let session = calls::open_session_with(&mut client, request).await;
    for _ in &ids {
        acquire_now(&mut client, &session.id).await;
    }
    let gauge = |s: &Scrape| s.value("kanband_deadlines_retrying", &[]);
    assert_eq!(gauge(&scrape(&base).await), 0.0);

    fill(&mut client).await;
    tokio::time::advance(std::time::Duration::from_millis(1_000)).await;
    scrape_until_real(&base, "a failed release waits for a retry", |s| {
        gauge(s) >= 1.0
    })
    .await;
    let running = calls::all_tasks(&mut client, "", &[pb::TaskStatus::Running]).await;
    assert!(
        !running.is_empty(),
        "a release waiting for space is not written yet"
    );

    // Space returns: the next try (at most 5 s of backoff later) commits.
    client
        .admin
        .set_storage_limit(pb::SetStorageLimitRequest { max_bytes: 0 })
        .await
        .expect("SetStorageLimit");
    tokio::time::advance(std::time::Duration::from_secs(5)).await;
    scrape_until_real(&base, "the gauge back to 0", |s| gauge(s) == 0.0).await;
    for id in &ids {
        assert_eq!(
            calls::task(&mut client, id).await.status(),
            pb::TaskStatus::Ready,
            "every claim is released"
        );
    }
    spinner.abort();
}
