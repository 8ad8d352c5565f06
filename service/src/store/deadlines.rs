//! What the store does when a deadline passes: a lease runs out (a claim's or a session's), a
//! server-side revocation (maximum runtime, stale progress, the end of a grace), a scheduled
//! wake-up; and the recorded deadlines to arm at start-up. Which deadline calls which is
//! decided in [`crate::leases::expiry`].

use super::{
    Store,
    effect::Effect,
    model::Task,
    tx::{
        claims::{self, Finish},
        read, revoke, sessions,
        status::{self, set_status},
    },
};
use crate::{
    domain::{
        Author, EventKind, Status,
        lease::{ClaimState, Ending, RevokeCause},
        transitions::Op,
    },
    error::{Error, Result},
};

impl Store {
    /// Releases a claim whose lease ran out (or finishes its revocation), unless a renewal won
    /// the race. Returns whether it was released.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn expire_claim(&self, token: String) -> Result<bool> {
        let leases = self.leases.clone();
        self.write(move |tx, fx| {
            if !leases.claim_overdue(&token) {
                return Ok(false);
            }
            let Some(claim) = read::claim(tx, &token)? else {
                return Ok(false);
            };
            let finish = match claim.state {
                ClaimState::Live => Finish::End(Ending::Expired),
                ClaimState::Revoking(_) => Finish::Revoked,
                ClaimState::Ended(_) => return Ok(false),
            };
            claims::finish_in(tx, &claim, finish, &Author::system(), fx)?;
            Ok(true)
        })
        .await
    }

    /// Revokes a live claim for a server-side reason (maximum runtime, stale progress).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn revoke_claim(&self, token: String, cause: RevokeCause) -> Result<()> {
        self.write(move |tx, fx| {
            let Some(claim) = read::claim(tx, &token)? else {
                return Ok(());
            };
            if claim.state != ClaimState::Live {
                return Ok(());
            }
            let task = read::task(tx, &claim.task_id)?;
            revoke::revoke_in(tx, &task, cause, None, "", &Author::system(), fx)
        })
        .await
    }

    /// Closes a session whose lease ran out, if it still has (a renewal may have won the
    /// race). Returns how many of its claims were released.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn expire_session(&self, id: String) -> Result<u32> {
        let leases = self.leases.clone();
        self.write(move |tx, fx| {
            if !leases.session_overdue(&id) {
                return Ok(0);
            }
            sessions::close_in(tx, &id, true, &Author::system(), fx)
        })
        .await
    }

    /// Wakes a scheduled task whose wake-up time `until_ms` has come. Returns `None` when the
    /// task was changed since (promoted, rescheduled, archived, deleted): the timer is stale.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn wake(&self, id: String, until_ms: i64) -> Result<Option<Task>> {
        self.write(move |tx, _| {
            let task = match read::task(tx, &id) {
                Ok(task) => task,
                Err(Error::NotFound { .. }) => return Ok(None),
                Err(err) => return Err(err),
            };
            if task.status != Status::Scheduled || task.scheduled_until != Some(until_ms) {
                return Ok(None);
            }
            let to = status::next(tx, &task, Op::Wake, "wake")?;
            set_status(tx, &task, to, EventKind::Woke, &Author::system(), &[])?;
            Ok(Some(read::task(tx, &id)?))
        })
        .await
    }

    /// The deadlines recorded in the database (wake-ups and cooldown ends), to arm at start-up.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn recorded_deadlines(&self) -> Result<Vec<Effect>> {
        self.call(|conn| {
            let mut effects: Vec<Effect> = conn
                .prepare(
                    "SELECT id, scheduled_until FROM tasks
                     WHERE status = 'scheduled' AND scheduled_until IS NOT NULL",
                )?
                .query_map([], |row| Ok(Effect::Wake(row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let cooldowns = conn
                .prepare("SELECT id, cooldown_until FROM tasks WHERE cooldown_until IS NOT NULL")?
                .query_map([], |row| Ok(Effect::Cooldown(row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            effects.extend(cooldowns);
            Ok(effects)
        })
        .await
    }
}
