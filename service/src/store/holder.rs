//! The holder's calls on its claim: outcomes (complete, block, review, changes, release), the
//! worker's exit, progress heartbeats, and why a token is refused. Each fences the token first
//! (see [`super::tx::claims`]).

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    batch::Isolation,
    effect::Effect,
    model::{ClaimRecord, Ended, Task},
    tx::{
        claims::{self, Finish},
        read,
    },
};
use crate::{
    clock::now_ms,
    domain::{
        Author,
        lease::{self, ClaimState, EndReason, Ending, Exit, HolderCall, LeaseLost, Use},
    },
    error::{Error, Result},
};

/// A retry of the call that ended the claim (its reply was lost): the task as it is now,
/// flagged as already recorded. `None` if `call` is not that call.
fn retried(
    conn: &Connection,
    claim: Option<&ClaimRecord>,
    call: Option<HolderCall>,
) -> Result<Option<Ended>> {
    let Some((claim, call)) = claim.zip(call) else {
        return Ok(None);
    };
    if !matches!(claim.state, ClaimState::Ended(_))
        || !lease::already_recorded(claim.ended_by, call)
    {
        return Ok(None);
    }
    match read::task(conn, &claim.task_id) {
        Ok(task) => Ok(Some(Ended {
            task,
            already_recorded: true,
        })),
        Err(Error::NotFound { .. }) => Err(Error::lease_lost(LeaseLost::BoardReset, None)),
        Err(err) => Err(err),
    }
}

/// The answer to a call that ended the claim now: the task, or none when the task is gone with
/// its board's reset (the caller turns that into the holder's error only after the commit, so
/// the claim's end is committed even then).
fn ended(task: Option<Task>) -> Result<Option<Ended>> {
    Ok(task.map(|task| Ended {
        task,
        already_recorded: false,
    }))
}

/// The holder's answer once the write committed.
fn answer(ended: Option<Ended>) -> Result<Ended> {
    ended.ok_or_else(|| Error::lease_lost(LeaseLost::BoardReset, None))
}

impl Store {
    /// Ends a claim with its holder's outcome, after fencing the token. The same call retried
    /// on a claim it already ended is answered with the task as it is now, flagged. `caller`
    /// is recorded as the events' identity, with the claim's session as their note.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn holder_finish(
        &self,
        token: String,
        wanted: Use,
        finish: Finish,
        caller: Author,
    ) -> Result<Ended> {
        let leases = self.leases.clone();
        // A complete refuses (fenced, overdue, not running) before it changes anything, and it
        // is most of the load: it runs without a savepoint. The other endings can be refused by
        // the status rules after the claim has ended, so they keep theirs.
        let isolation = match finish {
            Finish::Complete { .. } => Isolation::ChecksFirst,
            _ => Isolation::Savepoint,
        };
        self.write_as(isolation, move |tx, fx| {
            let call = finish.call();
            let loaded = read::claim(tx, &token)?;
            if let Some(retry) = retried(tx, loaded.as_ref(), call)? {
                return Ok(Some(retry));
            }
            // The task is read once: its epoch fences the token, and the end starts from it.
            let task = match &loaded {
                Some(claim) => read::task_if_exists(tx, &claim.task_id)?,
                None => None,
            };
            let mut claim = claims::fence_at(loaded, task.as_ref().map(|t| t.epoch), wanted)?;
            claims::refuse_overdue(&*leases, &claim, tx)?;
            // Its end records the call, so a retry of this call can be told from a new outcome.
            claim.ended_by = call;
            let by = caller.noting(claim.session_id.as_str());
            let task = match (&claim.state, finish) {
                // A release that confirms a revocation still leaves its reason on the run.
                (ClaimState::Revoking(_), Finish::Release { reason }) => {
                    let task = claims::finish_task_in(tx, &claim, task, Finish::Revoked, &by, fx)?;
                    tx.execute(
                        "UPDATE runs SET summary = ?2 WHERE id = ?1 AND summary = ''",
                        params![claim.run_id, reason],
                    )?;
                    task
                }
                (ClaimState::Revoking(_), _) => {
                    claims::finish_task_in(tx, &claim, task, Finish::Revoked, &by, fx)?
                }
                (_, finish) => claims::finish_task_in(tx, &claim, task, finish, &by, fx)?,
            };
            ended(task)
        })
        .await
        .and_then(answer)
    }

    /// Records the worker's exit on its run and classifies it if the claim had no outcome. A
    /// retry of the report that ended the claim is answered as already recorded. `caller` is
    /// recorded as in [`Store::holder_finish`].
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn report_exit(
        &self,
        token: String,
        exit: Exit,
        tail: String,
        caller: Author,
    ) -> Result<Ended> {
        self.write(move |tx, fx| {
            let code = match exit {
                Exit::Code(code) => Some(code),
                _ => None,
            };
            // The output of a worker that exited 0 is no error, whatever its supervisor sent.
            let tail = if code == Some(0) { String::new() } else { tail };
            let record = |tx: &Connection, run_id: &str| -> Result<()> {
                tx.execute(
                    "UPDATE runs SET exit_code = coalesce(?2, exit_code),
                            error = CASE WHEN ?3 = '' THEN error ELSE ?3 END
                     WHERE id = ?1",
                    params![run_id, code, tail],
                )?;
                Ok(())
            };
            let known = read::claim(tx, &token)?;
            if let Some(retry) = retried(tx, known.as_ref(), Some(HolderCall::ReportExit))? {
                return Ok(Some(retry));
            }
            // An exit after the holder's own outcome only completes the run's record.
            if let Some(done) = known
                && done.state == ClaimState::Ended(EndReason::Outcome)
            {
                record(tx, &done.run_id)?;
                return ended(Some(read::task(tx, &done.task_id)?));
            }
            let mut claim = claims::fenced(tx, &token, Use::Confirm)?;
            claim.ended_by = Some(HolderCall::ReportExit);
            let finish = match claim.state {
                ClaimState::Revoking(_) => Finish::Revoked,
                _ => Finish::End(Ending::Exited(exit)),
            };
            let by = caller.noting(claim.session_id.as_str());
            let task = claims::finish_in(tx, &claim, finish, &by, fx)?;
            if task.is_some() {
                record(tx, &claim.run_id)?;
            }
            ended(task)
        })
        .await
        .and_then(answer)
    }

    /// Records a progress heartbeat (which makes nothing claimable: no dispatcher pass).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn heartbeat(&self, token: String, note: String) -> Result<()> {
        let leases = self.leases.clone();
        self.write_quietly(move |tx, fx| {
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
