//! Leases while the disk is full (rehearsed with the storage cap): a lease that runs out
//! while nothing can be written is released once space returns, with the backlog in
//! `Admin.Stats` meanwhile; and kanband restarted on a full database starts, serves reads,
//! refuses writes, and writes what start-up could not once space returns.

use kanband_gateway::Client;
use kanband_proto::pb::{self, RunOutcome, TaskStatus};
use kanband_tests::{
    calls::{
        CODER, acquire_now, all_events, all_tasks, assert_invariants, create_assigned,
        last_outcome, open_session_with, session_request, stats, task,
    },
    spawn_service, spawn_service_in,
};
use tokio_rusqlite::rusqlite;
use tonic::Code;

use crate::support::{
    clock::{Clock, eventually, settle, until_status},
    disk::{big_task, fill, set_cap},
};

/// Claims held by the one session: their releases together need more than a page.
const CLAIMS: u32 = 64;

/// The session's lease.
const TTL: u32 = 5_000;

/// Opens a session with a lease of `ttl` ms and has it claim [`CLAIMS`] tasks; returns the
/// task ids.
async fn claims(client: &mut Client, ttl: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..CLAIMS {
        ids.push(
            create_assigned(client, "", &format!("t{i}"), CODER)
                .await
                .id,
        );
    }
    let session = open_session_with(
        client,
        pb::OpenSessionRequest {
            slots: CLAIMS,
            ..session_request(CODER, ttl)
        },
    )
    .await;
    for _ in 0..CLAIMS {
        acquire_now(client, &session.id).await;
    }
    ids
}

/// The ids of the tasks that are running.
async fn running(client: &mut Client) -> Vec<String> {
    all_tasks(client, "", &[TaskStatus::Running])
        .await
        .into_iter()
        .map(|task| task.id)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_runs_out_while_the_disk_is_full_is_released_once_space_returns() {
    let clock = Clock::hold();
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let ids = claims(&mut client, TTL).await;
    fill(&mut client).await;

    // The leases run out; their releases cannot be written and wait, retried with backoff.
    clock.advance(u64::from(TTL)).await;
    eventually("the failed expiries wait for a retry", || {
        let mut client = client.clone();
        async move { (stats(&mut client).await.deadlines_retrying > 0).then_some(()) }
    })
    .await;
    let stuck = running(&mut client).await;
    assert!(!stuck.is_empty(), "no release failed: the cap did not bite");
    for _ in 0..20 {
        clock.advance(1_000).await;
        settle().await;
    }
    let still = running(&mut client).await;
    assert!(
        !still.is_empty() && still.iter().all(|id| stuck.contains(id)),
        "while the disk is full, tasks whose release failed stay running ({} of {})",
        still.len(),
        stuck.len()
    );
    assert!(stats(&mut client).await.deadlines_retrying > 0);

    // Space returns: within one backoff (at most 5 s) every release commits.
    set_cap(&mut client, 0).await;
    clock.advance(5_000).await;
    for id in &ids {
        until_status(&client, id, TaskStatus::Ready).await;
        assert_eq!(last_outcome(&mut client, id).await, RunOutcome::Expired);
    }
    eventually("the backlog drains", || {
        let mut client = client.clone();
        async move { (stats(&mut client).await.deadlines_retrying == 0).then_some(()) }
    })
    .await;
    assert_invariants(&mut client).await;
}

/// How many `lease_rearmed` events the log holds.
async fn rearmed_events(client: &mut Client) -> usize {
    all_events(client)
        .await
        .iter()
        .filter(|event| event.kind == "lease_rearmed")
        .count()
}

#[tokio::test]
async fn a_restart_on_a_full_database_serves_reads_and_writes_the_rearmed_leases_later() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let ids = claims(&mut client, 3_000).await;
    fill(&mut client).await;
    let db = service.data_dir.join(kanband::store::DB_FILE);
    let dir = service.stop().await;

    // Down until every recorded lease deadline has passed: the restart re-arms them all.
    let recorded: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT max(expires_at) FROM claims", [], |row| row.get(0))
        .unwrap();
    while kanband::clock::now_ms() <= recorded {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let service = spawn_service_in(dir).await;
    let mut client = service.tcp.clone();
    for id in &ids {
        assert_eq!(task(&mut client, id).await.status(), TaskStatus::Running);
    }
    let refused = client.tasks.create_task(big_task()).await;
    assert_eq!(
        refused.expect_err("the cap holds after the restart").code(),
        Code::ResourceExhausted
    );
    // Start-up could not write them together; retried one by one, a few fit in what room
    // the pages had left, the rest wait.
    let written = rearmed_events(&mut client).await;
    assert!(
        written < CLAIMS as usize,
        "{written} written on a full disk"
    );
    assert!(stats(&mut client).await.deadlines_retrying > 0);

    set_cap(&mut client, 0).await;
    eventually("the lease_rearmed events are written", || {
        let mut client = client.clone();
        async move { (rearmed_events(&mut client).await == CLAIMS as usize).then_some(()) }
    })
    .await;
    eventually("the backlog drains", || {
        let mut client = client.clone();
        async move { (stats(&mut client).await.deadlines_retrying == 0).then_some(()) }
    })
    .await;
    assert_invariants(&mut client).await;
}
