//! The notification watcher: deliveries arrive, an acknowledged one is not delivered again, an
//! unacknowledged one comes again to the next watcher, and the watcher rides out a kanband
//! restart.

use std::time::Duration;

use kanband_gateway::notifier::Notifier;
use kanband_proto::pb;
use kanband_tests::{
    calls::{block, create, subscribe},
    spawn_service, spawn_service_in,
};

const PATIENCE: Duration = Duration::from_secs(20);

/// Creates a task, subscribes `gw` to it and blocks it: one notification waits.
async fn subscribe_and_block(client: &mut kanband_gateway::Client, title: &str) -> String {
    let task = create(client, title).await;
    subscribe(
        client,
        pb::SubscribeRequest {
            task_id: task.id.clone(),
            owner_profile: "gw".into(),
            ..Default::default()
        },
    )
    .await;
    block(client, &task.id, pb::BlockKind::Unspecified).await;
    task.id
}

#[tokio::test]
async fn delivers_until_acknowledged_and_survives_a_restart() {
    let service = spawn_service().await;
    let mut client = service.unix.clone();
    let first = subscribe_and_block(&mut client, "first").await;

    let mut watcher = Notifier::new(service.unix_addr.clone(), vec!["gw".into()]);
    let delivery = tokio::time::timeout(PATIENCE, watcher.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            delivery.event.task_id.as_str(),
            delivery.event.kind.as_str()
        ),
        (first.as_str(), "blocked")
    );
    drop(watcher);

    // Not acknowledged: a new watcher gets it again; acknowledged: never again.
    let mut watcher = Notifier::new(service.unix_addr.clone(), vec!["gw".into()]);
    let again = tokio::time::timeout(PATIENCE, watcher.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.event.id, delivery.event.id);
    again.ack().await.unwrap();

    // kanband restarts (same Unix socket path); the watcher reconnects on its own.
    let dir = service.stop().await;
    let service = spawn_service_in(dir).await;
    let mut client = service.unix.clone();
    let second = subscribe_and_block(&mut client, "second").await;
    let next = tokio::time::timeout(PATIENCE, watcher.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next.event.task_id, second,
        "the acknowledged notification was not delivered again"
    );
    next.ack().await.unwrap();
}
