//! What an operator sees: `/metrics` (`metrics`), health tied to lease correctness (`health`),
//! and the Grafana dashboard's queries (`dashboard`).
//!
//! The metrics recorder is process-wide, so this binary is apart from the other in-process
//! tests and its tests take turns ([`serial`]): gauges then show one test's server alone.

mod dashboard;
mod health;
mod metrics;

use std::time::Duration;

use kanband_tests::metrics::{Scrape, scrape};
use tokio::sync::{Mutex, MutexGuard};

/// One test at a time in this binary.
async fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::const_new(());
    TURN.lock().await
}

/// Scrapes until `check` holds (the server acts on its own time), for at most 10 s.
async fn scrape_until(base: &str, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scraped = scrape(base).await;
        if check(&scraped) {
            return scraped;
        }
        assert!(tokio::time::Instant::now() < give_up, "{what}: never seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
