//! The persister: writes the coarse copies of lease deadlines that renewals let fall behind.
//!
//! Renewals move deadlines in memory only. When one moves a deadline far enough past its copy
//! in the database, the [`Registry`] marks the lease and wakes this loop, which writes every
//! marked session and claim in one write (one group commit, however many leases), then records
//! what it wrote. At shutdown [`flush_all`] writes every deadline that is behind, so a restart
//! soon after sees each lease's last deadline.

use super::registry::Registry;
use crate::{clock::ms_at, store::Store};

/// Writes marked deadlines as they are marked; never returns (dropped at shutdown).
pub async fn run(store: &Store, registry: &Registry) {
    loop {
        registry.persist_wanted().await;
        flush(store, registry, false).await;
    }
}

/// Writes every deadline that is behind its copy (at shutdown).
pub async fn flush_all(store: &Store, registry: &Registry) {
    flush(store, registry, true).await;
}

async fn flush(store: &Store, registry: &Registry, all: bool) {
    let due = registry.take_unpersisted(all);
    if due.is_empty() {
        return;
    }
    let in_ms = |leases: &[(String, crate::clock::Instant)]| {
        leases
            .iter()
            .map(|(id, at)| (id.clone(), ms_at(*at)))
            .collect::<Vec<_>>()
    };
    match store
        .persist_deadlines(in_ms(&due.sessions), in_ms(&due.claims))
        .await
    {
        Ok(()) => registry.persisted(&due),
        // The copies stay behind; the next renewal marks them again.
        Err(err) => tracing::warn!(error = %err, "persisting lease deadlines"),
    }
}
