//! Concurrency ledger: many sessions acquire from one board at once over TCP, and no task is
//! ever held twice at the same time. Every grant and every outcome is recorded in a shared
//! ledger in the order the workers observe them; the ledger and the server's event log are
//! then checked against each other.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use kanband_gateway::Client;
use kanband_proto::pb::{self, TaskStatus};
use kanband_tests::calls::{
    CODER, complete, create_with, events_where, heartbeat, new_task, open_session_with, release,
    renew, session_request, stats, try_acquire,
};
use kanband_tests::spawn_service;

const BOARD: &str = "stress";
const TASKS: usize = 300;
const SESSIONS: usize = 16;
const SLOTS: u32 = 2;
/// Releases stop at this epoch, so that no task reaches the limit of claims in a row without
/// an outcome (5) and every task eventually completes.
const LAST_RELEASED_EPOCH: u64 = 3;
/// The whole run must end within this much real time.
const LIMIT: Duration = Duration::from_secs(60);

/// What a worker saw, in the order it saw it (the ledger's order is a real-time order).
#[derive(Debug, Clone)]
enum Entry {
    /// A grant arrived.
    Granted {
        task: String,
        epoch: u64,
        token: String,
    },
    /// The holder is about to give the claim up (complete or release).
    Finishing { token: String, complete: bool },
    /// The server acknowledged that.
    Acked { token: String, status: TaskStatus },
}

#[derive(Debug, Default)]
struct Ledger {
    entries: Mutex<Vec<Entry>>,
    errors: Mutex<Vec<String>>,
    completed: AtomicUsize,
    abort: AtomicBool,
}

impl Ledger {
    fn record(&self, entry: Entry) {
        self.entries.lock().expect("ledger lock").push(entry);
    }

    fn fail(&self, error: String) {
        self.errors.lock().expect("errors lock").push(error);
        self.abort.store(true, Ordering::SeqCst);
    }

    fn finished(&self) -> bool {
        self.abort.load(Ordering::SeqCst) || self.completed.load(Ordering::SeqCst) >= TASKS
    }
}

/// A small deterministic generator (xorshift64*), one per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One slot of a session: acquire, maybe renew, then complete or release, until every task is
/// done.
async fn worker(mut client: Client, session_id: String, seed: u64, ledger: Arc<Ledger>) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    while !ledger.finished() {
        let grant = match try_acquire(&mut client, &session_id, 2_000).await {
            Ok(Some(grant)) => grant,
            Ok(None) => continue,
            Err(status) => return ledger.fail(format!("Acquire: {status:?}")),
        };
        let task = grant.task.as_ref().expect("task").id.clone();
        let token = grant.claim_token.clone();
        ledger.record(Entry::Granted {
            task: task.clone(),
            epoch: grant.epoch,
            token: token.clone(),
        });
        if rng.chance(20)
            && let Err(status) = renew(&mut client, &token).await
        {
            return ledger.fail(format!("Renew {task}: {status:?}"));
        }
        if rng.chance(20)
            && let Err(status) = heartbeat(&mut client, &token).await
        {
            return ledger.fail(format!("Heartbeat {task}: {status:?}"));
        }
        let finish = grant.epoch > LAST_RELEASED_EPOCH || rng.chance(60);
        ledger.record(Entry::Finishing {
            token: token.clone(),
            complete: finish,
        });
        let answer = if finish {
            complete(&mut client, &token).await
        } else {
            release(&mut client, &token).await
        };
        match answer {
            Ok(after) => {
                ledger.record(Entry::Acked {
                    token,
                    status: after.status(),
                });
                if finish {
                    ledger.completed.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(status) => {
                return ledger.fail(format!(
                    "{} {task} epoch {}: {status:?}",
                    if finish { "Complete" } else { "Release" },
                    grant.epoch
                ));
            }
        }
    }
}

/// Checks the ledger: per task, grants come with strictly increasing epochs, never twice for
/// one epoch, and only after the previous holder started giving the claim up; every claim
/// given up was acknowledged with the right status. Returns the grants per task.
fn check_ledger(entries: &[Entry]) -> BTreeMap<String, Vec<u64>> {
    let mut grants: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut holder: HashMap<String, String> = HashMap::new();
    let mut task_of: HashMap<String, String> = HashMap::new();
    let mut finishing: HashMap<String, bool> = HashMap::new();
    let mut acked: HashSet<String> = HashSet::new();
    for (at, entry) in entries.iter().enumerate() {
        match entry {
            Entry::Granted { task, epoch, token } => {
                assert!(
                    seen.insert((task.clone(), *epoch)),
                    "entry {at}: task {task} epoch {epoch} was granted twice"
                );
                let epochs = grants.entry(task.clone()).or_default();
                if let Some(last) = epochs.last() {
                    assert!(
                        epoch > last,
                        "entry {at}: task {task} granted epoch {epoch} after epoch {last}"
                    );
                }
                epochs.push(*epoch);
                if let Some(previous) = holder.insert(task.clone(), token.clone()) {
                    assert!(
                        finishing.contains_key(&previous),
                        "entry {at}: task {task} granted again (epoch {epoch}) while the holder \
                         of {previous} had not given it up"
                    );
                }
                task_of.insert(token.clone(), task.clone());
            }
            Entry::Finishing { token, complete } => {
                assert!(
                    finishing.insert(token.clone(), *complete).is_none(),
                    "entry {at}: {token} given up twice"
                );
            }
            Entry::Acked { token, status } => {
                let complete = finishing[token];
                let want = if complete {
                    TaskStatus::Done
                } else {
                    TaskStatus::Ready
                };
                assert_eq!(
                    *status,
                    want,
                    "entry {at}: task {} after {}",
                    task_of[token],
                    if complete { "Complete" } else { "Release" }
                );
                assert!(acked.insert(token.clone()), "entry {at}: acked twice");
            }
        }
    }
    assert_eq!(
        acked.len(),
        task_of.len(),
        "every claim was given up and acknowledged"
    );
    grants
}

/// Kinds of events that end a claim.
const ENDINGS: &[&str] = &[
    "completed",
    "released",
    "expired",
    "blocked",
    "review_requested",
    "changes_requested",
    "crashed",
    "requeued",
    "revoked",
];

/// Checks the event log: per task, `claimed` alternates with an ending, starting with
/// `claimed`, claims carry strictly increasing epochs, and the last event is `completed`.
fn check_events(events: &[pb::Event], grants: &BTreeMap<String, Vec<u64>>) {
    let mut per_task: BTreeMap<&str, Vec<&pb::Event>> = BTreeMap::new();
    for event in events {
        if !event.task_id.is_empty() {
            per_task.entry(&event.task_id).or_default().push(event);
        }
    }
    assert_eq!(per_task.len(), TASKS, "every task has events");
    for (task, events) in per_task {
        let mut holding = false;
        let mut last_epoch = 0;
        let mut claims = Vec::new();
        for event in &events {
            if event.kind == "claimed" {
                assert!(
                    !holding,
                    "task {task}: two `claimed` in a row: {:?}",
                    kinds_of(&events)
                );
                let epoch: u64 = event.details["epoch"].parse().expect("epoch");
                assert!(epoch > last_epoch, "task {task}: epochs {:?}", claims);
                last_epoch = epoch;
                claims.push(epoch);
                holding = true;
            } else if ENDINGS.contains(&event.kind.as_str()) {
                assert!(
                    holding,
                    "task {task}: `{}` without a claim: {:?}",
                    event.kind,
                    kinds_of(&events)
                );
                holding = false;
            }
        }
        assert!(!holding, "task {task}: still claimed at the end");
        assert_eq!(
            events.last().map(|e| e.kind.as_str()),
            Some("completed"),
            "task {task}: {:?}",
            kinds_of(&events)
        );
        let granted = &grants[task];
        assert!(
            granted.iter().all(|epoch| claims.contains(epoch)),
            "task {task}: granted epochs {granted:?} are claims in the log {claims:?}"
        );
    }
}

fn kinds_of<'a>(events: &[&'a pb::Event]) -> Vec<&'a str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_never_hold_the_same_task_at_once() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    client
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: BOARD.into(),
            default_assignee: CODER.into(),
            ..Default::default()
        })
        .await
        .expect("CreateBoard");

    let creators: Vec<_> = (0..8)
        .map(|creator| {
            let mut client = client.clone();
            tokio::spawn(async move {
                for n in (creator..TASKS).step_by(8) {
                    let request = pb::CreateTaskRequest {
                        priority: (n % 7) as i32,
                        ..new_task(BOARD, &format!("task {n}"))
                    };
                    create_with(&mut client, request).await;
                }
            })
        })
        .collect();
    for creator in creators {
        creator.await.expect("creator");
    }

    let ledger = Arc::new(Ledger::default());
    let mut workers = Vec::new();
    for s in 0..SESSIONS {
        let mut own = Client::connect(service.tcp_target())
            .await
            .expect("a connection per session");
        let session = open_session_with(
            &mut own,
            pb::OpenSessionRequest {
                machine_id: format!("machine-{s}"),
                slots: SLOTS,
                ..session_request(CODER, 300_000)
            },
        )
        .await;
        for slot in 0..SLOTS {
            let seed = (s as u64) << 8 | u64::from(slot);
            workers.push(tokio::spawn(worker(
                own.clone(),
                session.id.clone(),
                seed,
                ledger.clone(),
            )));
        }
    }
    let all = async {
        for worker in workers {
            worker.await.expect("a worker does not panic");
        }
    };
    if tokio::time::timeout(LIMIT, all).await.is_err() {
        ledger.abort.store(true, Ordering::SeqCst);
        panic!(
            "not done within {LIMIT:?}: {} of {TASKS} completed",
            ledger.completed.load(Ordering::SeqCst)
        );
    }
    let errors = ledger.errors.lock().expect("errors").clone();
    assert!(errors.is_empty(), "refused holder calls: {errors:#?}");

    let entries = ledger.entries.lock().expect("ledger").clone();
    let grants = check_ledger(&entries);
    assert_eq!(grants.len(), TASKS, "every task was granted");
    assert!(
        grants.values().any(|epochs| epochs.len() > 1),
        "some tasks were released and granted again"
    );

    let done = kanband_tests::calls::all_tasks(&mut client, BOARD, &[TaskStatus::Done]).await;
    assert_eq!(done.len(), TASKS, "every task ends done");
    assert_eq!(
        kanband_tests::calls::all_tasks(&mut client, BOARD, &[])
            .await
            .len(),
        TASKS
    );
    for task in &done {
        assert_eq!(
            Some(&task.epoch),
            grants[&task.id].last(),
            "task {}: its epoch is its last grant",
            task.id
        );
    }
    let now = stats(&mut client).await;
    assert_eq!(now.live_claims, 0);
    assert_eq!(now.live_sessions, SESSIONS as u64);

    check_events(&events_where(&mut client, BOARD, "").await, &grants);
}
