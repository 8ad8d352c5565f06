//! A full disk, rehearsed with SQLite's page-count limit (Admin.SetStorageLimit): writes fail
//! with RESOURCE_EXHAUSTED and a clear message, reads keep working, nothing acknowledged is
//! lost, and writes resume once space returns.

use kanband_proto::pb;
use kanband_tests::{
    calls::{all_tasks, assert_invariants, create_with, new_task, task},
    spawn_service,
};

#[tokio::test]
async fn writes_fail_cleanly_when_full_and_resume_when_space_returns() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let create = |body: String| pb::CreateTaskRequest {
        body,
        ..new_task("", "fill")
    };
    let mut acknowledged = Vec::new();
    for _ in 0..10 {
        let created = create_with(&mut client, create(String::new())).await;
        acknowledged.push(created.task.expect("task").id);
    }

    let limit = client
        .admin
        .set_storage_limit(pb::SetStorageLimitRequest { max_bytes: 1 })
        .await
        .unwrap()
        .into_inner();
    assert!(
        limit.max_bytes > 0 && limit.max_bytes <= limit.used_bytes,
        "{limit:?}"
    );

    let big = "x".repeat(60 * 1024);
    let refusal = loop {
        match client.tasks.create_task(create(big.clone())).await {
            Ok(created) => acknowledged.push(created.into_inner().task.unwrap().id),
            Err(status) => break status,
        }
        assert!(acknowledged.len() < 500, "the cap never bit");
    };
    assert_eq!(
        refusal.code(),
        tonic::Code::ResourceExhausted,
        "{refusal:?}"
    );
    assert!(
        refusal.message().contains("disk is full"),
        "{}",
        refusal.message()
    );

    // Reads keep working, and every acknowledged write is there.
    for id in &acknowledged {
        assert_eq!(task(&mut client, id).await.id, *id, "read {id} while full");
    }
    let listed = all_tasks(&mut client, "", &[]).await;
    assert_eq!(
        listed.len(),
        acknowledged.len(),
        "no refused write left a trace"
    );

    client
        .admin
        .set_storage_limit(pb::SetStorageLimitRequest { max_bytes: 0 })
        .await
        .unwrap();
    client
        .tasks
        .create_task(create(big))
        .await
        .expect("writes resume once space returns");
    assert_invariants(&mut client).await;
}
