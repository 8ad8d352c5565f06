//! Closing a session and ending its claims.

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    claims::{self, Finish},
    read,
};
use crate::{
    clock::now_ms,
    domain::{
        Author,
        lease::{ClaimState, Ending},
    },
    error::Result,
    store::effect::Effect,
};

/// Closes a session and ends its claims: released without counting (drain) when its holder
/// closes it, expired when its lease ran out. Revoked claims finish their revocation. The
/// events record `by` (the holder, or kanband for an expiry) with the session id as the note.
pub(in crate::store) fn close_in(
    conn: &Connection,
    id: &str,
    expired: bool,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<u32> {
    let by = by.noting(id);
    read::open_session(conn, id)?;
    let mut ended = 0;
    for claim in read::session_claims(conn, id)? {
        let finish = match claim.state {
            ClaimState::Revoking(_) => Finish::Revoked,
            _ if expired => Finish::End(Ending::Expired),
            _ => Finish::End(Ending::Drained),
        };
        claims::finish_in(conn, &claim, finish, &by, fx)?;
        ended += 1;
    }
    conn.execute(
        "UPDATE sessions SET closed_at = ?2, close_reason = ?3 WHERE id = ?1",
        params![id, now_ms(), if expired { "expired" } else { "closed" }],
    )?;
    fx.push(Effect::SessionClosed(id.to_owned()));
    Ok(ended)
}
