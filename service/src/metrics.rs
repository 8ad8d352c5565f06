//! Prometheus metrics: the names, their help text and buckets, and the one recorder.
//!
//! Each cause records where it happens, through the `metrics` facade (`metrics::counter!` and
//! friends with a name from here), so no layer above has to carry a handle down. The recorder
//! is process-wide: kanband serves one board per process, and the in-process test harness,
//! which starts several, reads only the counters that its own calls move. What is a state
//! rather than an event (live sessions, claims, tasks by status, open streams) is a gauge set
//! from the service's own state just before each scrape renders, so it can never drift.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::lease::{LeaseLost, RevokeCause};

/// gRPC calls answered, by `method` (`/kanban.v1.Tasks/CreateTask`) and `code` (`OK`, ...).
pub const RPC_REQUESTS: &str = "kanband_rpc_requests_total";
/// Time from a call's arrival to the end of its answer (a stream: until it ends), by method
/// and code.
pub const RPC_DURATION: &str = "kanband_rpc_duration_seconds";
/// Time one group commit took on the connection thread (its jobs, then COMMIT and fsync).
pub const COMMIT_DURATION: &str = "kanband_commit_duration_seconds";
/// Writes that shared one group commit.
pub const COMMIT_BATCH_SIZE: &str = "kanband_commit_batch_size";
/// Lease deadline -> committed release of the expired claim.
pub const EXPIRY_LAG: &str = "kanband_expiry_lag_seconds";
/// A task's last change (it became ready or review) -> granted to a waiting supervisor.
pub const READY_TO_GRANTED: &str = "kanband_ready_to_granted_seconds";
/// One dispatcher pass over the waiting pollers (one transaction).
pub const DISPATCH_PASS_DURATION: &str = "kanband_dispatch_pass_duration_seconds";
/// Claims granted.
pub const GRANTS: &str = "kanband_grants_total";
/// Claims released because their lease ran out, by `lease` (`claim` or `session`).
pub const EXPIRIES: &str = "kanband_expiries_total";
/// Claims revoked (fenced, holder told), by `cause` (`archived`, `reclaimed`, ...).
pub const REVOCATIONS: &str = "kanband_revocations_total";
/// Holder calls refused because their token is not the live claim, by `reason` (`expired`,
/// `revoked`, `superseded`, `board_reset`, `unknown`).
pub const FENCING_REFUSALS: &str = "kanband_fencing_refusals_total";
/// Open sessions.
pub const LIVE_SESSIONS: &str = "kanband_live_sessions";
/// Unended claims.
pub const LIVE_CLAIMS: &str = "kanband_live_claims";
/// `Acquire` calls waiting now.
pub const WAITING_POLLERS: &str = "kanband_waiting_pollers";
/// Tasks by `board` and `status`.
pub const TASKS: &str = "kanband_tasks";
/// Open server streams, by `pool` (`watch`, `deliver`).
pub const OPEN_STREAMS: &str = "kanband_open_streams";
/// Deadlines whose action failed (a full disk) and waits to be tried again.
pub const DEADLINES_RETRYING: &str = "kanband_deadlines_retrying";
/// 1 while the lease health check reports SERVING, 0 while it holds kanband out of rotation.
pub const LEASE_HEALTH: &str = "kanband_lease_health_serving";

/// Every metric kanband exports, with its help text (the dashboard test checks against this).
pub const ALL: &[(&str, &str)] = &[
    (RPC_REQUESTS, "gRPC calls answered, by method and code"),
    (
        RPC_DURATION,
        "gRPC call duration (streams: until they end), by method and code",
    ),
    (
        COMMIT_DURATION,
        "duration of one group commit, including its fsync",
    ),
    (COMMIT_BATCH_SIZE, "writes that shared one group commit"),
    (
        EXPIRY_LAG,
        "lease deadline to committed release of the expired claim",
    ),
    (
        READY_TO_GRANTED,
        "task ready (or review) to granted to a waiting supervisor",
    ),
    (
        DISPATCH_PASS_DURATION,
        "one dispatcher pass over the waiting pollers",
    ),
    (GRANTS, "claims granted"),
    (
        EXPIRIES,
        "claims released because their lease ran out, by lease",
    ),
    (REVOCATIONS, "claims revoked, by cause"),
    (
        FENCING_REFUSALS,
        "holder calls refused as not the live claim, by reason",
    ),
    (LIVE_SESSIONS, "open sessions"),
    (LIVE_CLAIMS, "unended claims"),
    (WAITING_POLLERS, "Acquire calls waiting now"),
    (TASKS, "tasks by board and status"),
    (OPEN_STREAMS, "open server streams, by pool"),
    (
        DEADLINES_RETRYING,
        "deadlines whose action failed, waiting to be tried again",
    ),
    (
        LEASE_HEALTH,
        "1 while lease health is SERVING, 0 while NOT_SERVING",
    ),
];

/// Buckets of the duration histograms, in seconds: 100 us to 10 s.
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of the group-commit size.
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// How often the recorded histogram samples are folded into their buckets. The recorder keeps
/// each sample until that happens (a scrape does it too, but nothing says anyone scrapes):
/// without it, memory would grow by every call's samples for as long as kanband runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// The process's recorder, installed on first use; `None` when another recorder was installed
/// first (an embedding program's), which then receives what kanband records.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(COMMIT_BATCH_SIZE.into()), BATCH)
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("kanband-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .expect("start the metrics upkeep thread");
            for (name, help) in ALL {
                metrics::describe_counter!(*name, *help);
            }
            register_zeros();
            Some(handle)
        })
        .as_ref()
}

/// Registers every event metric whose labels are known in advance, so a scrape shows it at 0
/// before its first cause (a rate over a series that appears only later misses its start).
fn register_zeros() {
    metrics::counter!(GRANTS).absolute(0);
    for name in [
        COMMIT_DURATION,
        COMMIT_BATCH_SIZE,
        EXPIRY_LAG,
        READY_TO_GRANTED,
        DISPATCH_PASS_DURATION,
    ] {
        let _ = metrics::histogram!(name);
    }
    for lease in ["claim", "session"] {
        metrics::counter!(EXPIRIES, "lease" => lease).absolute(0);
    }
    for cause in RevokeCause::ALL {
        metrics::counter!(REVOCATIONS, "cause" => cause.as_str()).absolute(0);
    }
    for reason in LeaseLost::ALL {
        metrics::counter!(FENCING_REFUSALS, "reason" => reason.as_str()).absolute(0);
    }
}

/// The text exposition of every metric, or `None` without kanband's recorder.
pub fn render() -> Option<String> {
    let handle = handle()?;
    handle.run_upkeep();
    Some(handle.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_a_kanband_metric_listed_once() {
        let mut names: Vec<_> = ALL.iter().map(|(name, _)| *name).collect();
        assert!(names.iter().all(|n| n.starts_with("kanband_")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
