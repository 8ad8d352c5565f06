//! An ordered shutdown with a long poll open: health turns NOT_SERVING, overall and for every
//! `kanban.v1` service, before the servers stop, so a balancer or probe watching it stops
//! sending work while the service drains.

use std::time::Duration;

use kanband_tests::{
    calls::{CODER, open_session},
    spawn_service,
};
use tokio::time::timeout;
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_client::HealthClient,
};

use crate::support::clock::{REAL_LIMIT, spawn_acquire, until_waiting};

/// Every service kanband reports health for: the whole server (`""`) and each API.
const SERVICES: [&str; 7] = [
    "",
    "kanban.v1.Admin",
    "kanban.v1.Boards",
    "kanban.v1.Events",
    "kanban.v1.Leases",
    "kanban.v1.Notifications",
    "kanban.v1.Tasks",
];

/// The next status on a health watch (real-time bound).
async fn next_status(
    name: &str,
    stream: &mut tonic::Streaming<HealthCheckResponse>,
) -> ServingStatus {
    timeout(REAL_LIMIT, stream.message())
        .await
        .unwrap_or_else(|_| panic!("{name:?}: no health update within {REAL_LIMIT:?}"))
        .unwrap_or_else(|status| panic!("{name:?}: the watch failed: {status}"))
        .unwrap_or_else(|| panic!("{name:?}: the watch ended without an update"))
        .status()
}

#[tokio::test]
async fn health_is_not_serving_while_draining_overall_and_per_service() {
    let service = spawn_service().await;
    let client = service.tcp.clone();
    let session = open_session(&mut client.clone(), CODER, 60_000).await;
    let long_poll = spawn_acquire(&client, &session.id, 60_000);
    until_waiting(&client, 1).await;

    let channel = kanband_gateway::connect(&service.tcp_addr)
        .await
        .expect("connect for health");
    let mut watches = Vec::new();
    for name in SERVICES {
        let mut stream = HealthClient::new(channel.clone())
            .watch(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .unwrap_or_else(|status| panic!("Health.Watch {name:?}: {status}"))
            .into_inner();
        assert_eq!(next_status(name, &mut stream).await, ServingStatus::Serving);
        watches.push((name, stream));
    }

    let stopping = tokio::spawn(service.stop());
    for (name, stream) in &mut watches {
        assert_eq!(
            next_status(name, stream).await,
            ServingStatus::NotServing,
            "{name:?} while draining"
        );
    }
    drop((watches, channel));
    timeout(Duration::from_secs(30), stopping)
        .await
        .expect("the shutdown ends once its streams are gone")
        .expect("the shutdown does not panic");
    timeout(REAL_LIMIT, long_poll)
        .await
        .expect("the drain ends the long poll")
        .expect("the long poll does not panic")
        .ok();
}
