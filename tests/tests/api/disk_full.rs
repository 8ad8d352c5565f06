//! A full disk, rehearsed with SQLite's page-count limit (Admin.SetStorageLimit): writes fail
//! with RESOURCE_EXHAUSTED and a clear message, reads keep working, nothing acknowledged is
//! lost, and writes resume once space returns. Reads never share a transaction with writes,
//! so a burst of them all succeeds beside writes that fail.

use kanband_proto::pb;
use kanband_tests::{
    calls::{all_tasks, assert_invariants, create, create_with, new_task, task},
    spawn_service,
};
use tonic::Code;

use crate::support::disk::{big_task, fill};

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

#[tokio::test]
async fn a_burst_of_reads_all_succeed_while_writes_fail() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let id = create(&mut client, "read me").await.id;
    fill(&mut client).await;

    // Writers keep failing while the reads run: a read inside their group commits would fail
    // with them.
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    let refused = client.tasks.create_task(big_task()).await;
                    assert_eq!(
                        refused.expect_err("the disk is full").code(),
                        Code::ResourceExhausted
                    );
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..400)
        .map(|i| {
            let mut client = client.clone();
            let id = id.clone();
            tokio::spawn(async move { read(&mut client, i, id).await })
        })
        .collect();
    let mut failed = Vec::new();
    for reader in readers {
        if let Err(status) = reader.await.expect("reader") {
            failed.push(status);
        }
    }
    for writer in writers {
        writer.await.expect("writers were refused");
    }
    assert!(
        failed.is_empty(),
        "{} reads failed: {:?}",
        failed.len(),
        failed.first()
    );
}

/// One of the read calls, chosen by `i`; half of them read the task (the one with the most to
/// read).
async fn read(
    client: &mut kanband_gateway::Client,
    i: usize,
    id: String,
) -> Result<(), tonic::Status> {
    match i % 14 {
        0 => client
            .tasks
            .list_tasks(pb::ListTasksRequest::default())
            .await
            .map(drop),
        1 => client
            .tasks
            .list_events(pb::ListEventsRequest::default())
            .await
            .map(drop),
        2 => client
            .boards
            .get_board(pb::GetBoardRequest {
                slug: "default".into(),
            })
            .await
            .map(drop),
        3 => client
            .boards
            .list_boards(pb::ListBoardsRequest::default())
            .await
            .map(drop),
        4 => client.admin.stats(pb::StatsRequest {}).await.map(drop),
        5 => client
            .admin
            .check_invariants(pb::CheckInvariantsRequest {})
            .await
            .map(drop),
        6 => client
            .admin
            .dispatch_preview(pb::DispatchPreviewRequest {
                profiles: vec!["p".into()],
                ..Default::default()
            })
            .await
            .map(drop),
        _ => client
            .tasks
            .get_task(pb::GetTaskRequest {
                id,
                ..Default::default()
            })
            .await
            .map(drop),
    }
}
