//! The scenarios, one module per figure of README's performance table, and what they share: where
//! kanband runs and the connections to it ([`launch`]), the sizes ([`sizes`]), and what a
//! scenario measured ([`Measured`]).
//!
//! - `create`, `cycle`, `renew`, `renew-unary`: throughput for a fixed duration.
//! - `renew-token`: unary Renew with a supervisor token against without one, both over the
//!   socket (their ratio), and with the token over TCP.
//! - `cycle-large`: `cycle` on a database seeded with 1,000,000 done tasks, 10,000,000 events.
//! - `backlog`: what a backlog no waiting supervisor may take costs the creates beside it.
//! - `expiry`, `latency`: latency percentiles.
//! - `memory`, `startup`: resident memory and start-up time of the kanband process.
//! - `status-quo`: the real Hermes 0.19.0 board driven by `bench/hermes_status_quo.py`.
//!
//! [`load`] and [`hold`] hold the helpers: timed workers, bulk creation, sessions that hold
//! claims and keep them alive.

mod backlog;
mod create;
mod cycle;
mod expiry;
mod hold;
mod large;
mod latency;
mod launch;
mod load;
mod memory;
mod renew;
mod sizes;
mod startup;
mod status_quo;

pub(crate) use launch::{Launch, Pool};
pub(crate) use sizes::Sizes;

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::{
    report::{Row, Target},
    server::{Kanband, machine_cpu_time, own_cpu_time},
};

/// A scenario: one figure of README's performance table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// Durable CreateTask calls per second from concurrent clients.
    Create,
    /// Durable Acquire -> Complete cycles per second.
    Cycle,
    /// Durable cycles per second with one CompleteAndAcquire call per cycle.
    CycleCombined,
    /// Durable cycles per second on a database seeded with 1,000,000 done tasks and
    /// 10,000,000 events.
    CycleLarge,
    /// How much slower creates get beside a backlog no waiting supervisor may take.
    Backlog,
    /// Lease renewals per second over pipelined KeepAlive streams.
    Renew,
    /// Lease renewals per second with unary Renew calls.
    RenewUnary,
    /// Unary Renew with a supervisor's bearer token over TCP against without a token over the
    /// Unix socket: the ratio.
    RenewToken,
    /// Deadline -> committed release lag with 10,000 live leases.
    Expiry,
    /// Ready -> granted to a supervisor waiting in Acquire.
    Latency,
    /// Resident memory with 100,000 tasks and 10,000 live leases.
    Memory,
    /// Start-up time on a data directory with 1,000,000 events.
    Startup,
    /// The status quo: Hermes 0.19.0's own board, claim -> complete cycles per second.
    StatusQuo,
}

impl Scenario {
    /// Every scenario, in the order they run by default.
    pub(crate) fn all() -> Vec<Scenario> {
        vec![
            Scenario::Create,
            Scenario::Cycle,
            Scenario::CycleCombined,
            Scenario::CycleLarge,
            Scenario::Backlog,
            Scenario::Renew,
            Scenario::RenewUnary,
            Scenario::RenewToken,
            Scenario::Expiry,
            Scenario::Latency,
            Scenario::Memory,
            Scenario::Startup,
            Scenario::StatusQuo,
        ]
    }

    /// Its command-line name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Create => "create",
            Scenario::Cycle => "cycle",
            Scenario::CycleCombined => "cycle-combined",
            Scenario::CycleLarge => "cycle-large",
            Scenario::Backlog => "backlog",
            Scenario::Renew => "renew",
            Scenario::RenewUnary => "renew-unary",
            Scenario::RenewToken => "renew-token",
            Scenario::Expiry => "expiry",
            Scenario::Latency => "latency",
            Scenario::Memory => "memory",
            Scenario::Startup => "startup",
            Scenario::StatusQuo => "status-quo",
        }
    }

    /// The figure (with the sizes that define it), its unit and the brief's target.
    fn figure(self, sizes: &Sizes) -> (String, &'static str, Target) {
        match self {
            Scenario::Create => (
                "durable creates".into(),
                "tasks/s",
                Target::AtLeast(20_000.0),
            ),
            Scenario::Cycle => (
                "durable claim->complete cycles".into(),
                "tasks/s",
                Target::AtLeast(15_000.0),
            ),
            Scenario::CycleCombined => (
                "durable cycles, one CompleteAndAcquire call each".into(),
                "tasks/s",
                Target::AtLeast(15_000.0),
            ),
            Scenario::CycleLarge => (
                format!(
                    "durable claim->complete cycles beside {} done tasks, {} events",
                    human(sizes.large_tasks),
                    human(sizes.large_tasks * sizes.large_events_per_task)
                ),
                "tasks/s",
                Target::AtLeast(15_000.0 * 0.8),
            ),
            Scenario::Backlog => (
                format!(
                    "creates/s lost beside {} unclaimable ready tasks, {} waiting pollers",
                    human(sizes.backlog_tasks),
                    sizes.backlog_pollers
                ),
                "%",
                Target::AtMost(10.0),
            ),
            Scenario::Renew => (
                "lease renewals (KeepAlive)".into(),
                "renewals/s",
                Target::AtLeast(50_000.0),
            ),
            Scenario::RenewUnary => (
                "lease renewals (unary Renew)".into(),
                "renewals/s",
                Target::AtLeast(50_000.0),
            ),
            Scenario::RenewToken => (
                "unary Renew with a supervisor token / without (Unix socket)".into(),
                "ratio",
                Target::AtLeast(0.9),
            ),
            Scenario::Expiry => (
                format!("expiry lag p99, {} live leases", human(sizes.expiry_held)),
                "ms",
                Target::AtMost(10.0),
            ),
            Scenario::Latency => ("ready->granted p99".into(), "ms", Target::AtMost(5.0)),
            Scenario::Memory => (
                format!(
                    "RSS, {} tasks + {} leases",
                    human(sizes.memory_tasks),
                    human(sizes.memory_claims.min(sizes.memory_tasks))
                ),
                "MiB",
                Target::AtMost(150.0),
            ),
            Scenario::Startup => (
                format!("start-up, {} events", human(sizes.startup_events)),
                "ms",
                Target::AtMost(1000.0),
            ),
            Scenario::StatusQuo => (
                "status quo: Hermes 0.19.0 kanban_db claim->complete cycles".into(),
                "tasks/s",
                Target::Reference,
            ),
        }
    }
}

/// `1M`, `100k`, `2500`: a size for a figure's name.
fn human(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// What a scenario measured.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    /// The figure.
    pub(crate) value: f64,
    /// How, and what else was seen.
    pub(crate) notes: Vec<String>,
    /// Extras for `--json`.
    pub(crate) details: Map<String, Value>,
}

impl Measured {
    /// A figure with no notes yet.
    pub(crate) fn new(value: f64) -> Measured {
        Measured {
            value,
            ..Measured::default()
        }
    }

    /// Adds a note.
    pub(crate) fn note(mut self, note: impl Into<String>) -> Measured {
        self.notes.push(note.into());
        self
    }

    /// Adds a machine-readable extra.
    pub(crate) fn detail(mut self, key: &str, value: impl Into<Value>) -> Measured {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// What a scenario runs against.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    /// Connections to the service.
    pub(crate) pool: Pool,
    /// The kanband the bench started for this scenario, if it did.
    pub(crate) server: Option<Kanband>,
    /// How to start another (the start-up scenario restarts it).
    pub(crate) launch: &'a Launch,
    /// The sizes.
    pub(crate) sizes: &'a Sizes,
    /// Makes names (profiles) unique to this scenario run, so runs against one service
    /// (`--addr`) do not take each other's tasks.
    tag: String,
}

impl Env<'_> {
    /// A profile name unique to this run: `bench-<what>-<tag>`.
    pub(crate) fn profile(&self, what: &str) -> String {
        format!("bench-{what}-{}", self.tag)
    }

    /// Starts measuring the CPU kanband, the bench and the rest of the machine use from now.
    pub(crate) fn cpu_meter(&self) -> CpuMeter {
        CpuMeter {
            started: Instant::now(),
            kanband: self.server.as_ref().and_then(Kanband::cpu_time),
            bench: own_cpu_time(),
            machine: machine_cpu_time(),
        }
    }
}

/// CPU used by kanband, by the bench and by everything else over a stretch of time, to show
/// which side a figure is bound by and whether other work on the machine disturbed it.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    started: Instant,
    kanband: Option<Duration>,
    bench: Option<Duration>,
    machine: Option<Duration>,
}

impl CpuMeter {
    /// `CPU: kanband 1.40 cores, bench 0.55, other processes 0.02` since the meter started.
    pub(crate) fn note(&self, env: &Env<'_>) -> String {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let used = |before: Option<Duration>, after: Option<Duration>| {
            Some(after?.saturating_sub(before?).as_secs_f64() / wall)
        };
        let kanband = used(
            self.kanband,
            env.server.as_ref().and_then(Kanband::cpu_time),
        );
        let bench = used(self.bench, own_cpu_time());
        let machine = used(self.machine, machine_cpu_time());
        let show = |cores: Option<f64>| cores.map_or("unknown".to_owned(), |c| format!("{c:.2}"));
        let others = machine.map(|m| (m - kanband.unwrap_or(0.0) - bench.unwrap_or(0.0)).max(0.0));
        format!(
            "CPU cores while timed: kanband {}, bench {}, other processes{} {}",
            show(kanband),
            show(bench),
            if kanband.is_none() {
                " (kanband among them)"
            } else {
                ""
            },
            show(others)
        )
    }
}

/// Runs one scenario on its own fresh kanband (or the one at `--addr`) and makes its row.
pub(crate) async fn run(scenario: Scenario, launch: &Launch, sizes: &Sizes) -> Row {
    let started = Instant::now();
    let (figure, unit, target) = scenario.figure(sizes);
    let limit = Duration::from_secs(sizes.timeout);
    let measuring = async {
        match scenario {
            // Nothing of kanband's is involved.
            Scenario::StatusQuo => status_quo::run(sizes).await,
            _ => measure(scenario, launch, sizes).await,
        }
    };
    let outcome = match tokio::time::timeout(limit, measuring).await {
        Ok(outcome) => outcome,
        Err(_) => Err(anyhow::anyhow!(
            "did not finish within {limit:?} (--timeout)"
        )),
    };
    let (value, notes, details) = match outcome {
        Ok(measured) => (
            Ok(measured.value),
            measured.notes.join("; "),
            measured.details,
        ),
        Err(err) => (Err(format!("{err:#}")), String::new(), Map::new()),
    };
    Row {
        scenario: scenario.name(),
        figure,
        unit,
        target,
        runs: value.iter().copied().collect(),
        value,
        notes,
        details,
        wall: started.elapsed(),
    }
}

/// Starts kanband (unless `--addr`), runs the scenario and stops kanband.
async fn measure(scenario: Scenario, launch: &Launch, sizes: &Sizes) -> anyhow::Result<Measured> {
    let (server, addr) = match launch.running_at() {
        Some(addr) => (None, addr),
        None => {
            let server = launch.start(None).await?;
            let addr = launch.client_addr(&server);
            (Some(server), addr)
        }
    };
    let tag = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let mut env = Env {
        pool: Pool::connect(&addr, sizes.connections).await?,
        server,
        launch,
        sizes,
        tag,
    };
    let measured = match scenario {
        Scenario::Create => create::run(&mut env).await,
        Scenario::Cycle => cycle::run(&mut env, cycle::Calls::Separate).await,
        Scenario::CycleCombined => cycle::run(&mut env, cycle::Calls::Combined).await,
        Scenario::CycleLarge => large::run(&mut env).await,
        Scenario::Backlog => backlog::run(&mut env).await,
        Scenario::Renew => renew::run_stream(&mut env).await,
        Scenario::RenewUnary => renew::run_unary(&mut env).await,
        Scenario::RenewToken => renew::run_token(&mut env).await,
        Scenario::Expiry => expiry::run(&mut env).await,
        Scenario::Latency => latency::run(&mut env).await,
        Scenario::Memory => memory::run(&mut env).await,
        Scenario::Startup => startup::run(&mut env).await,
        Scenario::StatusQuo => unreachable!("the status quo starts no kanband"),
    };
    let Env { pool, server, .. } = env;
    drop(pool);
    let mut measured = measured?;
    if let Some(server) = server
        && let Err(err) = server.stop().await
    {
        measured
            .notes
            .push(format!("WARNING: kanband did not stop cleanly: {err:#}"));
    }
    Ok(measured)
}
