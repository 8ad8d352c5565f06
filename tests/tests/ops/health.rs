//! Health tied to lease correctness: a commit that waits past half the smallest TTL (a stalled
//! store) turns the overall status and `kanban.v1.Leases` NOT_SERVING while the other services
//! stay SERVING, and both come back once writes commit in time again.

use std::time::Duration;

use kanband_tests::{calls, metrics::scrape, spawn_service};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::serial;

type Health = HealthClient<tonic::transport::Channel>;

async fn status(health: &mut Health, service: &str) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("Health.Check")
        .into_inner()
        .status()
}

/// Polls until `service` reports `want`, for at most 10 s.
async fn until_status(health: &mut Health, service: &str, want: ServingStatus) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while status(health, service).await != want {
        assert!(
            tokio::time::Instant::now() < give_up,
            "{service:?} never turned {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_stalled_store_takes_kanband_out_of_rotation_until_it_recovers() {
    let _turn = serial().await;
    let svc = spawn_service().await;
    let channel = kanband_gateway::connect(&svc.tcp_addr)
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    for service in ["", "kanban.v1.Leases", "kanban.v1.Tasks"] {
        assert_eq!(status(&mut health, service).await, ServingStatus::Serving);
    }

    let stall = svc.stall_store(Duration::from_millis(2_000));
    let mut client = svc.tcp.clone();
    let write = tokio::spawn(async move { calls::create(&mut client, "queued").await });
    let watch = async {
        until_status(&mut health, "", ServingStatus::NotServing).await;
        until_status(&mut health, "kanban.v1.Leases", ServingStatus::NotServing).await;
        assert_eq!(
            status(&mut health, "kanban.v1.Tasks").await,
            ServingStatus::Serving,
            "only lease health depends on promptness"
        );
        let scraped = scrape(&svc.board.url()).await;
        assert_eq!(scraped.value("kanband_lease_health_serving", &[]), 0.0);
    };
    tokio::join!(stall, watch);
    write
        .await
        .expect("the queued write commits after the stall");
    until_status(&mut health, "", ServingStatus::Serving).await;
    until_status(&mut health, "kanban.v1.Leases", ServingStatus::Serving).await;
    let scraped = scrape(&svc.board.url()).await;
    assert_eq!(scraped.value("kanband_lease_health_serving", &[]), 1.0);
}
