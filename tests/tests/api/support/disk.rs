//! A full disk, rehearsed with SQLite's page-count limit (`Admin.SetStorageLimit`).

use kanband_gateway::Client;
use kanband_proto::pb;
use tonic::Code;

/// A body big enough that a few creates need new pages.
const BIG: usize = 60 * 1024;

/// Caps the database at its current size (or lifts the cap with 0).
pub(crate) async fn set_cap(client: &mut Client, max_bytes: u64) -> pb::SetStorageLimitResponse {
    client
        .admin
        .set_storage_limit(pb::SetStorageLimitRequest { max_bytes })
        .await
        .expect("SetStorageLimit")
        .into_inner()
}

/// Caps the database at its current size and writes big tasks until a write is refused with
/// RESOURCE_EXHAUSTED; returns the ids of the tasks that were acknowledged on the way.
pub(crate) async fn fill(client: &mut Client) -> Vec<String> {
    set_cap(client, 1).await;
    let mut acknowledged = Vec::new();
    loop {
        match client.tasks.create_task(big_task()).await {
            Ok(created) => acknowledged.push(created.into_inner().task.expect("task").id),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                return acknowledged;
            }
        }
        assert!(acknowledged.len() < 500, "the cap never bit");
    }
}

/// A create that needs new pages.
pub(crate) fn big_task() -> pb::CreateTaskRequest {
    pb::CreateTaskRequest {
        title: "fill".into(),
        body: "x".repeat(BIG),
        ..Default::default()
    }
}
