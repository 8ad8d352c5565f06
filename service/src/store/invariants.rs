//! The invariant check behind `Admin.CheckInvariants`.

use tokio_rusqlite::rusqlite::Connection;

use super::Store;
use crate::error::Result;

/// Most violations reported at once.
const VIOLATIONS_MAX: usize = 100;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What was found.
    pub detail: String,
}

/// What the check looked at and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// Tasks examined.
    pub tasks: u64,
    /// Claims examined.
    pub claims: u64,
    /// Events examined.
    pub events: u64,
}

/// The checks: each query lists offenders as text.
const CHECKS: &[(&str, &str)] = &[
    (
        "running_without_claim",
        "SELECT 'task ' || id || ' is running without a live claim' FROM tasks t
         WHERE status = 'running'
           AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.task_id = t.id AND c.state <> 'ended')",
    ),
    (
        "two_live_claims",
        "SELECT 'task ' || task_id || ' has ' || count(*) || ' live claims' FROM claims
         WHERE state <> 'ended' GROUP BY task_id HAVING count(*) > 1",
    ),
    (
        "epoch_not_growing",
        "SELECT 'task ' || t.id || ' has epoch ' || t.epoch || ' but claims up to ' || max(c.epoch)
                || ' (' || count(*) || ' claims, ' || count(DISTINCT c.epoch) || ' epochs)'
         FROM tasks t JOIN claims c ON c.task_id = t.id GROUP BY t.id
         HAVING max(c.epoch) <> t.epoch OR count(*) <> count(DISTINCT c.epoch)",
    ),
    (
        "run_without_outcome",
        "SELECT 'run ' || r.id || ' of task ' || r.task_id ||
                CASE WHEN c.state = 'ended' THEN ' ended without an outcome'
                     ELSE ' has an outcome while its claim is ' || c.state END
         FROM runs r JOIN claims c ON c.run_id = r.id
         WHERE (c.state = 'ended') <> (r.outcome IS NOT NULL)
            OR (r.outcome IS NULL) <> (r.ended_at IS NULL)",
    ),
    (
        "event_gap",
        "SELECT 'events hold ' || count(*) || ' rows but ids run from ' || min(id) || ' to ' || max(id)
         FROM events HAVING count(*) > 0 AND (min(id) <> 1 OR max(id) - min(id) + 1 <> count(*))",
    ),
];

fn run_checks(conn: &Connection) -> Result<Report> {
    let mut report = Report::default();
    for (invariant, sql) in CHECKS {
        let found: Vec<String> = conn
            .prepare(sql)?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        report.violations.extend(
            found
                .into_iter()
                .map(|detail| Violation { invariant, detail }),
        );
    }
    let count = |sql: &str| -> Result<u64> {
        Ok(conn.query_row(sql, [], |row| row.get::<_, i64>(0))? as u64)
    };
    report.tasks = count("SELECT count(*) FROM tasks")?;
    report.claims = count("SELECT count(*) FROM claims")?;
    report.events = count("SELECT count(*) FROM events")?;
    Ok(report)
}

impl Store {
    /// Checks the invariants in the database, and that the registry holds exactly the
    /// database's unended claims.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn check_invariants(&self) -> Result<Report> {
        let leases = self.leases.clone();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let mut report = run_checks(&tx)?;
            let unended: Vec<String> = tx
                .prepare("SELECT token FROM claims WHERE state <> 'ended' ORDER BY token")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut held = leases.claim_tokens();
            held.sort();
            if held != unended {
                let missing = unended.iter().filter(|t| !held.contains(t)).count();
                let extra = held.iter().filter(|t| !unended.contains(t)).count();
                report.violations.push(Violation {
                    invariant: "registry_mismatch",
                    detail: format!(
                        "{missing} unended claims are not in the lease registry and {extra} claims in it are not unended"
                    ),
                });
            }
            report.violations.truncate(VIOLATIONS_MAX);
            Ok(report)
        })
        .await
    }
}
