//! The one door below the gRPC layer: the [`Coordinator`] owns the store, the lease machinery
//! and the dispatcher, and is the only way the gRPC services reach leases.
//!
//! Every lease call goes through a method here: opening, keeping alive and closing a session,
//! `Acquire`, renewals, and every holder call on a claim (heartbeat, complete, block, review,
//! changes, release, exit report). The board, task, event and notification operations need no
//! lease state and go to [`Coordinator::store`]. It also runs the two background tasks: the
//! deadline loop ([`crate::leases::expiry`]) and the dispatcher.

use std::{
    collections::BTreeMap,
    future::Future,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::{mpsc, watch};

pub use crate::leases::registry::{LiveSession, Push};
use crate::{
    auth::TokenBook,
    clock::now_ms,
    domain::{
        Author, BlockKind,
        dispatch::{self, SessionView, WhyNot},
        ids,
        lease::{Exit, LeaseLost, Use},
        limits::WAIT_MAX_MS,
    },
    error::{Error, Result},
    leases::{
        dispatcher::Dispatcher,
        expiry::{self, Retries},
        persist,
        registry::Registry,
        timers::Deadline,
    },
    settings::Settings,
    store::{
        BACKUP_DIR, BackupReport, Finish, OpenError, Store,
        model::{ClaimRecord, Ended, Grant, SessionRecord, Task},
    },
    streams::{ConnStreams, Pool, Slot, StreamSlots},
};

/// Longest a non-waiting `Acquire` waits for the dispatcher's answer.
const ONCE_LIMIT: Duration = Duration::from_secs(5);

/// The service's shared state, behind the gRPC layer.
#[derive(Debug)]
pub struct Coordinator {
    /// The single owner of the database; shared with the deadline loop's actions.
    store: Arc<Store>,
    /// Live sessions, claims and every timer.
    registry: Arc<Registry>,
    /// Deadlines whose action failed, waiting to be tried again.
    retries: Arc<Retries>,
    /// Waiting pollers.
    dispatcher: Dispatcher,
    /// How long a stream may leave its buffer full before it is cut off.
    watcher_stall: Duration,
    /// Places for open watch and delivery streams.
    streams: StreamSlots,
    /// The one directory `Admin.Backup` writes into.
    backup_dir: PathBuf,
    /// Set once shutdown begins: no more grants.
    draining: AtomicBool,
    /// Streams end when this turns true.
    stopping: watch::Sender<bool>,
    /// The live bearer tokens.
    tokens: TokenBook,
    /// The admin token written at first start, if its file is still there.
    admin_token_file: Option<PathBuf>,
}

/// What `Admin.Stats` reports of the lease machinery.
#[derive(Debug, Clone, Copy)]
pub struct LeaseStats {
    /// Open sessions.
    pub live_sessions: usize,
    /// Unended claims.
    pub live_claims: usize,
    /// Expiry lag: (count, p50, p99, max) in microseconds.
    pub expiry_lag_us: (u64, u64, u64, u64),
    /// `Acquire` calls waiting now.
    pub waiting_pollers: usize,
    /// Deadlines whose action failed (a full disk) and waits to be tried again.
    pub deadlines_retrying: usize,
}

/// One row of a dispatch preview.
#[derive(Debug, Clone)]
pub struct PreviewRow {
    /// The candidate.
    pub task: Task,
    /// The first candidate the session would be granted now.
    pub would_grant: bool,
    /// Why it would not be granted, if it would not.
    pub why_not: Option<WhyNot>,
}

impl Coordinator {
    /// Opens the store in `data_dir` and restores every live lease and recorded deadline.
    pub async fn open(data_dir: &Path, settings: Settings) -> Result<Coordinator, OpenError> {
        let watcher_stall = settings.watcher_stall;
        let attachment_max_bytes = settings.attachment_max_bytes;
        let streams = StreamSlots::new(settings.streams);
        let backup_dir = settings
            .backup_dir
            .clone()
            .unwrap_or_else(|| data_dir.join(BACKUP_DIR));
        let registry = Arc::new(Registry::new(settings));
        let store = Store::open(data_dir, registry.clone(), attachment_max_bytes).await?;
        let setup = |what: &str, err: Error| OpenError::Setup {
            path: store.path().to_owned(),
            reason: format!("cannot {what}: {err}"),
        };
        let (sessions, claims, rearmed) = store
            .restore_leases()
            .await
            .map_err(|err| setup("restore leases", err))?;
        if sessions + claims > 0 {
            tracing::info!(
                sessions,
                claims,
                rearmed = rearmed.len(),
                "restored leases with a full TTL from now"
            );
        }
        // A full disk does not stop start-up: what it could not write is retried once serving.
        let retries = Arc::new(Retries::default());
        if let Err(err) = store.record_rearmed(rearmed.clone()).await {
            tracing::warn!(
                error = %err,
                claims = rearmed.len(),
                "cannot write the lease_rearmed events and the restored deadlines at start-up; \
                 retrying with backoff"
            );
            let now = tokio::time::Instant::now();
            for token in rearmed {
                retries.failed(Deadline::Rearmed(token), now);
            }
        }
        let deadlines = store
            .recorded_deadlines()
            .await
            .map_err(|err| setup("load deadlines", err))?;
        registry.apply(deadlines);
        let latest = store
            .latest_event_id()
            .await
            .map_err(|err| setup("read the event log", err))?;
        registry.publish_event_id(latest);
        let (tokens, admin_token_file) = TokenBook::open(&store, data_dir)
            .await
            .map_err(|err| setup("load the tokens", err))?;
        let (stopping, _) = watch::channel(false);
        Ok(Coordinator {
            store: Arc::new(store),
            registry,
            retries,
            dispatcher: Dispatcher::default(),
            watcher_stall,
            streams,
            backup_dir,
            draining: AtomicBool::new(false),
            stopping,
            tokens,
            admin_token_file,
        })
    }

    /// The live bearer tokens.
    pub fn tokens(&self) -> &TokenBook {
        &self.tokens
    }

    /// The file holding the admin token written at first start, if it is still there.
    pub fn admin_token_file(&self) -> Option<&Path> {
        self.admin_token_file.as_deref()
    }

    /// The claim `token`, if it is live now (its deadline not passed).
    pub fn live_claim(&self, token: &str) -> Option<ClaimRecord> {
        self.registry.live_claim(token)
    }

    /// Who opened the open session `session_id` (its owner key); `None` if it is not open.
    pub fn session_owner(&self, session_id: &str) -> Option<String> {
        self.registry.session(session_id).map(|s| s.owner)
    }

    /// Who opened the session holding the live claim `token`; `None` if the claim is not live.
    pub fn claim_owner(&self, token: &str) -> Option<String> {
        let claim = self.registry.live_claim(token)?;
        self.session_owner(&claim.session_id)
    }

    /// The store, for the operations that need no lease state (boards, tasks, links, comments,
    /// events, notifications, the invariant check, backups). Lease operations are methods of
    /// the coordinator.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolves when the service starts shutting down; streams end on it.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    }

    /// Stops granting: tells every session to drain, answers waiting pollers UNAVAILABLE, and
    /// ends keep-alive streams.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.registry.drain_all();
        self.dispatcher.close();
        let _ = self.stopping.send(true);
    }

    /// Acts on deadlines as they pass, and persists the deadlines renewals moved, until `stop`
    /// resolves.
    pub async fn run_timers(&self, stop: impl Future<Output = ()>) {
        let expiry = expiry::run(
            self.store.clone(),
            self.registry.clone(),
            self.retries.clone(),
            stop,
        );
        tokio::select! {
            () = expiry => {}
            () = persist::run(&self.store, &self.registry) => {}
        }
    }

    /// Serves waiting pollers until the future is dropped.
    pub async fn run_dispatcher(&self) {
        self.dispatcher.run(&self.store, &self.registry).await;
    }

    /// Writes a consistent copy of the database to the file `name` in the backup directory,
    /// and the attachment blobs it names beside it.
    pub async fn backup(&self, name: String) -> Result<BackupReport> {
        self.store.backup(self.backup_dir.clone(), name).await
    }

    /// Persists every lease deadline that is behind, then checkpoints and closes the store.
    /// Fails if a background task still holds it.
    pub async fn close(self) -> anyhow::Result<()> {
        persist::flush_all(&self.store, &self.registry).await;
        let store = Arc::try_unwrap(self.store)
            .map_err(|_| anyhow::anyhow!("the store is still in use at shutdown"))?;
        store.close().await?;
        Ok(())
    }

    // Streams.

    /// How long a stream may leave its buffer full (its client not reading) before it is cut.
    pub fn watcher_stall(&self) -> Duration {
        self.watcher_stall
    }

    /// Takes a place for a stream in `pool`, charged to the connection it came over (if
    /// any), until the slot is dropped.
    pub fn stream_slot(&self, pool: Pool, conn: Option<&ConnStreams>) -> Result<Slot> {
        self.streams.take(pool, conn)
    }

    /// A receiver of the newest committed event id (watchers wait on it).
    pub fn event_ids(&self) -> watch::Receiver<i64> {
        self.registry.event_ids()
    }

    // Sessions.

    /// Opens a session (its record already validated, with a fresh id).
    pub async fn open_session(&self, record: SessionRecord) -> Result<SessionRecord> {
        self.store.open_session(record).await
    }

    /// Closes a session at its holder's request (`caller`); returns how many claims were
    /// released.
    pub async fn close_session(&self, id: String, caller: Author) -> Result<u32> {
        self.store.close_session(id, caller).await
    }

    /// Binds a keep-alive stream to an open session, replacing an earlier one; returns the
    /// receiver of what the server pushes to the holder.
    pub fn keep_alive(&self, session_id: &str) -> Result<mpsc::Receiver<Push>> {
        self.registry
            .attach(session_id)
            .ok_or_else(|| Error::session_lost(session_id))
    }

    /// Renews a session and every live claim it holds, in memory; returns the TTL and the
    /// renewed tokens.
    pub fn renew_session(&self, session_id: &str) -> Result<(u32, Vec<String>)> {
        self.registry
            .renew_session(session_id)
            .map_err(|_| Error::session_lost(session_id))
    }

    // Claims.

    /// Refuses an acquire that would be refused before waiting: a wait outside its range, a
    /// malformed or unknown session, a kanband shutting down. `Leases.CompleteAndAcquire`
    /// asks before its complete, so that such a call changes nothing.
    pub fn check_acquire(&self, session_id: &str, wait_ms: i64) -> Result<()> {
        if !(0..=WAIT_MAX_MS).contains(&wait_ms) {
            return Err(Error::invalid(
                "wait_ms",
                format!("{wait_ms} is outside 0..={WAIT_MAX_MS}"),
            ));
        }
        ids::check("session_id", ids::SESSION, session_id)?;
        if self.draining.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(
                "kanband is shutting down; acquire again later".into(),
            ));
        }
        if self.registry.session(session_id).is_none() {
            return Err(Error::session_lost(session_id));
        }
        Ok(())
    }

    /// Long poll for a grant (see `Leases.Acquire`).
    pub async fn acquire(&self, session_id: String, wait_ms: i64) -> Result<Option<Grant>> {
        self.check_acquire(&session_id, wait_ms)?;
        let mut answer = self.dispatcher.enqueue(session_id, wait_ms == 0)?;
        self.registry.poke();
        // A poller that does not wait still gets its one answer from the dispatcher.
        let limit = if wait_ms == 0 {
            ONCE_LIMIT
        } else {
            Duration::from_millis(wait_ms as u64)
        };
        let result = match tokio::time::timeout(limit, &mut answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Unavailable("kanband is shutting down".into())),
            Err(_) => {
                // Close first, then look: a grant sent just before the close is still taken.
                answer.close();
                answer.try_recv().unwrap_or(Ok(None))
            }
        };
        result.map_err(|err| match err {
            Error::NotFound {
                what: "session",
                id,
            } => Error::session_lost(&id),
            other => other,
        })
    }

    /// Renews one claim without a stream.
    pub async fn renew(&self, token: String) -> Result<u32> {
        ids::check_claim_token("claim_token", &token)?;
        match self.registry.renew_claim(&token) {
            Ok(ttl) => Ok(ttl),
            // Why: the database's reason, else expired (the claim is live there but its
            // deadline, or its session's, has passed and its release is on its way).
            Err(_) => match self.store.lease_lost(token).await {
                Ok(Some(err)) | Err(err) => Err(err),
                Ok(None) => Err(Error::lease_lost(LeaseLost::Expired, None)),
            },
        }
    }

    /// Records a progress heartbeat on a live claim.
    pub async fn heartbeat(&self, token: String, note: String) -> Result<()> {
        self.store.heartbeat(token, note).await
    }

    /// The holder completed the task.
    pub async fn complete(
        &self,
        token: String,
        result: String,
        summary: String,
        metadata: BTreeMap<String, String>,
        caller: Author,
    ) -> Result<Ended> {
        let finish = Finish::Complete {
            result,
            summary,
            metadata,
        };
        self.store
            .holder_finish(token, Use::Hold, finish, caller)
            .await
    }

    /// The holder blocked the task.
    pub async fn block(
        &self,
        token: String,
        kind: BlockKind,
        reason: String,
        caller: Author,
    ) -> Result<Ended> {
        let finish = Finish::Block { kind, reason };
        self.store
            .holder_finish(token, Use::Hold, finish, caller)
            .await
    }

    /// The holder asks for review.
    pub async fn request_review(
        &self,
        token: String,
        summary: String,
        caller: Author,
    ) -> Result<Ended> {
        let finish = Finish::RequestReview { summary };
        self.store
            .holder_finish(token, Use::Hold, finish, caller)
            .await
    }

    /// The reviewer asks for changes.
    pub async fn request_changes(
        &self,
        token: String,
        reason: String,
        caller: Author,
    ) -> Result<Ended> {
        let finish = Finish::RequestChanges { reason };
        self.store
            .holder_finish(token, Use::Hold, finish, caller)
            .await
    }

    /// The holder gives the claim back, saying why (also confirms a revocation).
    pub async fn release(&self, token: String, reason: String, caller: Author) -> Result<Ended> {
        let finish = Finish::Release { reason };
        self.store
            .holder_finish(token, Use::Confirm, finish, caller)
            .await
    }

    /// The worker's exit, as its supervisor reports it (also confirms a revocation).
    pub async fn report_exit(
        &self,
        token: String,
        exit: Exit,
        tail: String,
        caller: Author,
    ) -> Result<Ended> {
        self.store.report_exit(token, exit, tail, caller).await
    }

    // Operator views.

    /// The dispatch rules' view of an open session.
    pub fn session_view(&self, session_id: &str) -> Result<SessionView> {
        ids::check("session_id", ids::SESSION, session_id)?;
        let record = self
            .registry
            .session(session_id)
            .ok_or_else(|| Error::session_lost(session_id))?;
        Ok(SessionView {
            id: record.id.clone(),
            free_slots: self.registry.free_slots(&record.id),
            profiles: record.profiles,
            capabilities: record.capabilities,
            machine_id: record.machine_id,
            review_lane: record.review_lane,
        })
    }

    /// What the dispatcher would hand `session` now, and why not, without writing anything:
    /// the same rules as the grant pass, on the same candidates in dispatch order.
    pub async fn dispatch_preview(
        &self,
        session: SessionView,
        board: Option<String>,
        limit: u32,
    ) -> Result<Vec<PreviewRow>> {
        let mut rows = self
            .store
            .preview_candidates(board, session.review_lane, limit)
            .await?;
        rows.sort_by(|(a, _), (b, _)| a.order_key().cmp(&b.order_key()));
        let load = self.registry.load();
        let now = now_ms();
        let mut granted = false;
        Ok(rows
            .into_iter()
            .map(|(view, task)| {
                let why_not = dispatch::why_not(&view, &session, &load, now);
                let would_grant = why_not.is_none() && !granted;
                granted |= would_grant;
                PreviewRow {
                    task,
                    would_grant,
                    why_not,
                }
            })
            .collect())
    }

    /// Every open session, its last renewal and its claims (for the board's machines view).
    pub fn live_sessions(&self) -> Vec<LiveSession> {
        self.registry.live_sessions()
    }

    /// Counts and the expiry lag of the lease machinery.
    pub fn lease_stats(&self) -> LeaseStats {
        let (live_sessions, live_claims) = self.registry.counts();
        LeaseStats {
            live_sessions,
            live_claims,
            expiry_lag_us: self.registry.lag_percentiles(),
            waiting_pollers: self.dispatcher.waiting(),
            deadlines_retrying: self.retries.len(),
        }
    }

    /// Sets the gauges of what is rather than what happened (sessions, claims, pollers,
    /// retries, open streams, tasks by board and status) from the service's state, just before
    /// a scrape renders them.
    pub async fn record_gauges(&self) -> Result<()> {
        use crate::metrics as m;
        let stats = self.lease_stats();
        metrics::gauge!(m::LIVE_SESSIONS).set(stats.live_sessions as f64);
        metrics::gauge!(m::LIVE_CLAIMS).set(stats.live_claims as f64);
        metrics::gauge!(m::WAITING_POLLERS).set(stats.waiting_pollers as f64);
        metrics::gauge!(m::DEADLINES_RETRYING).set(stats.deadlines_retrying as f64);
        for (pool, name) in [(Pool::Watch, "watch"), (Pool::Deliver, "deliver")] {
            metrics::gauge!(m::OPEN_STREAMS, "pool" => name).set(self.streams.open(pool) as f64);
        }
        for ((board, status), count) in self.store.tasks_by_board().await? {
            metrics::gauge!(m::TASKS, "board" => board, "status" => status).set(count as f64);
        }
        Ok(())
    }

    /// The earliest armed deadline (the lease health check watches that it is taken in time).
    pub fn earliest_deadline(&self) -> Option<(Deadline, tokio::time::Instant)> {
        self.registry.earliest_deadline()
    }
}
