//! `renew` and `renew-unary`: lease renewals per second. `--renew-sessions` sessions each hold
//! `--renew-claims` claims (ttl 30 s).
//!
//! - `renew`: each session's KeepAlive stream keeps `--pipeline` messages outstanding, sending
//!   the next as each answer arrives. One renewal = one acknowledged keep-alive message (it
//!   renews the session and every claim it holds).
//! - `renew-unary`: `--renew-clients` clients call Renew back to back over every claim token.
//!   One renewal = one acknowledged Renew call (it renews one claim and its session).
//! - `renew-token`: `renew-unary` over the Unix socket without a token, then with a
//!   supervisor's bearer token, then with the token over TCP, on one kanband; the figure is
//!   the ratio with / without a token over the socket (the cost of authentication alone).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use kanband_gateway::Target;
use kanband_proto::pb::{self, keep_alive_response::Event};
use tokio::{
    sync::{Barrier, mpsc},
    task::JoinSet,
};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use super::{
    Env, Measured, Pool,
    hold::{Held, MACHINE_ID, hold},
    load::{Step, Tally, create_tasks, for_duration},
};
use crate::server::own_cpu_time;

/// Lease time of the sessions.
const TTL_MS: u32 = 30_000;

/// Creates the tasks and the sessions holding them, without keep-alives.
async fn setup(env: &Env<'_>) -> anyhow::Result<Vec<Held>> {
    setup_on(env, &env.pool, &env.pool, &env.profile("renew")).await
}

/// What one pipelined KeepAlive stream did in the timed window.
#[derive(Debug, Default)]
struct StreamTally {
    renewed: u64,
    claims_per_answer: usize,
}

/// Runs `renew`: pipelined KeepAlive streams.
pub(crate) async fn run_stream(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let held = setup(env).await?;
    let pipeline = env.sizes.pipeline.max(1);
    let duration = env.sizes.duration();
    let barrier = Arc::new(Barrier::new(held.len() + 1));
    let mut set = JoinSet::new();
    for session in &held {
        let mut client = env.pool.get();
        let barrier = barrier.clone();
        let request = pb::KeepAliveRequest {
            session_id: session.session_id.clone(),
        };
        set.spawn(async move {
            let (tx, rx) = mpsc::channel(pipeline + 1);
            let opened = async {
                tx.send(request.clone()).await.context("request channel")?;
                let mut inbound = client
                    .leases
                    .keep_alive(ReceiverStream::new(rx))
                    .await
                    .context("KeepAlive")?
                    .into_inner();
                let first = inbound.message().await.context("KeepAlive")?;
                Ok::<_, anyhow::Error>((inbound, first))
            }
            .await;
            // Meet at the barrier whatever happened, so the others are not left waiting.
            barrier.wait().await;
            let (mut inbound, first) = opened?;
            let mut tally = StreamTally::default();
            match first {
                Some(pb::KeepAliveResponse {
                    event: Some(Event::Renewed(renewed)),
                }) => tally.claims_per_answer = renewed.claim_tokens.len(),
                other => bail!("KeepAlive answered {other:?} instead of renewed"),
            }
            let end = Instant::now() + duration;
            for _ in 0..pipeline {
                tx.send(request.clone()).await.context("request channel")?;
            }
            while let Some(answer) = inbound.message().await.context("KeepAlive")? {
                match answer.event {
                    Some(Event::Renewed(_)) => {}
                    other => bail!("KeepAlive pushed {other:?}"),
                }
                if Instant::now() > end {
                    break;
                }
                tally.renewed += 1;
                tx.send(request.clone()).await.context("request channel")?;
            }
            Ok(tally)
        });
    }
    barrier.wait().await;
    let cpu = env.cpu_meter();
    let mut renewed = 0;
    let mut claims_per_answer = Vec::new();
    while let Some(joined) = set.join_next().await {
        let tally = joined.expect("bench worker panicked")?;
        renewed += tally.renewed;
        claims_per_answer.push(tally.claims_per_answer);
    }
    let cpu = cpu.note(env);
    let expected = env.sizes.renew_claims.max(1) as usize;
    if claims_per_answer.iter().any(|&n| n != expected) {
        bail!("a keep-alive answer covered other than {expected} claims: {claims_per_answer:?}");
    }
    let rate = renewed as f64 / duration.as_secs_f64();
    Ok(Measured::new(rate)
        .note(format!(
            "one renewal = one acknowledged KeepAlive message (renews the session and its \
             {expected} claims, so {:.0} claim renewals/s)",
            rate * expected as f64
        ))
        .note(format!(
            "{} streams x {pipeline} outstanding, {renewed} answers in {:.1} s",
            held.len(),
            duration.as_secs_f64()
        ))
        .note(cpu)
        .detail("renewals", renewed)
        .detail("claims_per_renewal", expected))
}

/// Runs `renew-unary`: concurrent Renew calls.
pub(crate) async fn run_unary(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let held = setup(env).await?;
    let cpu = env.cpu_meter();
    let unary = renew_for_duration(env, &env.pool, &held).await?;
    let mut measured = Measured::new(unary.rate)
        .note(unary.describe())
        .note(cpu.note(env))
        .detail("renewals", unary.done)
        .detail("p50_us", unary.p50_us)
        .detail("p99_us", unary.p99_us);
    if let Some(errors) = unary.errors {
        measured = measured.note(errors);
    }
    Ok(measured)
}

/// Rounds of `renew-token`: each runs every arm for a share of `--duration`, starting each
/// round with the next arm, so that neither order nor a drift of the machine favours one.
const TOKEN_ROUNDS: usize = 6;

/// Runs `renew-token`: `renew-unary` in three arms on one kanband. Over the Unix socket as
/// kanband's own user (no token: the peer's uid makes it the local admin); over the same socket
/// with a supervisor's bearer token (its sessions opened with that token, so every Renew is
/// authenticated by hashing and looking up the token and checked against the session's owner);
/// over TCP loopback with the same token, as a remote supervisor calls. Each arm runs
/// `--duration` in all, in [`TOKEN_ROUNDS`] rotated slices (the first arm to run is measurably
/// faster on this machine, whichever it is). The figure is the cost of authentication alone:
/// socket with a token / socket without. The TCP rate and its ratio are in the notes and the
/// JSON.
pub(crate) async fn run_token(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let server = env.server.as_ref().context(
        "renew-token needs a kanband the bench starts (its socket and TCP); drop --addr",
    )?;
    let connections = env.sizes.connections;
    let socket = Pool::connect(&Target::from(&server.unix_addr), connections).await?;
    let secret = socket
        .get()
        .admin
        .create_token(pb::CreateTokenRequest {
            name: env.profile("renew-supervisor"),
            role: "supervisor".into(),
            machine_id: MACHINE_ID.into(),
            profiles: Vec::new(),
            ..Default::default()
        })
        .await
        .context("CreateToken (supervisor)")?
        .into_inner()
        .secret;
    let socket_token = Pool::connect(
        &Target::new(&server.unix_addr, Some(secret.clone())),
        connections,
    )
    .await?;
    let tcp = Pool::connect(&Target::new(&server.tcp_addr, Some(secret)), connections).await?;

    // Tasks are made by the admin over the socket (a supervisor may not create them); each
    // arm's sessions, grants and renewals go through that arm's pool. A Renew renews its
    // session too, so no session expires between its arm's slices.
    let pools = [&socket, &socket_token, &tcp];
    let mut held = Vec::new();
    for (pool, name) in pools.iter().zip(["socket", "socket-token", "tcp-token"]) {
        held.push(setup_on(env, &socket, pool, &env.profile(&format!("renew-{name}"))).await?);
    }
    let slice = env.sizes.duration() / TOKEN_ROUNDS as u32;
    let mut tallies: [Tally; 3] = Default::default();
    // CPU time each arm cost kanband and the bench: per call, it shows where a difference in
    // rate comes from, and moves less than the rate when other work shares the machine.
    let mut spent = [[Duration::ZERO; 2]; 3];
    let cpu_times = || [server.cpu_time(), own_cpu_time()];
    let cpu = env.cpu_meter();
    for round in 0..TOKEN_ROUNDS {
        for arm in (0..pools.len()).map(|i| (i + round) % pools.len()) {
            let before = cpu_times();
            let tally = renew_for(env, pools[arm], &held[arm], slice).await;
            for (side, (before, after)) in before.into_iter().zip(cpu_times()).enumerate() {
                if let (Some(before), Some(after)) = (before, after) {
                    spent[arm][side] += after.saturating_sub(before);
                }
            }
            tallies[arm].merge(tally);
        }
    }
    let cpu = cpu.note(env);
    let per_call = |arm: usize, side: usize| {
        spent[arm][side].as_secs_f64() * 1e6 / tallies[arm].done.max(1) as f64
    };
    let cpu_per_call = format!(
        "CPU per call (kanband / bench, us): socket {:.1} / {:.1}, socket with token {:.1} / \
         {:.1}, TCP with token {:.1} / {:.1}",
        per_call(0, 0),
        per_call(0, 1),
        per_call(1, 0),
        per_call(1, 1),
        per_call(2, 0),
        per_call(2, 1)
    );
    let kanband_us = [per_call(0, 0), per_call(1, 0), per_call(2, 0)];
    let claims = held[0].iter().map(|h| h.tokens.len()).sum();
    let [without, with, tcp] =
        tallies.map(|tally| Unary::of(tally, env.sizes.renew_clients, claims));
    let (without, with, tcp) = (without?, with?, tcp?);

    let ratio = with.rate / without.rate.max(f64::MIN_POSITIVE);
    let tcp_ratio = tcp.rate / without.rate.max(f64::MIN_POSITIVE);
    let mut measured = Measured::new(ratio)
        .note(format!(
            "unary Renew over the Unix socket: {:.0}/s without a token, {:.0}/s with a \
             supervisor token (ratio {ratio:.3}); over TCP loopback with the token {:.0}/s \
             (ratio {tcp_ratio:.3} to the socket without a token); {TOKEN_ROUNDS} rotated \
             rounds",
            without.rate, with.rate, tcp.rate
        ))
        .note(format!("socket, no token: {}", without.describe()))
        .note(format!("socket, token: {}", with.describe()))
        .note(format!("TCP, token: {}", tcp.describe()))
        .note(cpu_per_call)
        .note(cpu)
        .detail("kanband_cpu_us_per_call_without_token", kanband_us[0])
        .detail("kanband_cpu_us_per_call_with_token", kanband_us[1])
        .detail("kanband_cpu_us_per_call_tcp_with_token", kanband_us[2])
        .detail("without_token_per_s", without.rate)
        .detail("with_token_per_s", with.rate)
        .detail("tcp_with_token_per_s", tcp.rate)
        .detail("ratio", ratio)
        .detail("tcp_ratio", tcp_ratio)
        .detail("without_token_p99_us", without.p99_us)
        .detail("with_token_p99_us", with.p99_us)
        .detail("tcp_with_token_p99_us", tcp.p99_us);
    for errors in [without.errors, with.errors, tcp.errors]
        .into_iter()
        .flatten()
    {
        measured = measured.note(errors);
    }
    Ok(measured)
}

/// Creates tasks of `profile` through `admin` and the sessions holding them through
/// `supervisor`, without keep-alives.
async fn setup_on(
    env: &Env<'_>,
    admin: &Pool,
    supervisor: &Pool,
    profile: &str,
) -> anyhow::Result<Vec<Held>> {
    let sizes = env.sizes;
    let claims = sizes.renew_claims.max(1);
    let total = sizes.renew_sessions.max(1) * claims as usize;
    create_tasks(admin, total, profile, sizes.bulk_concurrency).await?;
    hold(supervisor, profile, total, claims, TTL_MS, None).await
}

/// What one timed stretch of unary Renew calls did.
#[derive(Debug)]
struct Unary {
    rate: f64,
    done: u64,
    elapsed_s: f64,
    clients: usize,
    claims: usize,
    latency: String,
    p50_us: u64,
    p99_us: u64,
    errors: Option<String>,
}

impl Unary {
    /// The figures of `tally`, made by `clients` clients over `claims` claims.
    fn of(tally: Tally, clients: usize, claims: usize) -> anyhow::Result<Unary> {
        if tally.done == 0 {
            bail!(
                "no renewal was acknowledged; {}",
                tally.error_note().unwrap_or_default()
            );
        }
        let latency = tally
            .samples
            .summary()
            .expect("samples of counted renewals");
        Ok(Unary {
            rate: tally.rate(),
            done: tally.done,
            elapsed_s: tally.elapsed.as_secs_f64(),
            clients: clients.max(1),
            claims,
            latency: latency.describe(),
            p50_us: latency.p50_us,
            p99_us: latency.p99_us,
            errors: tally.error_note(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "one renewal = one acknowledged Renew call (one claim and its session); {} calls \
             in {:.1} s from {} clients over {} claims; call latency {}",
            self.done, self.elapsed_s, self.clients, self.claims, self.latency
        )
    }
}

/// `--renew-clients` clients call Renew back to back over the claims of `held` through `pool`
/// for `--duration`.
async fn renew_for_duration(env: &Env<'_>, pool: &Pool, held: &[Held]) -> anyhow::Result<Unary> {
    let tally = renew_for(env, pool, held, env.sizes.duration()).await;
    let claims = held.iter().map(|h| h.tokens.len()).sum();
    Unary::of(tally, env.sizes.renew_clients, claims)
}

/// `--renew-clients` clients call Renew back to back over the claims of `held` through `pool`
/// for `duration`.
async fn renew_for(env: &Env<'_>, pool: &Pool, held: &[Held], duration: Duration) -> Tally {
    let tokens: Arc<Vec<String>> = Arc::new(held.iter().flat_map(|h| h.tokens.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let pool = pool.clone();
    for_duration(env.sizes.renew_clients.max(1), duration, move |_| {
        let mut client = pool.get();
        let claim_token = tokens[next.fetch_add(1, Ordering::Relaxed) % tokens.len()].clone();
        async move {
            client
                .leases
                .renew(pb::RenewRequest { claim_token })
                .await?;
            Ok(Step::Done)
        }
    })
    .await
}
