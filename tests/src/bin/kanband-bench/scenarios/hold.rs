//! Sessions that hold claims: opening them, keeping them alive over a KeepAlive stream in the
//! background, and acquiring claims.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, bail};
use kanband_gateway::Client;
use kanband_proto::pb::{self, keep_alive_response::Event};
use tokio::{sync::mpsc, task::JoinSet};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use super::Pool;

/// How long to wait for the first answer on a new KeepAlive stream.
const FIRST_ANSWER: Duration = Duration::from_secs(10);

/// The machine id of the bench's sessions (a supervisor token is made for it).
pub(crate) const MACHINE_ID: &str = "kanband-bench";

/// Opens a session for `profile` and returns its id.
pub(crate) async fn open_session(
    client: &mut Client,
    profile: &str,
    slots: u32,
    ttl_ms: u32,
) -> anyhow::Result<String> {
    let session = client
        .leases
        .open_session(pb::OpenSessionRequest {
            machine_id: MACHINE_ID.into(),
            hostname: "localhost".into(),
            profiles: vec![profile.to_owned()],
            slots,
            ttl_ms,
            ..Default::default()
        })
        .await
        .context("OpenSession")?
        .into_inner();
    Ok(session.id)
}

/// Acquires `n` claims for a session, one Acquire at a time, each waiting up to `wait_ms`;
/// returns their tokens. Fails if an Acquire comes back empty.
pub(crate) async fn acquire_n(
    client: &mut Client,
    session_id: &str,
    n: usize,
    wait_ms: i64,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(n);
    while tokens.len() < n {
        let grant = client
            .leases
            .acquire(pb::AcquireRequest {
                session_id: session_id.to_owned(),
                wait_ms,
            })
            .await
            .context("Acquire")?
            .into_inner()
            .grant;
        match grant {
            Some(grant) => tokens.push(grant.claim_token),
            None => bail!(
                "Acquire granted nothing within {wait_ms} ms after {} of {n} claims",
                tokens.len()
            ),
        }
    }
    Ok(tokens)
}

/// A KeepAlive stream in the background that renews a session (and all its claims) at a
/// fixed interval. Dropping it ends the stream.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    task: tokio::task::JoinHandle<()>,
    failure: Arc<Mutex<Option<String>>>,
}

/// Opens a session for `profile` and keeps it alive, renewing four times per TTL; returns its id
/// and the [`KeepAlive`] that holds it (dropping it lets the session expire).
pub(crate) async fn kept_session(
    client: &mut Client,
    profile: &str,
    slots: u32,
    ttl_ms: u32,
) -> anyhow::Result<(String, KeepAlive)> {
    let id = open_session(client, profile, slots, ttl_ms).await?;
    let alive = KeepAlive::start(client, &id, Duration::from_millis(u64::from(ttl_ms) / 4)).await?;
    Ok((id, alive))
}

impl KeepAlive {
    /// Opens the stream, waits for the first `renewed`, then renews every `every`.
    pub(crate) async fn start(
        client: &mut Client,
        session_id: &str,
        every: Duration,
    ) -> anyhow::Result<KeepAlive> {
        let request = pb::KeepAliveRequest {
            session_id: session_id.to_owned(),
        };
        let (tx, rx) = mpsc::channel(4);
        tx.send(request.clone())
            .await
            .context("KeepAlive request channel")?;
        let mut inbound = client
            .leases
            .keep_alive(ReceiverStream::new(rx))
            .await
            .context("KeepAlive")?
            .into_inner();
        match tokio::time::timeout(FIRST_ANSWER, inbound.message()).await {
            Ok(Ok(Some(pb::KeepAliveResponse {
                event: Some(Event::Renewed(_)),
            }))) => {}
            Ok(Ok(other)) => bail!("KeepAlive answered {other:?} instead of renewed"),
            Ok(Err(status)) => bail!("KeepAlive: {status}"),
            Err(_) => bail!("KeepAlive gave no answer within {FIRST_ANSWER:?}"),
        }
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let why = loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if tx.send(request.clone()).await.is_err() {
                            break "the request stream closed".to_owned();
                        }
                    }
                    answer = inbound.message() => match answer {
                        Ok(Some(pb::KeepAliveResponse { event: Some(Event::Renewed(_)) })) => {}
                        Ok(Some(other)) => break format!("KeepAlive pushed {other:?}"),
                        Ok(None) => break "the KeepAlive stream ended".to_owned(),
                        Err(status) => break format!("KeepAlive: {status}"),
                    },
                }
            };
            *failed.lock().expect("keep-alive failure") = Some(why);
        });
        Ok(KeepAlive { task, failure })
    }

    /// Fails if the stream has failed.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        match &*self.failure.lock().expect("keep-alive failure") {
            Some(why) => bail!("a keep-alive stream failed: {why}"),
            None => Ok(()),
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An open session, the claims it holds, and the stream keeping it alive (if any).
#[derive(Debug)]
pub(crate) struct Held {
    /// Session id.
    pub(crate) session_id: String,
    /// Tokens of its claims.
    pub(crate) tokens: Vec<String>,
    /// Its keep-alive stream.
    pub(crate) keep_alive: Option<KeepAlive>,
}

/// Opens sessions of `profile` with `per_session` slots until they hold `total` claims (the
/// last session may hold fewer), all at once, each kept alive every `every` if given. The
/// tasks must already be ready for `profile`.
pub(crate) async fn hold(
    pool: &Pool,
    profile: &str,
    total: usize,
    per_session: u32,
    ttl_ms: u32,
    every: Option<Duration>,
) -> anyhow::Result<Vec<Held>> {
    let per_session = per_session.max(1) as usize;
    let mut set = JoinSet::new();
    let mut left = total;
    let mut index = 0;
    while left > 0 {
        let n = left.min(per_session);
        left -= n;
        let mut client = pool.get();
        let profile = profile.to_owned();
        set.spawn(async move {
            let session_id = open_session(&mut client, &profile, n as u32, ttl_ms).await?;
            let keep_alive = match every {
                Some(every) => Some(KeepAlive::start(&mut client, &session_id, every).await?),
                None => None,
            };
            let tokens = acquire_n(&mut client, &session_id, n, 10_000).await?;
            Ok::<_, anyhow::Error>((
                index,
                Held {
                    session_id,
                    tokens,
                    keep_alive,
                },
            ))
        });
        index += 1;
    }
    let mut held = Vec::new();
    while let Some(joined) = set.join_next().await {
        held.push(joined.expect("bench worker panicked")?);
    }
    held.sort_by_key(|(index, _)| *index);
    Ok(held.into_iter().map(|(_, held)| held).collect())
}

/// Fails if any keep-alive stream of `held` has failed.
pub(crate) fn check_alive(held: &[Held]) -> anyhow::Result<()> {
    held.iter()
        .filter_map(|h| h.keep_alive.as_ref())
        .try_for_each(KeepAlive::check)
}
