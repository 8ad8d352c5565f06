//! The supervisor's event loop: one task that owns the session, its keep-alive stream, the
//! long poll and the table of workers, and reacts to whichever comes first (a push, a renewal
//! acknowledgement, a worker's exit, a deadline of its own, shutdown).
//!
//! - **Session.** Opened with backoff; kept alive over one KeepAlive stream with a message every
//!   `ttl / 3`. The stream breaking (kanband restarting, a transport error) is not a reason to
//!   kill anything: the loop reconnects with backoff and re-attaches the *same* session, whose
//!   claims survive a restart. Only two things end a session: kanband saying it is gone (ABORTED,
//!   on the stream or from Acquire) and jeopardy (no renewal sent at `T` acknowledged by
//!   `T + ttl - margin`, on this process's monotonic clock). Both kill the session's workers
//!   and open a new session. The old session is not closed: that would release its claims at
//!   once, while its workers may still be dying; it runs out on the server's own deadline.
//! - **Claims.** Acquire only while attached, with a free slot, not draining. A claim that a
//!   renewal sent after the grant does not list is no longer live (a revocation pushed while
//!   the stream was down is never replayed), so its worker is stopped like a revoked one.
//! - **Reconnecting** while the session lives never waits longer than a tenth of what is left
//!   before jeopardy (at most a second while it holds claims, see [`jeopardy::reconnect_cap`]),
//!   and the first keep-alive goes out with the new stream, so a kanband restart shorter than
//!   [`jeopardy::longest_tolerated_restart`] costs no worker.
//! - **Stopping a worker** is SIGTERM to its process group, then SIGKILL after `kill_grace`
//!   (SIGTERM alone on an operator's cancel); see `stop` for the rules.
//! - **Reports.** A worker's exit is reported with ReportExit (which also confirms a
//!   revocation). A worker the supervisor stopped because it lost the lease, is shutting down,
//!   or was asked to by an operator is reported with Release instead: the worker did not fail,
//!   so it must not count as a crash.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use kanband_proto::pb::{self, keep_alive_response::Event};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};
use tonic::{Code, Status, Streaming};

use super::{
    Settings, SupervisorError, SupervisorStatus, Worker,
    calls::{self, Attached, BoxFuture, Opened},
    child::{self, Control, Exited},
    grant,
    jeopardy::{self, Renewals},
    report::{self, Report},
    stop::{self, Stop},
};
use crate::{Client, reconnect::Backoff};

/// How long, at the end of a drain, reports may take to reach kanband.
const REPORT_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// A running worker.
#[derive(Debug)]
struct Child {
    task_id: String,
    run_id: String,
    epoch: u64,
    pid: u32,
    session_id: String,
    /// When the grant arrived: renewals sent after it must list the claim.
    granted_at: Instant,
    control: mpsc::UnboundedSender<Control>,
    stop: Option<Stop>,
    /// Acknowledged renewals in a row that did not list the claim.
    missed_renewals: u32,
}

/// Acknowledged renewals in a row that may omit a worker's claim before the worker is stopped.
/// A claim leaves the renewals when its worker reports its own outcome (`kanbanctl complete`)
/// as well as when a revocation push was lost; one renewal's grace lets a finishing worker end
/// on its own, and is safe because the service hands a revoked task to no one else until its
/// holder confirms or the lease runs out.
const MISSED_RENEWALS_LIMIT: u32 = 2;

/// The open session.
#[derive(Debug)]
struct Live {
    id: String,
    renewals: Renewals,
    /// The connection, `None` while reconnecting.
    client: Option<Client>,
    /// The outbound half of the keep-alive stream, `None` while detached.
    outbound: Option<mpsc::Sender<pb::KeepAliveRequest>>,
    next_renewal: Instant,
    /// When to try attaching again while detached.
    attach_at: Instant,
    attach_backoff: Backoff,
    acquire_at: Instant,
    acquire_backoff: Backoff,
    /// kanband said it is shutting down: acquire nothing until the stream is re-attached.
    server_draining: bool,
    /// A renewal was acknowledged on the current stream.
    acked_on_stream: bool,
}

impl Live {
    /// How long to wait before attaching again: the backoff, held to a small part of the time
    /// left before jeopardy.
    fn reattach_delay(&mut self, now: Instant, holding: bool) -> Duration {
        let remaining = self.renewals.deadline().saturating_duration_since(now);
        self.attach_backoff
            .next_delay_capped(jeopardy::reconnect_cap(remaining, holding))
    }
}

/// The event loop's state.
pub(super) struct Runner {
    cfg: Arc<Settings>,
    status: watch::Sender<SupervisorStatus>,
    children: HashMap<String, Child>,
    exits_tx: mpsc::UnboundedSender<Exited>,
    exits: mpsc::UnboundedReceiver<Exited>,
    /// Claims whose worker exited recently, with when: their report may still be on its way,
    /// so a renewal listing them is not an orphaned grant.
    exited: HashMap<String, Instant>,
    /// Claims listed by renewals that no worker here holds, with how many renewals in a row.
    unknown_renewed: HashMap<String, u32>,
    reports: mpsc::UnboundedSender<Report>,
    reporter: JoinHandle<()>,
    session: Option<Live>,
    sessions_opened: u64,
    // In-flight operations, apart from `session` so the loop can poll them side by side.
    inbound: Option<Streaming<pb::KeepAliveResponse>>,
    opening: Option<BoxFuture<Result<Opened, SupervisorError>>>,
    attaching: Option<BoxFuture<Result<Attached, Status>>>,
    acquiring: Option<BoxFuture<Result<Option<pb::Grant>, Status>>>,
    stopping: bool,
    drain_deadline: Option<Instant>,
}

async fn poll_slot<T>(slot: &mut Option<BoxFuture<T>>) -> T {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn next_message(
    inbound: &mut Option<Streaming<pb::KeepAliveResponse>>,
) -> Result<Option<pb::KeepAliveResponse>, Status> {
    match inbound {
        Some(stream) => stream.message().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Runner {
    pub(super) fn new(cfg: Arc<Settings>, status: watch::Sender<SupervisorStatus>) -> Runner {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let (reports, reporter) = report::start(cfg.config.target());
        Runner {
            cfg,
            status,
            children: HashMap::new(),
            exits_tx,
            exits,
            exited: HashMap::new(),
            unknown_renewed: HashMap::new(),
            reports,
            reporter,
            session: None,
            sessions_opened: 0,
            inbound: None,
            opening: None,
            attaching: None,
            acquiring: None,
            stopping: false,
            drain_deadline: None,
        }
    }

    pub(super) async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), SupervisorError> {
        tokio::pin!(shutdown);
        self.opening = Some(calls::open(self.cfg.clone()));
        while !(self.stopping && self.children.is_empty()) {
            let now = Instant::now();
            self.start_due(now);
            let jeopardy_at = self.session.as_ref().map(|l| l.renewals.deadline());
            let renew_at = self
                .session
                .as_ref()
                .filter(|l| l.outbound.is_some())
                .map(|l| l.next_renewal);
            let wake_at = self.next_wake();
            tokio::select! {
                biased;
                () = &mut shutdown, if !self.stopping => self.begin_drain(),
                Some(exit) = self.exits.recv() => self.on_exit(exit),
                message = next_message(&mut self.inbound) => self.on_message(message),
                () = sleep_until(jeopardy_at) => self.on_jeopardy(),
                () = sleep_until(renew_at) => self.renew(),
                opened = poll_slot(&mut self.opening) => {
                    self.opening = None;
                    self.on_opened(opened?);
                }
                attached = poll_slot(&mut self.attaching) => {
                    self.attaching = None;
                    self.on_attached(attached);
                }
                granted = poll_slot(&mut self.acquiring) => {
                    self.acquiring = None;
                    self.on_acquired(granted);
                }
                () = sleep_until(self.drain_deadline) => self.on_drain_limit(),
                () = sleep_until(wake_at) => {}
            }
        }
        self.finish().await;
        Ok(())
    }

    // ------------------------------------------------------------------------------------------
    // Starting things that are due.

    fn can_acquire(&self) -> bool {
        let Some(live) = &self.session else {
            return false;
        };
        !self.stopping
            && live.client.is_some()
            && live.outbound.is_some()
            && !live.server_draining
            && self.children.len() < self.cfg.config.slots as usize
    }

    /// When a retry waits for its backoff: the loop wakes then to start it.
    fn next_wake(&self) -> Option<Instant> {
        let live = self.session.as_ref()?;
        let attach =
            (live.outbound.is_none() && self.attaching.is_none()).then_some(live.attach_at);
        let acquire = (self.acquiring.is_none() && self.can_acquire()).then_some(live.acquire_at);
        attach.into_iter().chain(acquire).min()
    }

    fn start_due(&mut self, now: Instant) {
        let can_acquire = self.can_acquire();
        let Some(live) = &mut self.session else {
            return;
        };
        if live.outbound.is_none() && self.attaching.is_none() && live.attach_at <= now {
            self.attaching = Some(calls::attach(
                self.cfg.config.target(),
                live.client.take(),
                live.id.clone(),
            ));
        }
        if can_acquire && self.acquiring.is_none() && live.acquire_at <= now {
            let client = live.client.clone().expect("attached");
            let wait = self.cfg.config.acquire_wait;
            self.acquiring = Some(calls::acquire(client, live.id.clone(), wait));
        }
    }

    // ------------------------------------------------------------------------------------------
    // The session and its stream.

    fn on_opened(&mut self, opened: Opened) {
        let now = Instant::now();
        let ttl = Duration::from_millis(opened.session.ttl_ms.into());
        tracing::info!(session = %opened.session.id, ?ttl, "session open");
        self.sessions_opened += 1;
        self.session = Some(Live {
            id: opened.session.id,
            renewals: Renewals::new(opened.sent, ttl),
            client: Some(opened.client),
            outbound: None,
            next_renewal: now,
            attach_at: now,
            attach_backoff: Backoff::default(),
            acquire_at: now,
            acquire_backoff: Backoff::default(),
            server_draining: false,
            acked_on_stream: false,
        });
        self.publish();
    }

    /// Whether any worker runs under the open session's claims.
    fn holding(&self) -> bool {
        let Some(live) = &self.session else {
            return false;
        };
        self.children.values().any(|c| c.session_id == live.id)
    }

    fn on_attached(&mut self, attached: Result<Attached, Status>) {
        let now = Instant::now();
        let holding = self.holding();
        let Some(live) = &mut self.session else {
            return;
        };
        match attached {
            Ok(a) => {
                tracing::info!(session = %live.id, "keep-alive stream attached");
                live.renewals.sent(a.sent);
                live.next_renewal = a.sent + jeopardy::renew_interval(live.renewals.ttl());
                live.client = Some(a.client);
                live.outbound = Some(a.outbound);
                live.server_draining = false;
                live.acquire_backoff.reset();
                live.acquire_at = now;
                self.inbound = Some(a.inbound);
            }
            Err(status) if status.code() == Code::Aborted => {
                self.abandon_session(Stop::SessionLost, status.message());
            }
            Err(status) => {
                let delay = live.reattach_delay(now, holding);
                live.attach_at = now + delay;
                tracing::info!(session = %live.id, error = %status.message(), ?delay, "cannot attach the keep-alive stream; retrying");
            }
        }
    }

    fn renew(&mut self) {
        let now = Instant::now();
        let Some(live) = &mut self.session else {
            return;
        };
        let Some(outbound) = &live.outbound else {
            return;
        };
        live.next_renewal = now + jeopardy::renew_interval(live.renewals.ttl());
        let message = pb::KeepAliveRequest {
            session_id: live.id.clone(),
        };
        match outbound.try_send(message) {
            Ok(()) => live.renewals.sent(now),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(session = %live.id, "keep-alive stream is backed up; skipping a renewal");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.stream_lost("the stream closed"),
        }
    }

    fn on_message(&mut self, message: Result<Option<pb::KeepAliveResponse>, Status>) {
        match message {
            Ok(Some(pb::KeepAliveResponse { event: Some(event) })) => self.on_event(event),
            Ok(Some(_)) => {}
            Ok(None) => self.stream_lost("kanband ended the stream"),
            Err(status) if status.code() == Code::Aborted => {
                self.abandon_session(Stop::SessionLost, status.message());
            }
            Err(status) => self.stream_lost(status.message()),
        }
    }

    fn on_event(&mut self, event: Event) {
        let Some(live) = &mut self.session else {
            return;
        };
        match event {
            Event::Renewed(renewed) => {
                let Some(sent) = live.renewals.acked() else {
                    return;
                };
                live.attach_backoff.reset();
                let first = !live.acked_on_stream;
                live.acked_on_stream = true;
                if renewed.ttl_ms > 0 {
                    live.renewals
                        .set_ttl(Duration::from_millis(renewed.ttl_ms.into()));
                }
                let session_id = live.id.clone();
                let mut lost = Vec::new();
                for (token, child) in &mut self.children {
                    if child.session_id != session_id
                        || !Stop::watches_renewals(child.stop)
                        || child.granted_at >= sent
                    {
                        continue;
                    }
                    if renewed.claim_tokens.contains(token) {
                        child.missed_renewals = 0;
                    } else {
                        child.missed_renewals += 1;
                        if child.missed_renewals >= MISSED_RENEWALS_LIMIT {
                            lost.push(token.clone());
                        }
                    }
                }
                for token in lost {
                    self.stop_child(&token, Stop::NotRenewed);
                }
                self.release_orphans(&renewed.claim_tokens);
                if first {
                    self.publish();
                }
            }
            Event::Revoked(revoked) => {
                tracing::info!(task = %revoked.task_id, cause = ?revoked.cause(), "claim revoked");
                if self.children.contains_key(&revoked.claim_token) {
                    self.stop_child(&revoked.claim_token, Stop::Revoked);
                } else {
                    // No worker runs for it (it ended already, or never started): confirm.
                    let _ = self.reports.send(Report::Release {
                        token: revoked.claim_token,
                        task_id: revoked.task_id,
                        reason: "revoked while no worker ran for it".into(),
                    });
                }
            }
            Event::CancelRequested(cancel) => {
                tracing::info!(task = %cancel.task_id, reason = %cancel.reason, "cancel requested; interrupting the worker");
                self.stop_child(&cancel.claim_token, Stop::Cancelled);
            }
            Event::Drain(_) => {
                tracing::info!(session = %live.id, "kanband is draining; acquiring nothing until it is back");
                live.server_draining = true;
            }
        }
    }

    /// The stream broke: reconnect and re-attach the same session; the workers keep running.
    fn stream_lost(&mut self, why: &str) {
        let now = Instant::now();
        let holding = self.holding();
        self.inbound = None;
        let Some(live) = &mut self.session else {
            return;
        };
        live.outbound = None;
        live.client = None;
        live.acked_on_stream = false;
        live.renewals.stream_lost();
        let delay = live.reattach_delay(now, holding);
        live.attach_at = now + delay;
        tracing::warn!(session = %live.id, why, ?delay, "keep-alive stream lost; re-attaching the same session");
        self.publish();
    }

    fn on_jeopardy(&mut self) {
        if let Some(live) = &self.session {
            tracing::error!(
                session = %live.id,
                ttl = ?live.renewals.ttl(),
                "no renewal acknowledged within ttl minus margin: the lease may be gone; killing its workers"
            );
        }
        self.abandon_session(Stop::Jeopardy, "jeopardy");
    }

    /// The session is gone (or may be): stop its workers and open a new one.
    fn abandon_session(&mut self, why: Stop, detail: &str) {
        let Some(live) = self.session.take() else {
            return;
        };
        if why != Stop::Jeopardy {
            tracing::warn!(session = %live.id, detail, "session lost; stopping its workers");
        }
        self.inbound = None;
        self.attaching = None;
        self.acquiring = None;
        let tokens: Vec<String> = self
            .children
            .iter()
            .filter(|(_, c)| c.session_id == live.id)
            .map(|(t, _)| t.clone())
            .collect();
        for token in tokens {
            self.stop_child(&token, why);
        }
        if !self.stopping {
            self.opening = Some(calls::open(self.cfg.clone()));
        }
        self.publish();
    }

    // ------------------------------------------------------------------------------------------
    // Workers.

    fn on_acquired(&mut self, granted: Result<Option<pb::Grant>, Status>) {
        let now = Instant::now();
        match granted {
            Ok(Some(grant)) => {
                if let Some(live) = &mut self.session {
                    live.acquire_backoff.reset();
                    live.acquire_at = now;
                }
                self.start_worker(grant, now);
            }
            Ok(None) => {
                if let Some(live) = &mut self.session {
                    live.acquire_at = now;
                }
            }
            Err(status) if status.code() == Code::Aborted => {
                self.abandon_session(Stop::SessionLost, status.message());
            }
            Err(status) => {
                if let Some(live) = &mut self.session {
                    let delay = live.acquire_backoff.next_delay();
                    live.acquire_at = now + delay;
                    tracing::info!(code = ?status.code(), error = %status.message(), ?delay, "acquire failed; retrying");
                }
            }
        }
    }

    fn start_worker(&mut self, grant: pb::Grant, granted_at: Instant) {
        let task = grant.task.clone().unwrap_or_default();
        let Some(session_id) = self.session.as_ref().map(|l| l.id.clone()) else {
            return;
        };
        // Until a worker holds it, the claim counts as just ended: not an orphan.
        self.exited
            .insert(grant.claim_token.clone(), Instant::now());
        let spawn_failed = |tail: String| Report::Exit {
            token: grant.claim_token.clone(),
            task_id: task.id.clone(),
            exit: pb::report_exit_request::Exit::SpawnFailed(true),
            tail,
        };
        let job = match grant::job(&self.cfg.config, &grant) {
            Ok(job) => job,
            Err(err) => {
                tracing::warn!(task = %task.id, error = %err, "cannot start the worker");
                let _ = self.reports.send(spawn_failed(err));
                return;
            }
        };
        let workspace = job.cwd.display().to_string();
        match child::spawn(job, self.exits_tx.clone()) {
            Ok(spawned) => {
                tracing::info!(task = %task.id, run = %grant.run_id, epoch = grant.epoch, pid = spawned.pid, %workspace, "worker started");
                self.children.insert(
                    grant.claim_token,
                    Child {
                        task_id: task.id,
                        run_id: grant.run_id,
                        epoch: grant.epoch,
                        pid: spawned.pid,
                        session_id,
                        granted_at,
                        control: spawned.control,
                        stop: None,
                        missed_renewals: 0,
                    },
                );
                self.publish();
            }
            Err(err) => {
                tracing::warn!(task = %task.id, error = %err, "cannot start the worker");
                let _ = self.reports.send(spawn_failed(err));
            }
        }
    }

    fn stop_child(&mut self, token: &str, why: Stop) {
        let config = &self.cfg.config;
        let kill_after = why.kill_after(config.kill_grace, config.ttl);
        let Some(child) = self.children.get_mut(token) else {
            return;
        };
        tracing::info!(task = %child.task_id, pid = child.pid, why = why.reason(), ?kill_after, "stopping the worker");
        child.stop = Some(Stop::after(child.stop, why));
        let control = kill_after.map_or(Control::Interrupt, Control::Terminate);
        let _ = child.control.send(control);
        self.publish();
    }

    /// Gives back claims that renewals keep listing although no worker here holds them: grants
    /// committed by kanband whose answer never arrived (kanband died, or the connection broke,
    /// mid-Acquire). A grant's answer arrives within moments of its commit, so a claim still
    /// unknown after [`MISSED_RENEWALS_LIMIT`] renewals is such an orphan.
    fn release_orphans(&mut self, renewed: &[String]) {
        let ttl = self.cfg.config.ttl;
        self.exited.retain(|_, at| at.elapsed() < ttl * 2);
        let unknown: Vec<&String> = renewed
            .iter()
            .filter(|t| !self.children.contains_key(*t) && !self.exited.contains_key(*t))
            .collect();
        self.unknown_renewed
            .retain(|token, _| unknown.contains(&token));
        for token in unknown {
            let seen = self.unknown_renewed.entry(token.clone()).or_default();
            *seen += 1;
            if *seen < MISSED_RENEWALS_LIMIT {
                continue;
            }
            tracing::warn!("releasing a claim granted to this session whose answer never arrived");
            self.unknown_renewed.remove(token);
            self.exited.insert(token.clone(), Instant::now());
            let _ = self.reports.send(Report::Release {
                token: token.clone(),
                task_id: String::new(),
                reason: "granted, but the answer never reached the supervisor".into(),
            });
        }
    }

    fn on_exit(&mut self, exit: Exited) {
        let Some(child) = self.children.remove(&exit.token) else {
            return;
        };
        self.exited.insert(exit.token.clone(), Instant::now());
        tracing::info!(task = %child.task_id, run = %child.run_id, ending = ?exit.ending, stopped = ?child.stop, "worker exited");
        let report = stop::report(
            child.stop,
            exit.token,
            child.task_id,
            exit.ending,
            exit.tail,
        );
        let _ = self.reports.send(report);
        self.publish();
    }

    // ------------------------------------------------------------------------------------------
    // Shutdown.

    fn begin_drain(&mut self) {
        tracing::info!(
            workers = self.children.len(),
            limit = ?self.cfg.config.drain_limit,
            "draining: acquiring nothing more, letting workers finish"
        );
        self.stopping = true;
        self.acquiring = None;
        self.opening = None;
        self.drain_deadline = Some(Instant::now() + self.cfg.config.drain_limit);
        self.publish();
    }

    fn on_drain_limit(&mut self) {
        self.drain_deadline = None;
        let tokens: Vec<String> = self.children.keys().cloned().collect();
        if !tokens.is_empty() {
            tracing::warn!(
                workers = tokens.len(),
                "drain limit reached; stopping the remaining workers"
            );
        }
        for token in tokens {
            self.stop_child(&token, Stop::Shutdown);
        }
    }

    /// Delivers the last reports, then closes the session so its claims are released at once.
    async fn finish(self) {
        let Runner {
            cfg,
            status,
            reports,
            mut reporter,
            session,
            ..
        } = self;
        drop(reports);
        if tokio::time::timeout(REPORT_FLUSH_LIMIT, &mut reporter)
            .await
            .is_err()
        {
            tracing::warn!("kanband did not take every report in time; their claims will expire");
            reporter.abort();
        }
        if let Some(live) = session {
            calls::close(cfg.config.target(), live.client, live.id).await;
        }
        status.send_modify(|s| {
            s.session_id = None;
            s.workers.clear();
        });
    }

    fn publish(&self) {
        let mut workers: Vec<Worker> = self
            .children
            .values()
            .map(|c| Worker {
                task_id: c.task_id.clone(),
                run_id: c.run_id.clone(),
                epoch: c.epoch,
                pid: c.pid,
                stopping: c.stop.is_some(),
            })
            .collect();
        workers.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        let next = SupervisorStatus {
            session_id: self.session.as_ref().map(|l| l.id.clone()),
            sessions_opened: self.sessions_opened,
            attached: self.session.as_ref().is_some_and(|l| l.acked_on_stream),
            workers,
            draining: self.stopping,
        };
        self.status.send_if_modified(|s| {
            let changed = *s != next;
            *s = next;
            changed
        });
    }
}
