//! Sessions: open, close (drain or expiry), and restoring live leases at start-up.

use tokio_rusqlite::rusqlite::{Connection, OptionalExtension as _, params};

use super::{
    Store,
    claims::{self, Finish},
    events::{self, NewEvent},
    now_ms, rows,
};
use crate::{
    error::{Error, Result},
    leases::{
        registry::{ClaimRecord, Effect, SessionRecord},
        rules::{ClaimState, Ending},
    },
};

const SESSION_COLUMNS: &str =
    "id, machine_id, hostname, profiles, capabilities, slots, ttl_ms, review_lane";

fn session(
    row: &tokio_rusqlite::rusqlite::Row<'_>,
) -> tokio_rusqlite::rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        machine_id: row.get(1)?,
        hostname: row.get(2)?,
        profiles: rows::json(row, 3)?,
        capabilities: rows::json(row, 4)?,
        slots: row.get(5)?,
        ttl_ms: row.get(6)?,
        review_lane: row.get(7)?,
    })
}

/// Reads an open session.
pub(super) fn load_open(conn: &Connection, id: &str) -> Result<SessionRecord> {
    conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1 AND closed_at IS NULL"
    ))?
    .query_row([id], session)
    .optional()?
    .ok_or_else(|| Error::not_found("session", id))
}

/// Closes a session and ends its claims: released without counting (drain) when its holder
/// closes it, expired when its lease ran out. Revoked claims finish their revocation.
fn close_in(conn: &Connection, id: &str, expired: bool, fx: &mut Vec<Effect>) -> Result<u32> {
    load_open(conn, id)?;
    let mut ended = 0;
    for claim in claims::of_session(conn, id)? {
        let finish = match claim.state {
            ClaimState::Revoking(_) => Finish::Revoked,
            _ if expired => Finish::End(Ending::Expired),
            _ => Finish::End(Ending::Drained),
        };
        claims::finish_in(conn, &claim, finish, id, fx)?;
        ended += 1;
    }
    conn.execute(
        "UPDATE sessions SET closed_at = ?2, close_reason = ?3 WHERE id = ?1",
        params![id, now_ms(), if expired { "expired" } else { "closed" }],
    )?;
    fx.push(Effect::SessionClosed(id.to_owned()));
    Ok(ended)
}

impl Store {
    /// Opens a session.
    pub async fn open_session(&self, record: SessionRecord) -> Result<SessionRecord> {
        self.write(move |tx, fx| {
            tx.execute(
                &format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}, opened_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
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
    pub async fn close_session(&self, id: String) -> Result<u32> {
        self.write(move |tx, fx| close_in(tx, &id, false, fx)).await
    }

    /// Closes a session whose lease ran out, if it still has (a renewal may have won the
    /// race). Returns how many of its claims were released.
    pub async fn expire_session(&self, id: String) -> Result<u32> {
        let registry = self.registry.clone();
        self.write(move |tx, fx| {
            if !registry.session_overdue(&id) {
                return Ok(0);
            }
            close_in(tx, &id, true, fx)
        })
        .await
    }

    /// Puts every open session and live claim back into the registry at start-up, each with a
    /// full TTL from now. A claim whose recorded deadline passed while kanband was down gets a
    /// `lease_rearmed` event. Returns (sessions, claims, rearmed).
    pub async fn restore_leases(&self) -> Result<(usize, usize, usize)> {
        self.write(|tx, fx| {
            let sessions: Vec<SessionRecord> = tx
                .prepare(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE closed_at IS NULL"
                ))?
                .query_map([], session)?
                .collect::<Result<_, _>>()?;
            let count = sessions.len();
            fx.extend(sessions.into_iter().map(Effect::SessionOpened));
            let now = now_ms();
            let mut restored = 0;
            let mut rearmed = 0;
            for (claim, expires_at, max_runtime) in claims::all_unended(tx)? {
                if expires_at < now {
                    rearmed += 1;
                    events::append(
                        tx,
                        NewEvent {
                            board: &claim.board,
                            task_id: &claim.task_id,
                            kind: "lease_rearmed",
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
                    max_runtime,
                ));
                if let Some(cause) = revoking {
                    fx.push(Effect::Revoked(token, cause));
                }
                restored += 1;
            }
            Ok((count, restored, rearmed))
        })
        .await
    }
}
