//! Admin.CheckInvariants finds what it claims to find: each test builds a healthy state through
//! the API, stops kanband, plants one kind of violation in the database with SQLite (nothing
//! else has the file open then), starts kanband again on the same directory and asserts the
//! check reports exactly that violation and nothing else.

use std::path::Path;

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::{
    TestService,
    calls::{
        CODER, acquire_now, assert_invariants, complete, create, create_assigned, open_session,
    },
    spawn_service, spawn_service_in,
};
use tokio_rusqlite::rusqlite;

/// A session TTL no test outlives, so the restart re-arms nothing and ends nothing.
const TTL: u32 = 300_000;

/// Stops the service, runs `sql` on its database with one connection (named parameters from
/// `params`), and starts it again on the same directory. The check must be clean before.
async fn plant(service: TestService, sql: &str, params: &[(&str, &str)]) -> TestService {
    assert_invariants(&mut service.tcp.clone()).await;
    let db = service.data_dir.join("kanband.db");
    let dir = service.stop().await;
    edit(&db, sql, params);
    spawn_service_in(dir).await
}

fn edit(db: &Path, sql: &str, params: &[(&str, &str)]) {
    let conn = rusqlite::Connection::open(db).expect("open the stopped kanband's database");
    let mut statements = sql.split(';').map(str::trim).filter(|s| !s.is_empty());
    statements
        .try_for_each(|statement| {
            let mut prepared = conn.prepare(statement)?;
            let named: Vec<(&str, &dyn rusqlite::ToSql)> = params
                .iter()
                .filter(|(name, _)| statement.contains(name))
                .map(|(name, value)| (*name, value as &dyn rusqlite::ToSql))
                .collect();
            let changed = prepared.execute(named.as_slice())?;
            assert!(
                changed > 0 || statement.starts_with("DROP"),
                "{statement} changed nothing"
            );
            Ok::<_, rusqlite::Error>(())
        })
        .unwrap_or_else(|err| panic!("plant {sql:?}: {err}"));
}

/// Runs the check and asserts it reports `invariant` and only it; returns the details.
async fn reported(client: &mut Client, invariant: &str) -> Vec<String> {
    let report = client
        .admin
        .check_invariants(pb::CheckInvariantsRequest {})
        .await
        .expect("CheckInvariants")
        .into_inner();
    assert!(!report.ok, "the planted {invariant} is not reported");
    let kinds: Vec<&str> = report
        .violations
        .iter()
        .map(|v| v.invariant.as_str())
        .collect();
    assert!(
        kinds.iter().all(|kind| *kind == invariant),
        "only {invariant} is reported: {:?}",
        report.violations
    );
    report.violations.into_iter().map(|v| v.detail).collect()
}

/// A service with one task held by a `coder` session (a live claim on a running task).
async fn held() -> (TestService, pb::Grant) {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, TTL).await;
    create_assigned(&mut client, "", "held", CODER).await;
    let grant = acquire_now(&mut client, &session.id).await;
    (service, grant)
}

/// The task id of a grant.
fn task_of(grant: &pb::Grant) -> &str {
    &grant.task.as_ref().expect("a grant carries its task").id
}

#[tokio::test]
async fn a_running_task_without_a_claim_is_reported() {
    let service = spawn_service().await;
    let task = create(&mut service.tcp.clone(), "never claimed").await;
    let service = plant(
        service,
        "UPDATE tasks SET status = 'running' WHERE id = :task",
        &[(":task", &task.id)],
    )
    .await;
    let details = reported(&mut service.tcp.clone(), "running_without_claim").await;
    assert_eq!(
        details,
        [format!("task {} is running without a live claim", task.id)]
    );
}

#[tokio::test]
async fn two_live_claims_on_one_task_are_reported() {
    let (service, grant) = held().await;
    let task = task_of(&grant).to_owned();
    // The unique index forbids a second live claim, so it goes first; the copy takes the next
    // epoch, and the task with it, so that only the second holder is wrong.
    let service = plant(
        service,
        "DROP INDEX claims_one_live_per_task;
         INSERT INTO claims (token, task_id, board, epoch, run_id, session_id, profile, review,
                             state, granted_at, expires_at)
             SELECT 'c_00000000000000aa', task_id, board, epoch + 1, run_id, session_id, profile,
                    review, 'live', granted_at, expires_at
             FROM claims WHERE token = :token;
         UPDATE tasks SET epoch = epoch + 1 WHERE id = :task",
        &[(":token", &grant.claim_token), (":task", &task)],
    )
    .await;
    let details = reported(&mut service.tcp.clone(), "two_live_claims").await;
    assert_eq!(details, [format!("task {task} has 2 live claims")]);
}

#[tokio::test]
async fn an_epoch_behind_the_task_is_reported() {
    let (service, grant) = held().await;
    let task = task_of(&grant).to_owned();
    let service = plant(
        service,
        "UPDATE tasks SET epoch = epoch + 4 WHERE id = :task",
        &[(":task", &task)],
    )
    .await;
    let details = reported(&mut service.tcp.clone(), "epoch_not_growing").await;
    assert_eq!(
        details,
        [format!(
            "task {task} has epoch 5 but claims up to 1 (1 claims, 1 epochs)"
        )]
    );
}

#[tokio::test]
async fn a_run_whose_outcome_disagrees_with_its_claim_is_reported() {
    // One ended claim whose run lost its outcome, one live claim whose run has one.
    let (service, live) = held().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, TTL).await;
    create_assigned(&mut client, "", "finished", CODER).await;
    let finished = acquire_now(&mut client, &session.id).await;
    complete(&mut client, &finished.claim_token)
        .await
        .expect("Complete");
    let service = plant(
        service,
        "UPDATE runs SET outcome = NULL, ended_at = NULL
             WHERE id = (SELECT run_id FROM claims WHERE token = :finished);
         UPDATE runs SET outcome = 'completed', ended_at = started_at
             WHERE id = (SELECT run_id FROM claims WHERE token = :live)",
        &[
            (":finished", &finished.claim_token),
            (":live", &live.claim_token),
        ],
    )
    .await;
    let mut details = reported(&mut service.tcp.clone(), "run_without_outcome").await;
    details.sort_by_key(|d| d.contains("ended without"));
    assert_eq!(details.len(), 2, "{details:?}");
    let (live_run, finished_run) = (&live.run_id, &finished.run_id);
    assert_eq!(
        details,
        [
            format!(
                "run {live_run} of task {} has an outcome while its claim is live",
                task_of(&live)
            ),
            format!(
                "run {finished_run} of task {} ended without an outcome",
                task_of(&finished)
            ),
        ]
    );
}

#[tokio::test]
async fn a_gap_in_the_event_log_is_reported() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    for title in ["one", "two", "three"] {
        create(&mut client, title).await;
    }
    let service = plant(service, "DELETE FROM events WHERE id = 2", &[]).await;
    let details = reported(&mut service.tcp.clone(), "event_gap").await;
    assert_eq!(details, ["events hold 2 rows but ids run from 1 to 3"]);
}

#[tokio::test]
async fn an_unended_claim_missing_from_the_lease_registry_is_reported() {
    // A claim of a session recorded as closed is not restored into the registry at start-up,
    // though its row says it is live.
    let (service, grant) = held().await;
    let service = plant(
        service,
        "UPDATE sessions SET closed_at = 1, close_reason = 'planted'
             WHERE id = (SELECT session_id FROM claims WHERE token = :token)",
        &[(":token", &grant.claim_token)],
    )
    .await;
    let details = reported(&mut service.tcp.clone(), "registry_mismatch").await;
    assert_eq!(
        details,
        ["1 unended claims are not in the lease registry and 0 claims in it are not unended"]
    );
}
