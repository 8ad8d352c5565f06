//! `renew` and `renew-unary`: lease renewals per second. `--renew-sessions` sessions each hold
//! `--renew-claims` claims (ttl 30 s).
//!
//! - `renew`: each session's KeepAlive stream keeps `--pipeline` messages outstanding, sending
//!   the next as each answer arrives. One renewal = one acknowledged keep-alive message (it
//!   renews the session and every claim it holds).
//! - `renew-unary`: `--renew-clients` clients call Renew back to back over every claim token.
//!   One renewal = one acknowledged Renew call (it renews one claim and its session).
//! - `renew-token`: `renew-unary` without a token over the Unix socket, then with a
//!   supervisor's bearer token over TCP, on one kanband; the figure is their ratio.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
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
    load::{Step, create_tasks, for_duration},
};

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

/// Runs `renew-token`: `renew-unary` twice on one kanband, first over the Unix socket as
/// kanband's own user (no token), then over TCP loopback with a supervisor's bearer token (its
/// sessions opened with that token, so every Renew is authenticated by hashing and looking up
/// the token). The figure is the ratio token / no token; both rates are in the notes and the
/// JSON. The two runs also differ in transport (TCP against a Unix socket), which the ratio
/// includes: that is how a remote supervisor would call.
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
        })
        .await
        .context("CreateToken (supervisor)")?
        .into_inner()
        .secret;
    let tcp = Pool::connect(&Target::new(&server.tcp_addr, Some(secret)), connections).await?;

    let plain = setup_on(env, &socket, &socket, &env.profile("renew-socket")).await?;
    let cpu = env.cpu_meter();
    let without = renew_for_duration(env, &socket, &plain).await?;
    let cpu_without = cpu.note(env);
    drop(plain);

    // Tasks are made by the admin over the socket (a supervisor may not create them); the
    // sessions, grants and renewals go over TCP with the supervisor token.
    let authed = setup_on(env, &socket, &tcp, &env.profile("renew-tcp")).await?;
    let cpu = env.cpu_meter();
    let with = renew_for_duration(env, &tcp, &authed).await?;
    let cpu_with = cpu.note(env);

    let ratio = with.rate / without.rate.max(f64::MIN_POSITIVE);
    let mut measured = Measured::new(ratio)
        .note(format!(
            "unary Renew: {:.0}/s over the Unix socket without a token, {:.0}/s over TCP \
             loopback with a supervisor token; ratio {ratio:.3}",
            without.rate, with.rate
        ))
        .note(format!(
            "without a token: {}; {cpu_without}",
            without.describe()
        ))
        .note(format!("with a token: {}; {cpu_with}", with.describe()))
        .detail("without_token_per_s", without.rate)
        .detail("with_token_per_s", with.rate)
        .detail("ratio", ratio)
        .detail("without_token_p99_us", without.p99_us)
        .detail("with_token_p99_us", with.p99_us);
    for errors in [without.errors, with.errors].into_iter().flatten() {
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
    let tokens: Arc<Vec<String>> = Arc::new(held.iter().flat_map(|h| h.tokens.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let clients = env.sizes.renew_clients.max(1);
    let claims = tokens.len();
    let pool = pool.clone();
    let tally = for_duration(clients, env.sizes.duration(), move |_| {
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
    .await;
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
        clients,
        claims,
        latency: latency.describe(),
        p50_us: latency.p50_us,
        p99_us: latency.p99_us,
        errors: tally.error_note(),
    })
}
