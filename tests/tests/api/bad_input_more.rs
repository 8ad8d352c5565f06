//! Malformed requests to every Leases, Events, Notifications and Admin RPC, as one table run
//! over TCP and over the Unix socket: each is refused with the right gRPC code (and, for a lost
//! lease, the right `kanban-lease-lost` trailer) and a message that names the field without Rust
//! Debug noise, and the whole table changes nothing: the event log, boards, every task with its
//! runs and comments, the subscriptions and the live session and claim counts are compared.
//! Boards and Tasks have their own table in `bad_input.rs`.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use kanband_gateway::Client;
use kanband_proto::pb::{self, report_exit_request::Exit};
use kanband_tests::calls;
use kanband_tests::calls::{
    ALL_STATUSES, MADE_UP_TOKEN, MISSING_TASK, acquire_now, all_events, complete, create_assigned,
    create_board, create_on, detail, open_session_with, release, session_request,
};
use kanband_tests::spawn_service;
use tokio::sync::mpsc;
use tonic::{Code, Status, codegen::tokio_stream::wrappers::ReceiverStream};

use crate::support::refusal::{self, Case, Lost, aborted, invalid, refused, succeeds};

/// The profile the fixture's sessions run.
const WORKER: &str = "worker";
/// The profile that owns the fixture's subscription.
const NOTIFIER: &str = "notifier";
/// A session id that is well formed but was never issued.
const MISSING_SESSION: &str = "s_0000000000000000";
/// A subscription id that is well formed but was never issued.
const MISSING_SUBSCRIPTION: &str = "n_0000000000000000";
/// A relative backup path; the test checks it is never written (relative to the test's cwd).
const RELATIVE_BACKUP: &str = "bad-input-more-relative-backup.db";
/// Longest wait for a unary answer: a refusal is immediate, so only a bug (an accepted long
/// poll) takes this long.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);
/// How long a stream that opened is watched for its refusal before it counts as accepted.
const STREAM_LIMIT: Duration = Duration::from_secs(2);

/// One request to any Leases, Events, Notifications or Admin RPC.
#[derive(Debug, Clone)]
enum Call {
    OpenSession(pb::OpenSessionRequest),
    /// The messages a client sends on one stream, in order (the stream stays open).
    KeepAlive(Vec<pb::KeepAliveRequest>),
    CloseSession(pb::CloseSessionRequest),
    Acquire(pb::AcquireRequest),
    Renew(pb::RenewRequest),
    Heartbeat(pb::HeartbeatRequest),
    Complete(pb::CompleteRequest),
    Block(pb::HolderBlockRequest),
    RequestReview(pb::RequestReviewRequest),
    RequestChanges(pb::RequestChangesRequest),
    Release(pb::ReleaseRequest),
    ReportExit(pb::ReportExitRequest),
    Watch(pb::WatchRequest),
    Subscribe(pb::SubscribeRequest),
    Unsubscribe(pb::UnsubscribeRequest),
    ListSubscriptions(pb::ListSubscriptionsRequest),
    Deliver(pb::DeliverRequest),
    Ack(pb::AckRequest),
    DispatchPreview(pb::DispatchPreviewRequest),
    Backup(pb::BackupRequest),
    Stats,
    CheckInvariants,
}

/// The first item of a server stream that opened: a refusal on the stream is the call's
/// refusal; an item, the end of the stream or silence for [`STREAM_LIMIT`] means it was accepted.
async fn first_refusal<T>(stream: &mut tonic::Streaming<T>) -> Result<(), Status> {
    match tokio::time::timeout(STREAM_LIMIT, stream.message()).await {
        Ok(Err(status)) => Err(status),
        Ok(Ok(_)) | Err(_) => Ok(()),
    }
}

/// Serves a keep-alive stream with the messages: each valid one is answered with `renewed`; the
/// first refusal (as the call's status or on the stream) is returned. The outbound side stays
/// open until the answer is read, so the server never sees the client leave first.
async fn keep_alive(
    client: &mut Client,
    messages: Vec<pb::KeepAliveRequest>,
) -> Result<(), Status> {
    let (tx, outbound) = mpsc::channel(messages.len().max(1));
    let count = messages.len();
    for message in messages {
        tx.send(message).await.expect("queued");
    }
    let mut inbound = client
        .leases
        .keep_alive(ReceiverStream::new(outbound))
        .await?
        .into_inner();
    for _ in 0..count {
        match tokio::time::timeout(STREAM_LIMIT, inbound.message()).await {
            Ok(Err(status)) => return Err(status),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Err(_) => break,
        }
    }
    drop(tx);
    Ok(())
}

/// Sends a call and keeps only whether it was refused (with what).
async fn send(mut client: Client, call: Call) -> Result<(), Status> {
    let answer = async {
        let (l, n, a) = (
            &mut client.leases,
            &mut client.notifications,
            &mut client.admin,
        );
        match call {
            Call::OpenSession(r) => l.open_session(r).await.map(drop),
            Call::KeepAlive(messages) => keep_alive(&mut client, messages).await,
            Call::CloseSession(r) => l.close_session(r).await.map(drop),
            Call::Acquire(r) => l.acquire(r).await.map(drop),
            Call::Renew(r) => l.renew(r).await.map(drop),
            Call::Heartbeat(r) => l.heartbeat(r).await.map(drop),
            Call::Complete(r) => l.complete(r).await.map(drop),
            Call::Block(r) => l.block(r).await.map(drop),
            Call::RequestReview(r) => l.request_review(r).await.map(drop),
            Call::RequestChanges(r) => l.request_changes(r).await.map(drop),
            Call::Release(r) => l.release(r).await.map(drop),
            Call::ReportExit(r) => l.report_exit(r).await.map(drop),
            Call::Watch(r) => first_refusal(&mut client.events.watch(r).await?.into_inner()).await,
            Call::Subscribe(r) => n.subscribe(r).await.map(drop),
            Call::Unsubscribe(r) => n.unsubscribe(r).await.map(drop),
            Call::ListSubscriptions(r) => n.list_subscriptions(r).await.map(drop),
            Call::Deliver(r) => first_refusal(&mut n.deliver(r).await?.into_inner()).await,
            Call::Ack(r) => n.ack(r).await.map(drop),
            Call::DispatchPreview(r) => a.dispatch_preview(r).await.map(drop),
            Call::Backup(r) => a.backup(r).await.map(drop),
            Call::Stats => a.stats(pb::StatsRequest {}).await.map(drop),
            Call::CheckInvariants => {
                let report = a
                    .check_invariants(pb::CheckInvariantsRequest {})
                    .await?
                    .into_inner();
                if report.ok {
                    Ok(())
                } else {
                    // Not a refusal: reported as a wrong code with the violations.
                    Err(Status::unknown(format!(
                        "invariants broken: {:?}",
                        report.violations
                    )))
                }
            }
        }
    };
    match tokio::time::timeout(ANSWER_LIMIT, answer).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {ANSWER_LIMIT:?} (the request was taken as valid)"
        ))),
    }
}

/// What the table may use: live leases, a finished one and a subscription.
struct Fixture {
    /// An open session (profile `worker`, not in the review lane) holding `held`.
    session: String,
    /// A live claim on a running task.
    held: String,
    /// A live review-lane claim on a task in review.
    review: String,
    /// The token of a claim that ended when its holder completed the task.
    completed: String,
    /// The token of a claim its holder released (its task is archived since).
    released: String,
    /// A subscription of `notifier` to a ready task.
    subscription: String,
    /// The service's backup directory, with one file in it (`existing`).
    backups: PathBuf,
    /// The name of a file that exists there, with known content.
    existing: String,
}

/// Sets up the fixture through the transport under test; `backups` is the service's backup
/// directory.
async fn fixture(client: &mut Client, backups: PathBuf) -> Fixture {
    create_board(client, "fixture").await;
    let worker = open_session_with(client, session_request(WORKER, 300_000)).await;

    let done = create_assigned(client, "fixture", "done", WORKER).await;
    let grant = acquire_now(client, &worker.id).await;
    assert_eq!(calls::granted_task(&grant), done.id);
    complete(client, &grant.claim_token)
        .await
        .expect("Complete");
    let completed = grant.claim_token;

    let given_back = create_assigned(client, "fixture", "given back", WORKER).await;
    let grant = acquire_now(client, &worker.id).await;
    assert_eq!(calls::granted_task(&grant), given_back.id);
    release(client, &grant.claim_token).await.expect("Release");
    let released = grant.claim_token;
    // Archived, so that it is not claimable again.
    calls::archive(client, &given_back.id).await;

    let reviewed = create_assigned(client, "fixture", "reviewed", WORKER).await;
    let grant = acquire_now(client, &worker.id).await;
    assert_eq!(calls::granted_task(&grant), reviewed.id);
    client
        .leases
        .request_review(pb::RequestReviewRequest {
            claim_token: grant.claim_token,
            summary: "look".into(),
        })
        .await
        .expect("RequestReview");
    let reviewer = open_session_with(
        client,
        pb::OpenSessionRequest {
            review_lane: true,
            machine_id: "m2".into(),
            ..session_request(WORKER, 300_000)
        },
    )
    .await;
    let review = acquire_now(client, &reviewer.id).await;
    assert!(review.review, "the review lane takes the task in review");
    assert_eq!(calls::granted_task(&review), reviewed.id);

    let held = create_assigned(client, "fixture", "held", WORKER).await;
    let grant = acquire_now(client, &worker.id).await;
    assert_eq!(calls::granted_task(&grant), held.id);

    // Unassigned, so no session can claim it: nothing is claimable while the table runs.
    let watched = create_on(client, "fixture", "watched").await;
    let subscription = client
        .notifications
        .subscribe(pb::SubscribeRequest {
            task_id: watched.id,
            platform: "telegram".into(),
            chat_id: "42".into(),
            thread_id: String::new(),
            owner_profile: NOTIFIER.into(),
            mode: pb::DeliveryMode::Every.into(),
        })
        .await
        .expect("Subscribe")
        .into_inner();

    std::fs::create_dir(&backups).expect("the backup directory");
    let existing = "existing.db".to_owned();
    std::fs::write(backups.join(&existing), "keep me").expect("write a file");
    Fixture {
        session: worker.id,
        held: grant.claim_token,
        review: review.claim_token,
        completed,
        released,
        subscription: subscription.id,
        backups,
        existing,
    }
}

/// Everything the table could change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    events: Vec<pb::Event>,
    boards: Vec<pb::Board>,
    /// Every task of every board, archived included.
    tasks: Vec<pb::Task>,
    /// The runs and comments of every task.
    details: Vec<(Vec<pb::Run>, Vec<pb::Comment>)>,
    /// Subscriptions of `notifier` and of the empty owner.
    subscriptions: Vec<pb::Subscription>,
    tasks_by_status: HashMap<String, u64>,
    live_sessions: u64,
    live_claims: u64,
    /// The files in the backup directory, with their contents.
    backups: Vec<(PathBuf, Vec<u8>)>,
}

async fn snapshot(client: &mut Client, fx: &Fixture) -> Snapshot {
    let events = all_events(client).await;
    let boards = client
        .boards
        .list_boards(pb::ListBoardsRequest {
            include_archived: true,
        })
        .await
        .expect("ListBoards")
        .into_inner()
        .boards;
    let mut tasks = Vec::new();
    for board in &boards {
        tasks.extend(kanband_tests::calls::all_tasks(client, &board.slug, ALL_STATUSES).await);
    }
    let mut details = Vec::new();
    for task in &tasks {
        let detail = detail(client, &task.id).await;
        details.push((detail.runs, detail.comments));
    }
    let mut subscriptions = Vec::new();
    for owner in [NOTIFIER] {
        subscriptions.extend(
            client
                .notifications
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    owner_profile: owner.into(),
                })
                .await
                .expect("ListSubscriptions")
                .into_inner()
                .subscriptions,
        );
    }
    let stats = calls::stats(client).await;
    let mut backups: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&fx.backups)
        .expect("read the backup directory")
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let content = std::fs::read(&path).unwrap_or_default();
            (path, content)
        })
        .collect();
    backups.sort();
    Snapshot {
        events,
        boards,
        tasks,
        details,
        subscriptions,
        tasks_by_status: stats.tasks_by_status,
        live_sessions: stats.live_sessions,
        live_claims: stats.live_claims,
        backups,
    }
}

/// A short account of what changed between two snapshots.
fn describe_change(before: &Snapshot, after: &Snapshot) -> String {
    let new_events: Vec<String> = after.events[before.events.len().min(after.events.len())..]
        .iter()
        .map(|e| format!("{} {} {}", e.id, e.kind, e.task_id))
        .collect();
    format!(
        "the database changed: new events {new_events:?}, events equal {}, boards equal {}, \
         tasks equal {}, runs and comments equal {}, subscriptions {} -> {}, \
         tasks by status {:?} -> {:?}, live sessions {} -> {}, live claims {} -> {}, \
         backup directory {:?} -> {:?}",
        before.events == after.events,
        before.boards == after.boards,
        before.tasks == after.tasks,
        before.details == after.details,
        before.subscriptions.len(),
        after.subscriptions.len(),
        before.tasks_by_status,
        after.tasks_by_status,
        before.live_sessions,
        after.live_sessions,
        before.live_claims,
        after.live_claims,
        before.backups.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        after.backups.iter().map(|(p, _)| p).collect::<Vec<_>>(),
    )
}

/// The holder calls that carry a claim token.
#[derive(Debug, Clone, Copy)]
enum Holder {
    Renew,
    Heartbeat,
    Complete,
    Block,
    RequestReview,
    RequestChanges,
    Release,
    ReportExit,
}

impl Holder {
    const ALL: [Holder; 8] = [
        Holder::Renew,
        Holder::Heartbeat,
        Holder::Complete,
        Holder::Block,
        Holder::RequestReview,
        Holder::RequestChanges,
        Holder::Release,
        Holder::ReportExit,
    ];

    /// A request that would be valid with a valid token.
    fn call(self, token: &str) -> Call {
        let claim_token = token.to_owned();
        match self {
            Holder::Renew => Call::Renew(pb::RenewRequest { claim_token }),
            Holder::Heartbeat => Call::Heartbeat(pb::HeartbeatRequest {
                claim_token,
                note: "working".into(),
            }),
            Holder::Complete => Call::Complete(pb::CompleteRequest {
                claim_token,
                result: "done".into(),
                summary: "all done".into(),
                metadata: HashMap::new(),
            }),
            Holder::Block => Call::Block(pb::HolderBlockRequest {
                claim_token,
                reason: "stuck".into(),
                kind: pb::BlockKind::NeedsInput.into(),
            }),
            Holder::RequestReview => Call::RequestReview(pb::RequestReviewRequest {
                claim_token,
                summary: "look".into(),
            }),
            Holder::RequestChanges => Call::RequestChanges(pb::RequestChangesRequest {
                claim_token,
                reason: "fix it".into(),
            }),
            Holder::Release => Call::Release(pb::ReleaseRequest {
                claim_token,
                reason: "giving it back".into(),
            }),
            Holder::ReportExit => Call::ReportExit(pb::ReportExitRequest {
                claim_token,
                exit: Some(Exit::Code(1)),
                output_tail: "boom".into(),
            }),
        }
    }
}

/// The table: every RPC of Leases, Events, Notifications and Admin with its malformed requests.
fn cases(fx: &Fixture) -> Vec<Case<Call>> {
    use Call::*;
    let long = |n: usize| "x".repeat(n);
    let many = |n: usize, prefix: &str| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let session = || pb::OpenSessionRequest {
        machine_id: "m-bad".into(),
        ..session_request(WORKER, 60_000)
    };
    let subscribe = || pb::SubscribeRequest {
        task_id: MISSING_TASK.into(),
        platform: "telegram".into(),
        chat_id: "42".into(),
        thread_id: "7".into(),
        owner_profile: NOTIFIER.into(),
        mode: pb::DeliveryMode::Every.into(),
    };
    let preview = pb::DispatchPreviewRequest::default;
    let keep = |id: &str| pb::KeepAliveRequest {
        session_id: id.to_owned(),
    };
    let acquire = |session_id: &str, wait_ms: i64| {
        Acquire(pb::AcquireRequest {
            session_id: session_id.to_owned(),
            wait_ms,
        })
    };
    let close = |id: &str| {
        CloseSession(pb::CloseSessionRequest {
            session_id: id.to_owned(),
        })
    };
    let watch = pb::WatchRequest::default;
    let backup = |path: &str| {
        Backup(pb::BackupRequest {
            path: path.to_owned(),
        })
    };
    let existing = fx.existing.clone();
    let outside = fx
        .backups
        .join("..")
        .join("backup.db")
        .to_str()
        .expect("UTF-8 path")
        .to_owned();

    let mut table = vec![
        // Leases.OpenSession
        invalid(
            "OpenSession without profiles",
            "profiles",
            OpenSession(pb::OpenSessionRequest {
                profiles: vec![],
                ..session()
            }),
        ),
        invalid(
            "OpenSession with an empty profile",
            "profiles",
            OpenSession(pb::OpenSessionRequest {
                profiles: vec![String::new()],
                ..session()
            }),
        ),
        invalid(
            "OpenSession with profile \"a b\"",
            "profiles",
            OpenSession(pb::OpenSessionRequest {
                profiles: vec!["a b".into()],
                ..session()
            }),
        ),
        invalid(
            "OpenSession with 65 profiles",
            "profiles",
            OpenSession(pb::OpenSessionRequest {
                profiles: many(65, "p"),
                ..session()
            }),
        ),
        invalid(
            "OpenSession with ttl_ms 0",
            "ttl_ms",
            OpenSession(pb::OpenSessionRequest {
                ttl_ms: 0,
                ..session()
            }),
        ),
        invalid(
            "OpenSession with ttl_ms 999",
            "ttl_ms",
            OpenSession(pb::OpenSessionRequest {
                ttl_ms: 999,
                ..session()
            }),
        ),
        invalid(
            "OpenSession with ttl_ms 300001",
            "ttl_ms",
            OpenSession(pb::OpenSessionRequest {
                ttl_ms: 300_001,
                ..session()
            }),
        ),
        invalid(
            "OpenSession with 0 slots",
            "slots",
            OpenSession(pb::OpenSessionRequest {
                slots: 0,
                ..session()
            }),
        ),
        invalid(
            "OpenSession with 257 slots",
            "slots",
            OpenSession(pb::OpenSessionRequest {
                slots: 257,
                ..session()
            }),
        ),
        invalid(
            "OpenSession with an empty machine_id",
            "machine_id",
            OpenSession(pb::OpenSessionRequest {
                machine_id: String::new(),
                ..session()
            }),
        ),
        invalid(
            "OpenSession with a blank machine_id",
            "machine_id",
            OpenSession(pb::OpenSessionRequest {
                machine_id: " \t".into(),
                ..session()
            }),
        ),
        invalid(
            "OpenSession with a machine_id of 129 bytes",
            "machine_id",
            OpenSession(pb::OpenSessionRequest {
                machine_id: long(129),
                ..session()
            }),
        ),
        invalid(
            "OpenSession with a hostname of 257 bytes",
            "hostname",
            OpenSession(pb::OpenSessionRequest {
                hostname: long(257),
                ..session()
            }),
        ),
        invalid(
            "OpenSession with 65 capabilities",
            "capabilities",
            OpenSession(pb::OpenSessionRequest {
                capabilities: many(65, "c"),
                ..session()
            }),
        ),
        invalid(
            "OpenSession with capability \"gpu a100\"",
            "capabilities",
            OpenSession(pb::OpenSessionRequest {
                capabilities: vec!["gpu a100".into()],
                ..session()
            }),
        ),
        invalid(
            "OpenSession with an empty capability",
            "capabilities",
            OpenSession(pb::OpenSessionRequest {
                capabilities: vec![String::new()],
                ..session()
            }),
        ),
        // Leases.Acquire
        invalid(
            "Acquire with wait_ms -1",
            "wait_ms",
            acquire(&fx.session, -1),
        ),
        invalid(
            "Acquire with wait_ms 300001",
            "wait_ms",
            acquire(&fx.session, 300_001),
        ),
        invalid(
            "Acquire with wait_ms i64::MIN",
            "wait_ms",
            acquire(&fx.session, i64::MIN),
        ),
        invalid(
            "Acquire with an empty session id",
            "session_id",
            acquire("", 0),
        ),
        invalid(
            "Acquire with session id s_123",
            "session_id",
            acquire("s_123", 0),
        ),
        invalid(
            "Acquire with a task id as session id",
            "session_id",
            acquire(MISSING_TASK, 0),
        ),
        aborted(
            "Acquire for a session never opened",
            MISSING_SESSION,
            Lost::Any,
            acquire(MISSING_SESSION, 0),
        ),
        // Leases.CloseSession
        invalid("CloseSession with an empty id", "session_id", close("")),
        invalid("CloseSession with id s_123", "session_id", close("s_123")),
        invalid(
            "CloseSession with uppercase hex",
            "session_id",
            close("s_0123456789ABCDEF"),
        ),
        refused(
            "CloseSession of a session never opened",
            Code::NotFound,
            MISSING_SESSION,
            close(MISSING_SESSION),
        ),
        // Leases.KeepAlive
        invalid(
            "KeepAlive whose first message has an empty session id",
            "session_id",
            KeepAlive(vec![keep("")]),
        ),
        invalid(
            "KeepAlive whose first message has session id s_123",
            "session_id",
            KeepAlive(vec![keep("s_123")]),
        ),
        aborted(
            "KeepAlive for a session never opened",
            MISSING_SESSION,
            Lost::Any,
            KeepAlive(vec![keep(MISSING_SESSION)]),
        ),
        invalid(
            "KeepAlive whose second message names another session",
            "session_id",
            KeepAlive(vec![keep(&fx.session), keep(MISSING_SESSION)]),
        ),
    ];

    // Every holder call with tokens that are not live claims.
    for holder in Holder::ALL {
        for (what, token) in [
            ("an empty token", ""),
            ("token c_123", "c_123"),
            ("a task id as token", "t_0123456789abcdef"),
            ("a token with uppercase hex", "c_0123456789ABCDEF"),
        ] {
            table.push(invalid(
                format!("{holder:?} with {what}"),
                "claim_token",
                holder.call(token),
            ));
        }
        table.push(aborted(
            format!("{holder:?} with a token never issued"),
            "claim token",
            Lost::Is("unknown"),
            holder.call(MADE_UP_TOKEN),
        ));
        // The same call that ended a claim, retried, is answered as already recorded (see
        // retries.rs): not a stale use. Every other call on an ended claim is.
        if !matches!(holder, Holder::Release) {
            table.push(aborted(
                format!("{holder:?} with the token of a released claim"),
                "claim token",
                Lost::Is("unknown"),
                holder.call(&fx.released),
            ));
        }
        // The supervisor reports the worker's exit after the worker's own outcome, and that
        // report is accepted by design (it completes the run's record): not a stale use.
        if !matches!(holder, Holder::ReportExit | Holder::Complete) {
            table.push(aborted(
                format!("{holder:?} with the token of a completed claim"),
                "claim token",
                Lost::Is("unknown"),
                holder.call(&fx.completed),
            ));
        }
    }

    // Bad fields with live tokens: a request taken as valid would end the claim.
    let held = fx.held.as_str();
    let complete = || pb::CompleteRequest {
        claim_token: held.to_owned(),
        result: "done".into(),
        summary: "all done".into(),
        metadata: HashMap::new(),
    };
    let block = || pb::HolderBlockRequest {
        claim_token: held.to_owned(),
        reason: "stuck".into(),
        kind: pb::BlockKind::NeedsInput.into(),
    };
    let changes = |reason: String| {
        RequestChanges(pb::RequestChangesRequest {
            claim_token: fx.review.clone(),
            reason,
        })
    };
    let exit = |exit: Option<Exit>, output_tail: String| {
        ReportExit(pb::ReportExitRequest {
            claim_token: held.to_owned(),
            exit,
            output_tail,
        })
    };
    table.extend([
        invalid(
            "Heartbeat with a note of 4097 bytes",
            "note",
            Heartbeat(pb::HeartbeatRequest {
                claim_token: held.to_owned(),
                note: long(4097),
            }),
        ),
        invalid(
            "Heartbeat with a NUL in the note",
            "note",
            Heartbeat(pb::HeartbeatRequest {
                claim_token: held.to_owned(),
                note: "a\0b".into(),
            }),
        ),
        invalid(
            "Complete with a result of 262145 bytes",
            "result",
            Complete(pb::CompleteRequest {
                result: long(262_145),
                ..complete()
            }),
        ),
        invalid(
            "Complete with a summary of 4097 bytes",
            "summary",
            Complete(pb::CompleteRequest {
                summary: long(4097),
                ..complete()
            }),
        ),
        invalid(
            "Complete with 65 metadata entries",
            "metadata",
            Complete(pb::CompleteRequest {
                metadata: (0..65).map(|i| (format!("k{i}"), "v".into())).collect(),
                ..complete()
            }),
        ),
        invalid(
            "Complete with a blank metadata key",
            "metadata",
            Complete(pb::CompleteRequest {
                metadata: [(" ".to_owned(), "v".to_owned())].into(),
                ..complete()
            }),
        ),
        invalid(
            "Block with kind 42",
            "kind",
            Block(pb::HolderBlockRequest {
                kind: 42,
                ..block()
            }),
        ),
        invalid(
            "Block with kind -1",
            "kind",
            Block(pb::HolderBlockRequest {
                kind: -1,
                ..block()
            }),
        ),
        invalid(
            "Block with a reason of 4097 bytes",
            "reason",
            Block(pb::HolderBlockRequest {
                reason: long(4097),
                ..block()
            }),
        ),
        invalid(
            "RequestReview with a summary of 4097 bytes",
            "summary",
            RequestReview(pb::RequestReviewRequest {
                claim_token: held.to_owned(),
                summary: long(4097),
            }),
        ),
        invalid(
            "RequestChanges with an empty reason",
            "reason",
            changes(String::new()),
        ),
        invalid(
            "RequestChanges with a blank reason",
            "reason",
            changes(" \n\t ".into()),
        ),
        invalid(
            "RequestChanges with a reason of 4097 bytes",
            "reason",
            changes(long(4097)),
        ),
        invalid(
            "Release with a reason of 4097 bytes",
            "reason",
            Release(pb::ReleaseRequest {
                claim_token: held.to_owned(),
                reason: long(4097),
            }),
        ),
        invalid(
            "ReportExit without an exit",
            "exit",
            exit(None, String::new()),
        ),
        invalid(
            "ReportExit with spawn_failed false",
            "exit",
            exit(Some(Exit::SpawnFailed(false)), String::new()),
        ),
        invalid(
            "ReportExit with signal 0",
            "signal",
            exit(Some(Exit::Signal(0)), String::new()),
        ),
        invalid(
            "ReportExit with signal -9",
            "signal",
            exit(Some(Exit::Signal(-9)), String::new()),
        ),
        invalid(
            "ReportExit with an output tail of 4097 bytes",
            "output_tail",
            exit(Some(Exit::Code(1)), long(4097)),
        ),
    ]);

    table.extend([
        // Events.Watch
        invalid(
            "Watch with task id t_123",
            "task_id",
            Watch(pb::WatchRequest {
                task_id: "t_123".into(),
                ..watch()
            }),
        ),
        invalid(
            "Watch with a session id as task id",
            "task_id",
            Watch(pb::WatchRequest {
                task_id: MISSING_SESSION.into(),
                ..watch()
            }),
        ),
        invalid(
            "Watch with board \"Bad Slug\"",
            "board",
            Watch(pb::WatchRequest {
                board: "Bad Slug".into(),
                ..watch()
            }),
        ),
        invalid(
            "Watch with 65 kinds",
            "kinds",
            Watch(pb::WatchRequest {
                kinds: many(65, "kind"),
                ..watch()
            }),
        ),
        invalid(
            "Watch with a blank kind",
            "kinds",
            Watch(pb::WatchRequest {
                kinds: vec!["completed".into(), "  ".into()],
                ..watch()
            }),
        ),
        invalid(
            "Watch with an empty kind",
            "kinds",
            Watch(pb::WatchRequest {
                kinds: vec![String::new()],
                ..watch()
            }),
        ),
        invalid(
            "Watch with assignee \"a b\"",
            "assignee",
            Watch(pb::WatchRequest {
                assignee: "a b".into(),
                ..watch()
            }),
        ),
        invalid(
            "Watch with after_id beyond i64",
            "after_id",
            Watch(pb::WatchRequest {
                after_id: u64::MAX,
                ..watch()
            }),
        ),
        invalid(
            "Watch from the newest event and after an id at once",
            "after_id",
            Watch(pb::WatchRequest {
                after_id: 1,
                from_newest: true,
                ..watch()
            }),
        ),
        // Notifications.Subscribe
        invalid(
            "Subscribe with an empty task id",
            "task_id",
            Subscribe(pb::SubscribeRequest {
                task_id: String::new(),
                ..subscribe()
            }),
        ),
        invalid(
            "Subscribe with task id t_123",
            "task_id",
            Subscribe(pb::SubscribeRequest {
                task_id: "t_123".into(),
                ..subscribe()
            }),
        ),
        refused(
            "Subscribe to a task never created",
            Code::NotFound,
            MISSING_TASK,
            Subscribe(subscribe()),
        ),
        invalid(
            "Subscribe with an empty owner_profile",
            "owner_profile",
            Subscribe(pb::SubscribeRequest {
                owner_profile: String::new(),
                ..subscribe()
            }),
        ),
        invalid(
            "Subscribe with owner_profile \"a b\"",
            "owner_profile",
            Subscribe(pb::SubscribeRequest {
                owner_profile: "a b".into(),
                ..subscribe()
            }),
        ),
        invalid(
            "Subscribe with mode 7",
            "mode",
            Subscribe(pb::SubscribeRequest {
                mode: 7,
                ..subscribe()
            }),
        ),
        invalid(
            "Subscribe with a platform of 129 bytes",
            "platform",
            Subscribe(pb::SubscribeRequest {
                platform: long(129),
                ..subscribe()
            }),
        ),
        invalid(
            "Subscribe with a chat_id of 257 bytes",
            "chat_id",
            Subscribe(pb::SubscribeRequest {
                chat_id: long(257),
                ..subscribe()
            }),
        ),
        invalid(
            "Subscribe with a thread_id of 257 bytes",
            "thread_id",
            Subscribe(pb::SubscribeRequest {
                thread_id: long(257),
                ..subscribe()
            }),
        ),
        // Notifications.Unsubscribe
        invalid(
            "Unsubscribe with an empty id",
            "id",
            Unsubscribe(pb::UnsubscribeRequest { id: String::new() }),
        ),
        invalid(
            "Unsubscribe with id n_123",
            "id",
            Unsubscribe(pb::UnsubscribeRequest { id: "n_123".into() }),
        ),
        refused(
            "Unsubscribe from a subscription never made",
            Code::NotFound,
            MISSING_SUBSCRIPTION,
            Unsubscribe(pb::UnsubscribeRequest {
                id: MISSING_SUBSCRIPTION.into(),
            }),
        ),
        // Notifications.ListSubscriptions
        invalid(
            "ListSubscriptions with owner \"a b\"",
            "owner_profile",
            ListSubscriptions(pb::ListSubscriptionsRequest {
                owner_profile: "a b".into(),
            }),
        ),
        invalid(
            "ListSubscriptions with an owner of 65 bytes",
            "owner_profile",
            ListSubscriptions(pb::ListSubscriptionsRequest {
                owner_profile: "p".repeat(65),
            }),
        ),
        invalid(
            "ListSubscriptions without an owner",
            "owner_profile",
            ListSubscriptions(pb::ListSubscriptionsRequest {
                owner_profile: String::new(),
            }),
        ),
        // Notifications.Deliver
        invalid(
            "Deliver with an empty profile name",
            "profiles",
            Deliver(pb::DeliverRequest {
                profiles: vec![String::new()],
            }),
        ),
        invalid(
            "Deliver without profiles",
            "profiles",
            Deliver(pb::DeliverRequest { profiles: vec![] }),
        ),
        invalid(
            "Deliver with 65 profiles",
            "profiles",
            Deliver(pb::DeliverRequest {
                profiles: many(65, "p"),
            }),
        ),
        invalid(
            "Deliver with profile \"a b\"",
            "profiles",
            Deliver(pb::DeliverRequest {
                profiles: vec![NOTIFIER.into(), "a b".into()],
            }),
        ),
        // Notifications.Ack
        invalid(
            "Ack with subscription id n_123",
            "subscription_id",
            Ack(pb::AckRequest {
                subscription_id: "n_123".into(),
                event_id: 1,
            }),
        ),
        invalid(
            "Ack with an empty subscription id",
            "subscription_id",
            Ack(pb::AckRequest {
                subscription_id: String::new(),
                event_id: 1,
            }),
        ),
        refused(
            "Ack of a subscription never made",
            Code::NotFound,
            MISSING_SUBSCRIPTION,
            Ack(pb::AckRequest {
                subscription_id: MISSING_SUBSCRIPTION.into(),
                event_id: 1,
            }),
        ),
        invalid(
            "Ack beyond the newest event",
            "event_id",
            Ack(pb::AckRequest {
                subscription_id: fx.subscription.clone(),
                event_id: 1_000_000,
            }),
        ),
        invalid(
            "Ack with event_id beyond i64",
            "event_id",
            Ack(pb::AckRequest {
                subscription_id: fx.subscription.clone(),
                event_id: u64::MAX,
            }),
        ),
        // Admin.DispatchPreview
        invalid(
            "DispatchPreview describing a session without profiles",
            "profiles",
            DispatchPreview(preview()),
        ),
        invalid(
            "DispatchPreview with an empty profile name",
            "profiles",
            DispatchPreview(pb::DispatchPreviewRequest {
                profiles: vec![String::new()],
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with 65 profiles",
            "profiles",
            DispatchPreview(pb::DispatchPreviewRequest {
                profiles: many(65, "p"),
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with profile \"a b\"",
            "profiles",
            DispatchPreview(pb::DispatchPreviewRequest {
                profiles: vec!["a b".into()],
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with capability \"gpu a100\"",
            "capabilities",
            DispatchPreview(pb::DispatchPreviewRequest {
                profiles: vec![WORKER.into()],
                capabilities: vec!["gpu a100".into()],
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with 65 capabilities",
            "capabilities",
            DispatchPreview(pb::DispatchPreviewRequest {
                profiles: vec![WORKER.into()],
                capabilities: many(65, "c"),
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with a machine_id of 129 bytes",
            "machine_id",
            DispatchPreview(pb::DispatchPreviewRequest {
                profiles: vec![WORKER.into()],
                machine_id: long(129),
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with session id s_123",
            "session_id",
            DispatchPreview(pb::DispatchPreviewRequest {
                session_id: "s_123".into(),
                ..preview()
            }),
        ),
        aborted(
            "DispatchPreview for a session never opened",
            MISSING_SESSION,
            Lost::Any,
            DispatchPreview(pb::DispatchPreviewRequest {
                session_id: MISSING_SESSION.into(),
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with page_size 1001",
            "page_size",
            DispatchPreview(pb::DispatchPreviewRequest {
                session_id: fx.session.clone(),
                page_size: 1001,
                ..preview()
            }),
        ),
        invalid(
            "DispatchPreview with board \"Bad Slug\"",
            "board",
            DispatchPreview(pb::DispatchPreviewRequest {
                session_id: fx.session.clone(),
                board: "Bad Slug".into(),
                ..preview()
            }),
        ),
        // Admin.Backup
        invalid("Backup with an empty path", "path", backup("")),
        invalid("Backup with a blank path", "path", backup("  ")),
        invalid(
            "Backup to a relative path",
            "path",
            backup(&format!("./{RELATIVE_BACKUP}")),
        ),
        invalid("Backup to an absolute path", "path", backup(&outside)),
        invalid("Backup up and out", "path", backup("../backup.db")),
        invalid("Backup to a hidden name", "path", backup(".backup.db")),
        refused(
            "Backup over an existing file",
            Code::AlreadyExists,
            &existing,
            backup(&existing),
        ),
        // Admin.SetStorageLimit takes any number: nothing to refuse. Stats and
        // CheckInvariants take nothing and must answer.
        succeeds("Stats", Stats),
        succeeds("CheckInvariants", CheckInvariants),
    ]);
    table
}

/// Sets up the fixture over one transport, sends the whole table over it, and checks every
/// answer and that nothing changed.
async fn run_table(transport: &str) {
    let service = spawn_service().await;
    let mut client = match transport {
        "tcp" => service.tcp.clone(),
        _ => service.unix.clone(),
    };
    let fx = fixture(
        &mut client,
        service.data_dir.join(kanband::store::BACKUP_DIR),
    )
    .await;
    let relative = std::env::current_dir()
        .expect("the working directory")
        .join(RELATIVE_BACKUP);
    assert!(!relative.exists(), "{} is left over", relative.display());

    let before = snapshot(&mut client, &fx).await;
    let table = cases(&fx);
    let mut failures = refusal::run(&table, |call| send(client.clone(), call)).await;
    let after = snapshot(&mut client, &fx).await;
    if after != before {
        failures.push(describe_change(&before, &after));
    }
    if relative.exists() {
        let _ = std::fs::remove_file(&relative);
        failures.push(format!(
            "a relative backup was written to {}",
            relative.display()
        ));
    }

    refusal::assert_none(
        &failures,
        &format!("over {transport}, {} malformed requests", table.len()),
    );
}

#[tokio::test]
async fn malformed_lease_event_notification_and_admin_requests_change_nothing_over_tcp() {
    run_table("tcp").await;
}

#[tokio::test]
async fn malformed_lease_event_notification_and_admin_requests_change_nothing_over_unix() {
    run_table("unix").await;
}
