//! `renew` and `renew-unary`: lease renewals per second. `--renew-sessions` sessions each hold
//! `--renew-claims` claims (ttl 30 s).
//!
//! - `renew`: each session's KeepAlive stream keeps `--pipeline` messages outstanding, sending
//!   the next as each answer arrives. One renewal = one acknowledged keep-alive message (it
//!   renews the session and every claim it holds).
//! - `renew-unary`: `--renew-clients` clients call Renew back to back over every claim token.
//!   One renewal = one acknowledged Renew call (it renews one claim and its session).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use anyhow::{Context as _, bail};
use kanband_proto::pb::{self, keep_alive_response::Event};
use tokio::{
    sync::{Barrier, mpsc},
    task::JoinSet,
};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use super::{
    Env, Measured,
    hold::{Held, hold},
    load::{Step, create_tasks, for_duration},
};

/// Lease time of the sessions.
const TTL_MS: u32 = 30_000;

/// Creates the tasks and the sessions holding them, without keep-alives.
async fn setup(env: &Env<'_>) -> anyhow::Result<Vec<Held>> {
    let sizes = env.sizes;
    let profile = env.profile("renew");
    let claims = sizes.renew_claims.max(1);
    let total = sizes.renew_sessions.max(1) * claims as usize;
    create_tasks(&env.pool, total, &profile, sizes.bulk_concurrency).await?;
    hold(&env.pool, &profile, total, claims, TTL_MS, None).await
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
    let tokens: Arc<Vec<String>> = Arc::new(held.iter().flat_map(|h| h.tokens.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let clients = env.sizes.renew_clients.max(1);
    let pool = env.pool.clone();
    let count = tokens.len();
    let cpu = env.cpu_meter();
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
    let mut measured = Measured::new(tally.rate())
        .note(format!(
            "one renewal = one acknowledged Renew call (one claim and its session); {} calls \
             in {:.1} s from {clients} clients over {count} claims",
            tally.done,
            tally.elapsed.as_secs_f64()
        ))
        .note(format!("call latency {}", latency.describe()))
        .note(cpu.note(env))
        .detail("renewals", tally.done)
        .detail("p50_us", latency.p50_us)
        .detail("p99_us", latency.p99_us);
    if let Some(errors) = tally.error_note() {
        measured = measured.note(errors);
    }
    Ok(measured)
}
