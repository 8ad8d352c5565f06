//! How big each scenario is: the command-line options that size the scenarios.

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};

/// How big each scenario is. Every size has a default that keeps the whole run within a few
/// minutes on the 2-core development machine.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Sizes {
    /// How long each throughput scenario runs, in seconds.
    #[arg(
        long,
        env = "KANBAND_BENCH_DURATION",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub(crate) duration: u64,

    /// create: concurrent clients calling CreateTask.
    #[arg(long, env = "KANBAND_BENCH_CONCURRENCY", default_value_t = 64)]
    pub(crate) concurrency: usize,

    /// Concurrent clients creating the tasks other scenarios need (set-up, not measured
    /// except as a note).
    #[arg(long, env = "KANBAND_BENCH_BULK_CONCURRENCY", default_value_t = 1024)]
    pub(crate) bulk_concurrency: usize,

    /// Connections (HTTP/2) the clients share, round-robin.
    #[arg(long, env = "KANBAND_BENCH_CONNECTIONS", default_value_t = 8)]
    pub(crate) connections: usize,

    /// cycle: sessions, each running one worker per slot.
    #[arg(long, env = "KANBAND_BENCH_CYCLE_SESSIONS", default_value_t = 32)]
    pub(crate) cycle_sessions: usize,

    /// cycle: slots of each session.
    #[arg(long, env = "KANBAND_BENCH_CYCLE_SLOTS", default_value_t = 8)]
    pub(crate) cycle_slots: u32,

    /// cycle: ready tasks created before the timed run; the run ends early, and is timed to
    /// its last completion, if they run out.
    #[arg(long, env = "KANBAND_BENCH_CYCLE_TASKS", default_value_t = 100_000)]
    pub(crate) cycle_tasks: usize,

    /// cycle-large: done tasks seeded into the database before the cycle scenario runs.
    #[arg(long, env = "KANBAND_BENCH_LARGE_TASKS", default_value_t = 1_000_000)]
    pub(crate) large_tasks: usize,

    /// cycle-large: events of each seeded task (created, claimed, completed, then comments).
    #[arg(
        long,
        env = "KANBAND_BENCH_LARGE_EVENTS_PER_TASK",
        default_value_t = 10
    )]
    pub(crate) large_events_per_task: usize,

    /// backlog: sessions waiting in Acquire throughout.
    #[arg(long, env = "KANBAND_BENCH_BACKLOG_POLLERS", default_value_t = 50)]
    pub(crate) backlog_pollers: usize,

    /// backlog: ready tasks no poller may take, created between the two timed phases.
    #[arg(long, env = "KANBAND_BENCH_BACKLOG_TASKS", default_value_t = 10_000)]
    pub(crate) backlog_tasks: usize,

    /// backlog: clients calling CreateTask back to back in each timed phase (1: sequential
    /// creates, each its own commit).
    #[arg(long, env = "KANBAND_BENCH_BACKLOG_CLIENTS", default_value_t = 1)]
    pub(crate) backlog_clients: usize,

    /// renew, renew-unary, renew-token: sessions.
    #[arg(long, env = "KANBAND_BENCH_RENEW_SESSIONS", default_value_t = 64)]
    pub(crate) renew_sessions: usize,

    /// renew, renew-unary, renew-token: claims each session holds.
    #[arg(long, env = "KANBAND_BENCH_RENEW_CLAIMS", default_value_t = 4)]
    pub(crate) renew_claims: u32,

    /// renew: keep-alive messages each stream keeps outstanding (pipelining).
    #[arg(long, env = "KANBAND_BENCH_PIPELINE", default_value_t = 8)]
    pub(crate) pipeline: usize,

    /// renew-unary, renew-token: concurrent clients calling Renew.
    #[arg(long, env = "KANBAND_BENCH_RENEW_CLIENTS", default_value_t = 64)]
    pub(crate) renew_clients: usize,

    /// expiry: live claims held (and kept alive) throughout, 250 per session.
    #[arg(long, env = "KANBAND_BENCH_EXPIRY_HELD", default_value_t = 10_000)]
    pub(crate) expiry_held: usize,

    /// expiry: short-lived sessions that are never renewed and expire.
    #[arg(long, env = "KANBAND_BENCH_EXPIRY_SESSIONS", default_value_t = 100)]
    pub(crate) expiry_sessions: usize,

    /// expiry: claims each short-lived session holds when it expires.
    #[arg(long, env = "KANBAND_BENCH_EXPIRY_CLAIMS", default_value_t = 10)]
    pub(crate) expiry_claims: u32,

    /// expiry: milliseconds between opening two short-lived sessions.
    #[arg(long, env = "KANBAND_BENCH_EXPIRY_STAGGER_MS", default_value_t = 50)]
    pub(crate) expiry_stagger_ms: u64,

    /// latency: sessions waiting in Acquire.
    #[arg(long, env = "KANBAND_BENCH_LATENCY_WAITERS", default_value_t = 8)]
    pub(crate) latency_waiters: usize,

    /// latency: samples (tasks created one at a time).
    #[arg(long, env = "KANBAND_BENCH_LATENCY_SAMPLES", default_value_t = 2000)]
    pub(crate) latency_samples: usize,

    /// memory: tasks created.
    #[arg(long, env = "KANBAND_BENCH_MEMORY_TASKS", default_value_t = 100_000)]
    pub(crate) memory_tasks: usize,

    /// memory: live claims held among them.
    #[arg(long, env = "KANBAND_BENCH_MEMORY_CLAIMS", default_value_t = 10_000)]
    pub(crate) memory_claims: usize,

    /// startup: events to generate (one per created task) before the restarts.
    #[arg(
        long,
        env = "KANBAND_BENCH_STARTUP_EVENTS",
        default_value_t = 1_000_000
    )]
    pub(crate) startup_events: usize,

    /// startup: timed restarts; the median is reported.
    #[arg(long, env = "KANBAND_BENCH_STARTUP_RUNS", default_value_t = 3)]
    pub(crate) startup_runs: usize,

    /// startup: keep the generated data under this directory and reuse it on the next run,
    /// generating only the events it lacks (generation is the slow part). Default: a
    /// temporary directory, generated afresh.
    #[arg(long, env = "KANBAND_BENCH_STARTUP_DATA", value_name = "DIR")]
    pub(crate) startup_data: Option<PathBuf>,

    /// status-quo: tasks the Hermes board creates and cycles.
    #[arg(long, env = "KANBAND_BENCH_STATUS_QUO_TASKS", default_value_t = 2000)]
    pub(crate) status_quo_tasks: usize,

    /// status-quo: client processes driving the Hermes board.
    #[arg(long, env = "KANBAND_BENCH_STATUS_QUO_CLIENTS", default_value_t = 4)]
    pub(crate) status_quo_clients: usize,

    /// status-quo: the Python that runs bench/hermes_status_quo.py.
    #[arg(
        long,
        env = "KANBAND_BENCH_PYTHON",
        value_name = "PATH",
        default_value = "python3"
    )]
    pub(crate) python: PathBuf,

    /// status-quo: directory holding the unpacked hermes-agent 0.19.0 wheel (`pip download
    /// --no-deps hermes-agent==0.19.0`, then unzip); omit it when that Python imports
    /// hermes_cli.
    #[arg(long, env = "KANBAND_BENCH_HERMES_PATH", value_name = "DIR")]
    pub(crate) hermes_path: Option<PathBuf>,

    /// Longest a scenario may take, set-up included, in seconds.
    #[arg(
        long,
        env = "KANBAND_BENCH_TIMEOUT",
        value_name = "SECS",
        default_value_t = 900
    )]
    pub(crate) timeout: u64,
}

impl Sizes {
    /// The timed part of a throughput scenario.
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs(self.duration.max(1))
    }

    /// Every size, for the JSON report.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "duration_s": self.duration,
            "concurrency": self.concurrency,
            "bulk_concurrency": self.bulk_concurrency,
            "connections": self.connections,
            "cycle_sessions": self.cycle_sessions,
            "cycle_slots": self.cycle_slots,
            "cycle_tasks": self.cycle_tasks,
            "large_tasks": self.large_tasks,
            "large_events_per_task": self.large_events_per_task,
            "backlog_pollers": self.backlog_pollers,
            "backlog_tasks": self.backlog_tasks,
            "backlog_clients": self.backlog_clients,
            "renew_sessions": self.renew_sessions,
            "renew_claims": self.renew_claims,
            "pipeline": self.pipeline,
            "renew_clients": self.renew_clients,
            "expiry_held": self.expiry_held,
            "expiry_sessions": self.expiry_sessions,
            "expiry_claims": self.expiry_claims,
            "expiry_stagger_ms": self.expiry_stagger_ms,
            "latency_waiters": self.latency_waiters,
            "latency_samples": self.latency_samples,
            "memory_tasks": self.memory_tasks,
            "memory_claims": self.memory_claims,
            "startup_events": self.startup_events,
            "startup_runs": self.startup_runs,
            "startup_data": self.startup_data,
            "status_quo_tasks": self.status_quo_tasks,
            "status_quo_clients": self.status_quo_clients,
            "hermes_path": self.hermes_path,
        })
    }
}
