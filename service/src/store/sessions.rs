//! Sessions: open, close at the holder's request, and restoring live leases at start-up.

use tokio_rusqlite::rusqlite::params;

use super::{
    Store,
    effect::Effect,
    model::{ClaimRecord, SessionRecord},
    rows::{self, SESSION_COLUMNS},
    tx::{
        events::{self, NewEvent},
        read, sessions,
    },
};
use crate::{
    clock::now_ms,
    domain::{EventKind, lease::ClaimState},
    error::Result,
};

impl Store {
    /// Opens a session.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn open_session(&self, record: SessionRecord) -> Result<SessionRecord> {
        self.write(move |tx, fx| {
            tx.execute(
                &format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}, opened_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9 + ?7)"
                ),
                params![
                    record.id,
                    record.machine_id,
                    record.hostname,
                    rows::list_json(&record.profiles),
                    rows::list_json(&record.capabilities),
                    record.slots,
                    record.ttl_ms,
                    record.review_lane,
                    now_ms()
                ],
            )?;
            fx.push(Effect::SessionOpened(record.clone()));
            Ok(record)
        })
        .await
    }

    /// Closes a session at its holder's request; returns how many claims were released.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn close_session(&self, id: String) -> Result<u32> {
        self.write(move |tx, fx| sessions::close_in(tx, &id, false, fx))
            .await
    }

    /// Puts every open session and live claim back into the registry at start-up, each with a
    /// full TTL from now (never less than it had: its persisted copy is at most that), and
    /// persists those deadlines. A claim whose persisted deadline passed while kanband was down
    /// gets a `lease_rearmed` event; one whose deadline is still ahead is restored as it was.
    /// Its other deadlines keep their meaning: maximum runtime from its grant, stale progress
    /// from its last heartbeat, a pending cancel's grace from the request (one that ended while
    /// kanband was down revokes the claim at once).
    /// Returns (sessions, claims, rearmed).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn restore_leases(&self) -> Result<(usize, usize, usize)> {
        self.write(|tx, fx| {
            let sessions: Vec<SessionRecord> = tx
                .prepare(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE closed_at IS NULL"
                ))?
                .query_map([], rows::session)?
                .collect::<Result<_, _>>()?;
            let count = sessions.len();
            fx.extend(sessions.into_iter().map(Effect::SessionOpened));
            let now = now_ms();
            let mut restored = 0;
            let mut rearmed = 0;
            for read::Unended {
                claim,
                expires_at,
                deadlines,
            } in read::unended_claims(tx)?
            {
                if expires_at < now {
                    rearmed += 1;
                    events::append(
                        tx,
                        NewEvent {
                            board: &claim.board,
                            task_id: &claim.task_id,
                            kind: EventKind::LeaseRearmed,
                            actor: "kanband",
                            details: &[
                                ("run", claim.run_id.clone()),
                                ("epoch", claim.epoch.to_string()),
                            ],
                        },
                    )?;
                }
                let revoking = match claim.state {
                    ClaimState::Revoking(cause) => Some(cause),
                    _ => None,
                };
                let token = claim.token.clone();
                fx.push(Effect::Granted(
                    ClaimRecord {
                        state: ClaimState::Live,
                        ..claim
                    },
                    deadlines,
                ));
                if let Some(cause) = revoking {
                    fx.push(Effect::Revoked(token, cause));
                }
                restored += 1;
            }
            tx.execute(
                "UPDATE sessions SET expires_at = ?1 + ttl_ms WHERE closed_at IS NULL",
                [now],
            )?;
            tx.execute(
                "UPDATE claims SET expires_at = ?1 +
                     (SELECT s.ttl_ms FROM sessions s WHERE s.id = claims.session_id)
                 WHERE state <> 'ended'",
                [now],
            )?;
            Ok((count, restored, rearmed))
        })
        .await
    }
}
