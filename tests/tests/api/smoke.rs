//! The harness serves over both transports and survives a restart.

use kanband_proto::pb;
use kanband_tests::{
    calls::{create, detail},
    spawn_service, spawn_service_in,
};

#[tokio::test]
async fn create_and_show_over_both_transports_and_after_restart() {
    let service = spawn_service().await;
    let mut ids = Vec::new();
    for (name, mut client) in service.transports() {
        let task = create(&mut client, &format!("over {name}")).await;
        assert_eq!(task.status(), pb::TaskStatus::Ready);
        ids.push(task.id);
    }
    let dir = service.stop().await;

    let service = spawn_service_in(dir).await;
    let mut client = service.unix.clone();
    for id in ids {
        let events = detail(&mut client, &id).await.recent_events;
        assert_eq!(events.first().map(|e| e.kind.as_str()), Some("created"));
    }
}
