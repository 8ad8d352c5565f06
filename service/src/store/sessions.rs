//! Sessions: open, close at the holder's request, and restoring live leases at start-up.

use tokio_rusqlite::rusqlite::params;

use super::{
    Store,
    effect::{Claimable, Effect},
    model::{ClaimRecord, SessionRecord},
    rows::{self, SESSION_COLUMNS},
    tx::{
        events::{self, NewEvent},
        read, sessions,
    },
};
use crate::{
    clock::now_ms,
    domain::{Author, EventKind, lease::ClaimState},
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
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?9, ?9 + ?7)"
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
                    now_ms(),
                    record.owner
                ],
            )?;
            fx.push(Effect::SessionOpened(record.clone()));
            Ok(record)
        })
        .await
    }

    /// Closes a session at its holder's request (`caller`, recorded on the events of the
    /// claims it ends); returns how many claims were released.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn close_session(&self, id: String, caller: Author) -> Result<u32> {
        self.write(move |tx, fx| sessions::close_in(tx, &id, false, &caller, fx))
            .await
    }

    /// Puts every open session and live claim back into the registry at start-up, each with a
    /// full TTL from now (never less than it had: its persisted copy is at most that). Reads
    /// only, so a full disk cannot stop start-up: the claims whose persisted deadline passed
    /// while kanband was down are returned, for [`Store::record_rearmed`] to write their
    /// `lease_rearmed` events (one whose deadline is still ahead is restored as it was).
    /// Its other deadlines keep their meaning: maximum runtime from its grant, stale progress
    /// from its last heartbeat, a pending cancel's grace from the request (one that ended while
    /// kanband was down revokes the claim at once).
    /// Returns (sessions, claims, the re-armed claims' tokens).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn restore_leases(&self) -> Result<(usize, usize, Vec<String>)> {
        let leases = self.leases.clone();
        self.call(move |conn| {
            let sessions: Vec<SessionRecord> = conn
                .prepare(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE closed_at IS NULL"
                ))?
                .query_map([], rows::session)?
                .collect::<Result<_, _>>()?;
            let count = sessions.len();
            let mut fx: Vec<Effect> = sessions.into_iter().map(Effect::SessionOpened).collect();
            let now = now_ms();
            let mut restored = 0;
            let mut rearmed = Vec::new();
            for read::Unended {
                claim,
                expires_at,
                deadlines,
            } in read::unended_claims(conn)?
            {
                if expires_at < now {
                    rearmed.push(claim.token.clone());
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
            fx.push(Effect::Poke(Claimable::Anything));
            // On the connection thread, before any write can start, as a commit applies its own.
            leases.apply(fx);
            Ok((count, restored, rearmed))
        })
        .await
    }

    /// Appends the `lease_rearmed` event of each claim in `tokens`, restored at start-up with a
    /// deadline that had passed while kanband was down, and brings the persisted copies of every
    /// restored deadline up to the full TTL from now that the registry holds (so a second
    /// restart soon after re-arms nothing). Run at start-up and retried while it fails; when no
    /// claim was re-armed a failed write is not retried: the copies then stay behind until the
    /// next renewal rewrites them, and a restart before that could label a claim re-armed
    /// (it still gets a full TTL, so no worker is lost).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn record_rearmed(&self, tokens: Vec<String>) -> Result<()> {
        self.write_quietly(move |tx, _| {
            let now = now_ms();
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
            for token in &tokens {
                let Some(claim) = read::claim(tx, token)? else {
                    continue;
                };
                events::append(
                    tx,
                    NewEvent {
                        board: &claim.board,
                        task_id: &claim.task_id,
                        kind: EventKind::LeaseRearmed,
                        by: &Author::system(),
                        details: &[
                            ("run", claim.run_id.clone()),
                            ("epoch", claim.epoch.to_string()),
                        ],
                    },
                )?;
            }
            Ok(())
        })
        .await
    }
}
