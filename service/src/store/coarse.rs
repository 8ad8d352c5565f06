//! The coarse copies of lease deadlines (`sessions.expires_at`, `claims.expires_at`), written in
//! batches by the lease machinery's persister: enough for a restart to tell a lease whose
//! deadline really passed while kanband was down.

use tokio_rusqlite::rusqlite::params;

use super::Store;
use crate::error::Result;

impl Store {
    /// Writes the deadlines (Unix ms) of sessions and claims in one write. A lease that ended
    /// meanwhile is left as it is.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn persist_deadlines(
        &self,
        sessions: Vec<(String, i64)>,
        claims: Vec<(String, i64)>,
    ) -> Result<()> {
        self.write_quietly(move |tx, _| {
            let mut session = tx.prepare_cached(
                "UPDATE sessions SET expires_at = max(coalesce(expires_at, 0), ?2)
                 WHERE id = ?1 AND closed_at IS NULL",
            )?;
            for (id, at) in &sessions {
                session.execute(params![id, at])?;
            }
            let mut claim = tx.prepare_cached(
                "UPDATE claims SET expires_at = max(expires_at, ?2)
                 WHERE token = ?1 AND state <> 'ended'",
            )?;
            for (token, at) in &claims {
                claim.execute(params![token, at])?;
            }
            Ok(())
        })
        .await
    }
}
