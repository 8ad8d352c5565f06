//! The in-memory side of leases: live sessions and claims with their exact deadlines, the
//! running counts the caps need, the keep-alive push channels, and every timer.
//!
//! Ordering is the safety argument. The store applies a committed transaction's [`Effect`]s
//! here (through [`LiveLeases`]) on the connection thread, right after the commit and before the next transaction, so
//! this registry changes in exactly the order the database does. Renewals only touch the
//! registry (no disk write) and are linearized against those changes by its mutex: a renewal
//! either happens before a revocation or expiry (and is then overridden by it) or after (and is
//! refused). A deadline that has passed can never be renewed, so once the expiry timer has
//! fired nothing can revive the claim it is about to release.
//!
//! The database keeps a coarse copy of each deadline (`sessions.expires_at`,
//! `claims.expires_at`), so that a restart can tell a lease whose deadline really passed while
//! kanband was down. Renewals do not write it: a renewal that moves a deadline more than a
//! fraction of the TTL past its copy ([`lease::persist_due`]) marks the lease, and the persister
//! ([`super::persist`]) writes every marked lease in one write.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use tokio::{
    sync::{Notify, mpsc, watch},
    time::Instant,
};

use super::{
    changes::Changes,
    timers::{Deadline, Timers},
};
use crate::{
    clock::instant_at,
    domain::{
        dispatch::{Load, SessionView},
        lease::{self, ClaimState, RevokeCause},
    },
    settings::Settings,
    store::{
        effect::{Claimable, Effect, LiveLeases},
        model::{ClaimRecord, SessionRecord},
    },
};

/// What the server pushes on a session's keep-alive stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// A claim was revoked.
    Revoked {
        /// The token.
        token: String,
        /// Its task.
        task_id: String,
        /// Why.
        cause: RevokeCause,
    },
    /// An operator asks the holder to stop soon; the token stays valid until the grace ends.
    CancelRequested {
        /// The token.
        token: String,
        /// Its task.
        task_id: String,
        /// How long the holder has.
        grace: Duration,
    },
    /// The service is shutting down.
    Drain,
}

/// Capacity of a session's push channel; a session that falls this far behind loses pushes
/// (its holder still learns of the revocation on its next call, which is refused).
const PUSH_CAPACITY: usize = 256;

#[derive(Debug)]
struct SessionEntry {
    record: SessionRecord,
    deadline: Instant,
    /// The deadline the database holds a copy of.
    persisted: Instant,
    claims: BTreeSet<String>,
    pushes: Option<mpsc::Sender<Push>>,
}

#[derive(Debug)]
struct ClaimEntry {
    record: ClaimRecord,
    deadline: Instant,
    /// The deadline the database holds a copy of.
    persisted: Instant,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, SessionEntry>,
    claims: HashMap<String, ClaimEntry>,
    load: Load,
    /// Sessions and claims whose persisted deadline fell too far behind.
    unpersisted: Unpersisted<BTreeSet<String>>,
}

/// Sessions and claims (ids or tokens, with what goes with them) whose deadlines are due to be
/// persisted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpersisted<T> {
    /// Sessions.
    pub sessions: T,
    /// Claims.
    pub claims: T,
}

impl Unpersisted<Vec<(String, Instant)>> {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.claims.is_empty()
    }
}

/// An open session as the machines view shows it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The session.
    pub record: SessionRecord,
    /// Time since its last renewal.
    pub renewed_ago: Duration,
    /// The claims it holds (live or being revoked).
    pub claims: Vec<ClaimRecord>,
}

/// Why a renewal was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewRefused {
    /// The session is not open (never was, closed, or expired).
    Session,
    /// The claim is not live here (ended, being revoked, or past its deadline); the database
    /// knows why.
    Claim,
}

/// Live sessions and claims, and every timer.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
    /// Every deadline.
    timers: Timers<Deadline>,
    /// Wakes the dispatcher when something may have become claimable...
    work: Notify,
    /// ...and says what, since it last looked.
    changes: Mutex<Changes>,
    lag_us: Mutex<VecDeque<u64>>,
    settings: Settings,
    latest_event: watch::Sender<i64>,
    /// Woken when a lease is marked for persisting.
    persist: Notify,
}

/// Expiry-lag samples kept for the percentiles (the most recent).
const LAG_SAMPLES: usize = 100_000;

impl Registry {
    /// An empty registry.
    pub fn new(settings: Settings) -> Self {
        Registry {
            state: Mutex::default(),
            timers: Timers::default(),
            work: Notify::new(),
            changes: Mutex::default(),
            lag_us: Mutex::default(),
            settings,
            latest_event: watch::channel(0).0,
            persist: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lease registry lock")
    }

    /// Applies the effects of a committed transaction, in order. Called by the store on the
    /// connection thread right after the commit.
    pub fn apply(&self, effects: Vec<Effect>) {
        let now = Instant::now();
        let mut poke = Vec::new();
        let mut state = self.lock();
        for effect in effects {
            match effect {
                Effect::SessionOpened(record) => {
                    let deadline = now + Duration::from_millis(record.ttl_ms.into());
                    self.timers
                        .arm(Deadline::Session(record.id.clone()), deadline);
                    state.sessions.insert(
                        record.id.clone(),
                        SessionEntry {
                            record,
                            deadline,
                            persisted: deadline,
                            claims: BTreeSet::new(),
                            pushes: None,
                        },
                    );
                }
                Effect::SessionClosed(id) => {
                    self.timers.cancel(&Deadline::Session(id.clone()));
                    state.sessions.remove(&id);
                }
                Effect::Granted(record, deadlines) => {
                    let Some(session) = state.sessions.get_mut(&record.session_id) else {
                        tracing::error!(token = %record.token, "grant for a session not in the registry");
                        continue;
                    };
                    let ttl = Duration::from_millis(session.record.ttl_ms.into());
                    session.claims.insert(record.token.clone());
                    let deadline = now + ttl;
                    self.timers
                        .arm(Deadline::Claim(record.token.clone()), deadline);
                    if let Some(until) = deadlines.max_runtime_until {
                        self.timers.arm(
                            Deadline::MaxRuntime(record.token.clone()),
                            instant_at(until),
                        );
                    }
                    if let Some(stale) = self.settings.stale_progress {
                        let at = instant_at(deadlines.progress_at + stale.as_millis() as i64);
                        self.timers
                            .arm(Deadline::StaleProgress(record.token.clone()), at);
                    }
                    if let Some(until) = deadlines.grace_until {
                        self.timers
                            .arm(Deadline::Grace(record.token.clone()), instant_at(until));
                    }
                    *state.load.by_board.entry(record.board.clone()).or_default() += 1;
                    *state
                        .load
                        .by_profile
                        .entry(record.profile.clone())
                        .or_default() += 1;
                    state.claims.insert(
                        record.token.clone(),
                        ClaimEntry {
                            record,
                            deadline,
                            persisted: deadline,
                        },
                    );
                }
                Effect::Revoked(token, cause) => {
                    self.timers.cancel(&Deadline::MaxRuntime(token.clone()));
                    self.timers.cancel(&Deadline::StaleProgress(token.clone()));
                    self.timers.cancel(&Deadline::Grace(token.clone()));
                    let Some(claim) = state.claims.get_mut(&token) else {
                        continue;
                    };
                    claim.record.state = ClaimState::Revoking(cause);
                    let push = Push::Revoked {
                        token,
                        task_id: claim.record.task_id.clone(),
                        cause,
                    };
                    let session_id = claim.record.session_id.clone();
                    if let Some(tx) = state
                        .sessions
                        .get(&session_id)
                        .and_then(|s| s.pushes.as_ref())
                    {
                        let _ = tx.try_send(push);
                    }
                }
                Effect::CancelRequested(token, grace) => {
                    let Some(claim) = state.claims.get(&token) else {
                        continue;
                    };
                    self.timers.arm(Deadline::Grace(token.clone()), now + grace);
                    let push = Push::CancelRequested {
                        token,
                        task_id: claim.record.task_id.clone(),
                        grace,
                    };
                    let session = state.sessions.get(&claim.record.session_id);
                    if let Some(tx) = session.and_then(|s| s.pushes.as_ref()) {
                        let _ = tx.try_send(push);
                    }
                }
                Effect::Ended(token) => {
                    for deadline in [
                        Deadline::Claim(token.clone()),
                        Deadline::MaxRuntime(token.clone()),
                        Deadline::StaleProgress(token.clone()),
                        Deadline::Grace(token.clone()),
                    ] {
                        self.timers.cancel(&deadline);
                    }
                    if let Some(claim) = state.claims.remove(&token) {
                        let r = claim.record;
                        if let Some(session) = state.sessions.get_mut(&r.session_id) {
                            session.claims.remove(&token);
                        }
                        decrement(&mut state.load.by_board, &r.board);
                        decrement(&mut state.load.by_profile, &r.profile);
                    }
                }
                Effect::Progress(token) => {
                    if let (Some(stale), true) = (
                        self.settings.stale_progress,
                        state.claims.contains_key(&token),
                    ) {
                        self.timers.arm(Deadline::StaleProgress(token), now + stale);
                    }
                }
                Effect::Wake(task_id, until_ms) => {
                    self.timers
                        .arm(Deadline::Wake { task_id, until_ms }, instant_at(until_ms));
                }
                Effect::Cooldown(task_id, until_ms) => {
                    self.timers
                        .arm(Deadline::Cooldown { task_id }, instant_at(until_ms));
                }
                Effect::Poke(claimable) => poke.push(claimable),
            }
        }
        drop(state);
        if !poke.is_empty() {
            let mut changes = self.changes.lock().expect("changes lock");
            for claimable in poke {
                changes.add(claimable);
            }
            drop(changes);
            self.work.notify_one();
        }
    }

    /// Renews a session and every live claim it holds; returns the renewed tokens.
    pub fn renew_session(&self, session_id: &str) -> Result<(u32, Vec<String>), RenewRefused> {
        let now = Instant::now();
        let mut state = self.lock();
        let State {
            sessions,
            claims,
            unpersisted,
            ..
        } = &mut *state;
        let session = sessions
            .get_mut(session_id)
            .filter(|s| s.deadline > now)
            .ok_or(RenewRefused::Session)?;
        let ttl = Duration::from_millis(session.record.ttl_ms.into());
        session.deadline = now + ttl;
        self.timers
            .arm(Deadline::Session(session_id.to_owned()), session.deadline);
        let mut mark = persist_due(session.deadline, session.persisted, ttl)
            && unpersisted.sessions.insert(session_id.to_owned());
        let mut renewed = Vec::with_capacity(session.claims.len());
        for token in &session.claims {
            if let Some(claim) = claims.get_mut(token)
                && claim.record.state == ClaimState::Live
                && claim.deadline > now
            {
                claim.deadline = now + ttl;
                self.timers
                    .arm(Deadline::Claim(token.clone()), claim.deadline);
                mark |= persist_due(claim.deadline, claim.persisted, ttl)
                    && unpersisted.claims.insert(token.clone());
                renewed.push(token.clone());
            }
        }
        let ttl_ms = session.record.ttl_ms;
        drop(state);
        if mark {
            self.persist.notify_one();
        }
        Ok((ttl_ms, renewed))
    }

    /// Renews one live claim and its session.
    pub fn renew_claim(&self, token: &str) -> Result<u32, RenewRefused> {
        let now = Instant::now();
        let mut state = self.lock();
        let State {
            sessions,
            claims,
            unpersisted,
            ..
        } = &mut *state;
        let claim = claims.get_mut(token).ok_or(RenewRefused::Claim)?;
        if claim.record.state != ClaimState::Live || claim.deadline <= now {
            return Err(RenewRefused::Claim);
        }
        let session = sessions
            .get_mut(&claim.record.session_id)
            .filter(|s| s.deadline > now)
            .ok_or(RenewRefused::Session)?;
        let ttl = Duration::from_millis(session.record.ttl_ms.into());
        session.deadline = session.deadline.max(now + ttl);
        self.timers.arm(
            Deadline::Session(session.record.id.clone()),
            session.deadline,
        );
        claim.deadline = now + ttl;
        self.timers
            .arm(Deadline::Claim(token.to_owned()), claim.deadline);
        let mark = (persist_due(session.deadline, session.persisted, ttl)
            && unpersisted.sessions.insert(session.record.id.clone()))
            | (persist_due(claim.deadline, claim.persisted, ttl)
                && unpersisted.claims.insert(token.to_owned()));
        let ttl_ms = session.record.ttl_ms;
        drop(state);
        if mark {
            self.persist.notify_one();
        }
        Ok(ttl_ms)
    }

    /// Waits until a lease is marked for persisting.
    pub async fn persist_wanted(&self) {
        self.persist.notified().await;
    }

    /// Takes the leases marked for persisting (or, with `all`, every lease whose persisted
    /// deadline is behind its exact one, for shutdown), with their deadlines now.
    pub fn take_unpersisted(&self, all: bool) -> Unpersisted<Vec<(String, Instant)>> {
        let mut state = self.lock();
        let marked = std::mem::take(&mut state.unpersisted);
        if all {
            return Unpersisted {
                sessions: (state.sessions.iter())
                    .filter(|(_, s)| s.deadline > s.persisted)
                    .map(|(id, s)| (id.clone(), s.deadline))
                    .collect(),
                claims: (state.claims.iter())
                    .filter(|(_, c)| c.deadline > c.persisted)
                    .map(|(token, c)| (token.clone(), c.deadline))
                    .collect(),
            };
        }
        Unpersisted {
            sessions: (marked.sessions.into_iter())
                .filter_map(|id| state.sessions.get(&id).map(|s| (id, s.deadline)))
                .collect(),
            claims: (marked.claims.into_iter())
                .filter_map(|t| state.claims.get(&t).map(|c| (t, c.deadline)))
                .collect(),
        }
    }

    /// Records that the database now holds these deadlines.
    pub fn persisted(&self, written: &Unpersisted<Vec<(String, Instant)>>) {
        let mut state = self.lock();
        for (id, at) in &written.sessions {
            if let Some(s) = state.sessions.get_mut(id) {
                s.persisted = s.persisted.max(*at);
            }
        }
        for (token, at) in &written.claims {
            if let Some(c) = state.claims.get_mut(token) {
                c.persisted = c.persisted.max(*at);
            }
        }
    }

    /// Waits for the earliest deadline to pass, disarms it and returns it with the time it was
    /// due (for the expiry lag).
    pub async fn next_deadline(&self) -> (Deadline, Instant) {
        self.timers.next_expired().await
    }

    /// Tokens of every claim in the registry.
    pub fn claim_tokens(&self) -> Vec<String> {
        self.lock().claims.keys().cloned().collect()
    }

    /// Whether a claim's deadline has passed (it may be released as expired).
    pub fn claim_overdue(&self, token: &str) -> bool {
        self.lock()
            .claims
            .get(token)
            .is_some_and(|c| c.deadline <= Instant::now())
    }

    /// Whether a session's deadline has passed.
    pub fn session_overdue(&self, session_id: &str) -> bool {
        self.lock()
            .sessions
            .get(session_id)
            .is_some_and(|s| s.deadline <= Instant::now())
    }

    /// A session, if open here.
    pub fn session(&self, session_id: &str) -> Option<SessionRecord> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|s| s.record.clone())
    }

    /// A claim that is live here (or being revoked), with its deadline not yet passed.
    pub fn live_claim(&self, token: &str) -> Option<ClaimRecord> {
        let now = Instant::now();
        self.lock()
            .claims
            .get(token)
            .filter(|c| c.deadline > now)
            .map(|c| c.record.clone())
    }

    /// Every open session with how long ago it was last renewed (its deadline less its TTL)
    /// and the claims it holds, in session id order: what the board's machines view shows.
    pub fn live_sessions(&self) -> Vec<LiveSession> {
        let now = Instant::now();
        let state = self.lock();
        let mut sessions: Vec<LiveSession> = state
            .sessions
            .values()
            .map(|session| {
                let ttl = Duration::from_millis(u64::from(session.record.ttl_ms));
                LiveSession {
                    record: session.record.clone(),
                    renewed_ago: ttl
                        .saturating_sub(session.deadline.saturating_duration_since(now)),
                    claims: session
                        .claims
                        .iter()
                        .filter_map(|token| state.claims.get(token))
                        .map(|claim| claim.record.clone())
                        .collect(),
                }
            })
            .collect();
        sessions.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        sessions
    }

    /// Free slots of a session (0 if it is not open).
    pub fn free_slots(&self, session_id: &str) -> u32 {
        self.lock()
            .sessions
            .get(session_id)
            .map_or(0, |s| s.record.slots.saturating_sub(s.claims.len() as u32))
    }

    /// The running counts, caps and open sessions the dispatcher needs.
    pub fn load(&self) -> Load {
        let state = self.lock();
        let mut load = state.load.clone();
        load.profile_caps = self.settings.profile_caps.clone();
        load.sessions = state
            .sessions
            .values()
            .map(|s| SessionView {
                id: s.record.id.clone(),
                profiles: s.record.profiles.clone(),
                capabilities: s.record.capabilities.clone(),
                machine_id: s.record.machine_id.clone(),
                review_lane: s.record.review_lane,
                free_slots: s.record.slots.saturating_sub(s.claims.len() as u32),
            })
            .collect();
        load
    }

    /// Binds a keep-alive stream to a session, replacing an earlier one. Returns the receiver
    /// of pushes, or `None` if the session is not open.
    pub fn attach(&self, session_id: &str) -> Option<mpsc::Receiver<Push>> {
        let mut state = self.lock();
        let session = state.sessions.get_mut(session_id)?;
        let (tx, rx) = mpsc::channel(PUSH_CAPACITY);
        session.pushes = Some(tx);
        Some(rx)
    }

    /// Tells every attached session that the service is draining.
    pub fn drain_all(&self) {
        for session in self.lock().sessions.values() {
            if let Some(tx) = &session.pushes {
                let _ = tx.try_send(Push::Drain);
            }
        }
    }

    /// Counts of live sessions and claims.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.sessions.len(), state.claims.len())
    }

    /// Waits until something changed that may make work claimable, and says what (everything
    /// since the last call).
    pub async fn work_changed(&self) -> Changes {
        self.work.notified().await;
        std::mem::take(&mut *self.changes.lock().expect("changes lock"))
    }

    /// Wakes the dispatcher for anything (a waiter arrived, or a cooldown ended).
    pub fn poke(&self) {
        self.changes
            .lock()
            .expect("changes lock")
            .add(Claimable::Anything);
        self.work.notify_one();
    }

    /// Publishes the id of the newest committed event (watchers wait on it).
    pub fn publish_event_id(&self, id: i64) {
        self.latest_event.send_if_modified(|latest| {
            let newer = id > *latest;
            if newer {
                *latest = id;
            }
            newer
        });
    }

    /// A receiver of the newest committed event id.
    pub fn event_ids(&self) -> watch::Receiver<i64> {
        self.latest_event.subscribe()
    }

    /// The earliest armed deadline (the lease health check watches that it is taken in time).
    pub fn earliest_deadline(&self) -> Option<(Deadline, Instant)> {
        self.timers.earliest()
    }

    /// Records the lag from a lease deadline to its committed release.
    pub fn record_lag(&self, lag: Duration) {
        metrics::histogram!(crate::metrics::EXPIRY_LAG).record(lag.as_secs_f64());
        let mut samples = self.lag_us.lock().expect("lag lock");
        if samples.len() >= LAG_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(lag.as_micros() as u64);
    }

    /// Expiry-lag percentiles: (count, p50, p99, max) in microseconds.
    pub fn lag_percentiles(&self) -> (u64, u64, u64, u64) {
        let mut samples: Vec<u64> = self
            .lag_us
            .lock()
            .expect("lag lock")
            .iter()
            .copied()
            .collect();
        if samples.is_empty() {
            return (0, 0, 0, 0);
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        (
            samples.len() as u64,
            at(0.50),
            at(0.99),
            *samples.last().unwrap_or(&0),
        )
    }
}

/// Whether a lease's persisted deadline has fallen far enough behind its exact one to write.
fn persist_due(deadline: Instant, persisted: Instant, ttl: Duration) -> bool {
    lease::persist_due(deadline.saturating_duration_since(persisted), ttl)
}

fn decrement(map: &mut HashMap<String, u32>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl LiveLeases for Registry {
    fn apply(&self, effects: Vec<Effect>) {
        Registry::apply(self, effects);
    }

    fn publish_event_id(&self, id: i64) {
        Registry::publish_event_id(self, id);
    }

    fn claim_overdue(&self, token: &str) -> bool {
        Registry::claim_overdue(self, token)
    }

    fn session_overdue(&self, session_id: &str) -> bool {
        Registry::session_overdue(self, session_id)
    }

    fn free_slots(&self, session_id: &str) -> u32 {
        Registry::free_slots(self, session_id)
    }

    fn load(&self) -> Load {
        Registry::load(self)
    }

    fn claim_tokens(&self) -> Vec<String> {
        Registry::claim_tokens(self)
    }
}
