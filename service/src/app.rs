//! The state every gRPC service shares, and the two background tasks that act on it: the
//! timer loop (every deadline) and the dispatcher.

use std::{
    future::Future,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use crate::{
    dispatch::Dispatcher,
    domain::ids,
    error::{Error, Result},
    leases::{
        registry::{Deadline, Registry},
        rules::{LeaseLost, RevokeCause, WAIT_MAX_MS},
    },
    settings::Settings,
    store::{
        OpenError, Store,
        claims::{self, Grant, TOKEN},
    },
};

/// Longest a non-waiting `Acquire` waits for the dispatcher's answer.
const ONCE_LIMIT: Duration = Duration::from_secs(5);

/// Shared service state.
#[derive(Debug)]
pub struct App {
    /// The single owner of the database.
    pub store: Store,
    /// Live sessions, claims and every timer.
    pub registry: Arc<Registry>,
    /// Waiting pollers.
    pub dispatcher: Dispatcher,
    /// How long a stream may leave its buffer full before it is cut off.
    pub watcher_stall: Duration,
    /// Open watch and delivery streams, for their cap.
    pub watchers: AtomicUsize,
    draining: AtomicBool,
    stopping: watch::Sender<bool>,
}

impl App {
    /// Opens the store in `data_dir` and restores every live lease and recorded deadline.
    pub async fn open(data_dir: &Path, settings: Settings) -> Result<App, OpenError> {
        let watcher_stall = settings.watcher_stall;
        let registry = Arc::new(Registry::new(settings));
        let store = Store::open(data_dir, registry.clone()).await?;
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
                rearmed,
                "restored leases with a full TTL from now"
            );
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
        let (stopping, _) = watch::channel(false);
        Ok(App {
            store,
            registry,
            dispatcher: Dispatcher::default(),
            watcher_stall,
            watchers: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            stopping,
        })
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

    /// Long poll for a grant (see `Leases.Acquire`).
    pub async fn acquire(&self, session_id: String, wait_ms: i64) -> Result<Option<Grant>> {
        if !(0..=WAIT_MAX_MS).contains(&wait_ms) {
            return Err(Error::invalid(
                "wait_ms",
                format!("{wait_ms} is outside 0..={WAIT_MAX_MS}"),
            ));
        }
        ids::check("session_id", claims::SESSION, &session_id)?;
        if self.draining.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(
                "kanband is shutting down; acquire again later".into(),
            ));
        }
        if self.registry.session(&session_id).is_none() {
            return Err(session_lost(&session_id));
        }
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
            } => session_lost(&id),
            other => other,
        })
    }

    /// Renews one claim without a stream.
    pub async fn renew(&self, token: String) -> Result<u32> {
        ids::check("claim_token", TOKEN, &token)?;
        match self.registry.renew_claim(&token) {
            Ok(ttl) => Ok(ttl),
            Err(_) => Err(self.lost(token).await),
        }
    }

    /// Why a renewal was refused: the database's reason, else expired (the claim is live there
    /// but its deadline, or its session's, has passed and its release is on its way).
    async fn lost(&self, token: String) -> Error {
        match self.store.lease_lost(token).await {
            Ok(Some(err)) | Err(err) => err,
            Ok(None) => claims::lease_lost(LeaseLost::Expired, None),
        }
    }

    /// Acts on deadlines as they pass, until the future is dropped. Each deadline is handled
    /// in its own task, so many deadlines passing together (a mass expiry) share group commits
    /// instead of queueing behind one another.
    pub async fn run_timers(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let mut running = tokio::task::JoinSet::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                (deadline, at) = self.registry.timers.next_expired() => {
                    running.spawn(self.clone().on_deadline(deadline, at));
                }
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = &mut stop => break,
            }
        }
        running.shutdown().await;
    }

    async fn on_deadline(self: Arc<Self>, deadline: Deadline, at: Instant) {
        let lag = |released: u32| {
            let lag = Instant::now().saturating_duration_since(at);
            for _ in 0..released {
                self.registry.record_lag(lag);
            }
        };
        let result = match deadline.clone() {
            Deadline::Wake { task_id, until_ms } => {
                self.store.wake(task_id, until_ms).await.map(drop)
            }
            Deadline::Cooldown { .. } => {
                self.registry.poke();
                Ok(())
            }
            Deadline::Claim(token) => self
                .store
                .expire_claim(token)
                .await
                .map(|released| lag(released.into())),
            // A session's claims share its deadline (one keep-alive renews them all).
            Deadline::Session(id) => self.store.expire_session(id).await.map(lag),
            Deadline::MaxRuntime(token) => {
                self.store
                    .revoke_claim(token, RevokeCause::MaxRuntime)
                    .await
            }
            Deadline::StaleProgress(token) => {
                self.store
                    .revoke_claim(token, RevokeCause::StaleProgress)
                    .await
            }
            Deadline::Grace(token) => self.store.revoke_claim(token, RevokeCause::Reclaimed).await,
        };
        if let Err(err) = result {
            tracing::warn!(?deadline, error = %err, "acting on a deadline failed");
        }
    }

    /// Serves waiting pollers until the future is dropped.
    pub async fn run_dispatcher(&self) {
        self.dispatcher.run(&self.store, &self.registry).await;
    }
}

/// The error for a session that is not open.
pub fn session_lost(id: &str) -> Error {
    Error::LeaseLost {
        reason: LeaseLost::Expired,
        current_epoch: 0,
        message: format!(
            "session {id} is not open (expired, closed or never opened); open a new one"
        ),
    }
}
