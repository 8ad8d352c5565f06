//! The holder's calls on its claim: outcomes (complete, block, review, changes, release), the
//! worker's exit, progress heartbeats, and why a token is refused. Each fences the token first
//! (see [`super::tx::claims`]).

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    effect::Effect,
    model::Task,
    tx::{
        claims::{self, Finish},
        read,
    },
};
use crate::{
    clock::now_ms,
    domain::lease::{ClaimState, EndReason, Ending, Exit, LeaseLost, Use},
    error::{Error, Result},
};

impl Store {
    /// Ends a claim with its holder's outcome, after fencing the token.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn holder_finish(
        &self,
        token: String,
        wanted: Use,
        finish: Finish,
    ) -> Result<Task> {
        let leases = self.leases.clone();
        self.write(move |tx, fx| {
            let claim = claims::fenced(tx, &token, wanted)?;
            claims::refuse_overdue(&*leases, &claim, tx)?;
            let finish = match (&claim.state, finish) {
                (ClaimState::Revoking(_), _) => Finish::Revoked,
                (_, finish) => finish,
            };
            let actor = claim.session_id.clone();
            claims::finish_in(tx, &claim, finish, &actor, fx)
        })
        .await?
        // The claim's end is committed even when its task is gone (its board was reset); the
        // holder then hears why there is no task to return.
        .ok_or_else(|| Error::lease_lost(LeaseLost::BoardReset, None))
    }

    /// Records the worker's exit on its run and classifies it if the claim had no outcome.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn report_exit(
        &self,
        token: String,
        exit: Exit,
        tail: String,
    ) -> Result<Task> {
        self.write(move |tx, fx| {
            let code = match exit {
                Exit::Code(code) => Some(code),
                _ => None,
            };
            let record = |tx: &Connection, run_id: &str| -> Result<()> {
                tx.execute(
                    "UPDATE runs SET exit_code = coalesce(?2, exit_code),
                            error = CASE WHEN ?3 = '' THEN error ELSE ?3 END
                     WHERE id = ?1",
                    params![run_id, code, tail],
                )?;
                Ok(())
            };
            // An exit after the holder's own outcome only completes the run's record.
            if let Some(done) = read::claim(tx, &token)?
                && done.state == ClaimState::Ended(EndReason::Outcome)
            {
                record(tx, &done.run_id)?;
                return read::task(tx, &done.task_id).map(Some);
            }
            let claim = claims::fenced(tx, &token, Use::Confirm)?;
            let finish = match claim.state {
                ClaimState::Revoking(_) => Finish::Revoked,
                _ => Finish::End(Ending::Exited(exit)),
            };
            let actor = claim.session_id.clone();
            let task = claims::finish_in(tx, &claim, finish, &actor, fx)?;
            if task.is_some() {
                record(tx, &claim.run_id)?;
            }
            Ok(task)
        })
        .await?
        .ok_or_else(|| Error::lease_lost(LeaseLost::BoardReset, None))
    }

    /// Records a progress heartbeat.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn heartbeat(&self, token: String, note: String) -> Result<()> {
        let leases = self.leases.clone();
        self.write(move |tx, fx| {
            let claim = claims::fenced(tx, &token, Use::Hold)?;
            claims::refuse_overdue(&*leases, &claim, tx)?;
            tx.prepare_cached(
                "UPDATE runs SET last_heartbeat_at = ?2, last_heartbeat_note = ?3 WHERE id = ?1",
            )?
            .execute(params![claim.run_id, now_ms(), note])?;
            fx.push(Effect::Progress(token));
            Ok(())
        })
        .await
    }

    /// Why a token cannot be used now, if the database knows a reason.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn lease_lost(&self, token: String) -> Result<Option<Error>> {
        self.call(move |conn| Ok(claims::fenced(conn, &token, Use::Hold).err()))
            .await
    }
}
