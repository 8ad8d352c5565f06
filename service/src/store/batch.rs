//! Group commit: writes that arrive while a commit is in progress share the next transaction.
//!
//! Every write is queued as a job; the write that finds the queue empty schedules a flush on
//! the connection thread, and every write queued before that flush starts joins it. (A flush
//! scheduled per write would put one flush per waiting writer on the connection thread's
//! queue, each committing only the few writes that arrived since the one before, and each
//! writer's answer would wait behind all of them.) A flush takes every queued job, runs each
//! so that a failing job fails alone and gets its own error ([`Isolation`]), commits once,
//! applies the successful jobs' effects to the lease state in order, and only then answers
//! every job. So each acknowledged write is committed before its reply, one fsync serves many
//! writers under load, and the lease state still changes in exactly the database's commit
//! order.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;
use tokio_rusqlite::rusqlite::Connection;

use super::{
    effect::{Effect, LiveLeases},
    tx::events,
};
use crate::error::{Error, Result};

/// Answers a job once the batch's fate is known.
type Completion = Box<dyn FnOnce(&Result<()>) + Send>;

/// A queued write: runs on the connection (or, given none, learns that it will not run). Besides
/// its completion it returns the error the whole commit fails with, if its failure took the
/// commit down.
type Job =
    Box<dyn FnOnce(Option<&Connection>, &mut Vec<Effect>) -> (Completion, Option<Error>) + Send>;

/// How a job's failure is kept out of the commit it shares with other jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    /// The job runs inside a savepoint of its own, which a failure rolls back. SQLite then
    /// copies every page the job is first to change into the savepoint's journal: under the
    /// claim -> complete load that was a tenth of the connection thread.
    Savepoint,
    /// The job makes every check that can refuse it before its first change, so a refusal
    /// leaves nothing to roll back and it runs without a savepoint. A job that fails after
    /// changing the database all the same (the storage failing mid-job, or a refusal its
    /// checks did not foresee) takes the whole commit down: the transaction is rolled back and
    /// every job in it fails, none of them acknowledged, so nothing half-done is ever
    /// committed.
    ChecksFirst,
}

/// The queue of writes waiting for the next flush.
#[derive(Default)]
pub(super) struct Batch {
    jobs: Mutex<Vec<Job>>,
    /// How long writes wait for their commit (the lease health check reads it).
    waits: Mutex<Waits>,
    /// Flush calls that reached the connection, with jobs or without (for the tests).
    #[cfg(test)]
    flushes: std::sync::atomic::AtomicUsize,
}

/// When the oldest unanswered writes arrived, and the longest wait answered since last read.
#[derive(Debug, Default)]
struct Waits {
    /// Arrival of the oldest write still queued.
    queued: Option<Instant>,
    /// Arrival of the oldest write of the commit in progress.
    flushing: Option<Instant>,
    /// The longest arrival -> answer of a commit finished since [`Batch::commit_latency`].
    worst: Duration,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl Batch {
    /// Queues `op`; the receiver gets its result after the commit that includes it. Returns
    /// also whether the queue was empty, in which case no flush will take `op` until the caller
    /// schedules one (a non-empty queue always has one scheduled that has not yet taken it).
    pub(super) fn push<T, F>(
        &self,
        isolation: Isolation,
        op: F,
    ) -> (oneshot::Receiver<Result<T>>, bool)
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<Effect>) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn, effects| {
            let Some(conn) = conn else {
                let refused: Completion = Box::new(move |batch: &Result<()>| {
                    let _ = reply.send(Err(batch.clone().err().unwrap_or(Error::Internal)));
                });
                return (refused, None);
            };
            let ran = match isolation {
                Isolation::Savepoint => in_savepoint(conn, op),
                Isolation::ChecksFirst => checks_first(conn, op),
            };
            match ran {
                Ok((value, mine)) => {
                    effects.extend(mine);
                    let completion: Completion = Box::new(move |committed: &Result<()>| {
                        let _ = reply.send(committed.clone().map(|()| value));
                    });
                    (completion, None)
                }
                Err(Failed { err, aborted }) => {
                    // For some errors (a full disk, I/O errors) SQLite has already rolled the
                    // transaction back, not just the statement: every job of the commit fails.
                    let aborted = aborted.or_else(|| conn.is_autocommit().then(|| err.clone()));
                    let completion: Completion = Box::new(move |_: &Result<()>| {
                        let _ = reply.send(Err(err));
                    });
                    (completion, aborted)
                }
            }
        });
        let mut jobs = self.jobs.lock().expect("batch lock");
        let first = jobs.is_empty();
        if first {
            self.waits().queued.get_or_insert_with(Instant::now);
        }
        jobs.push(job);
        (rx, first)
    }

    /// Answers every queued job with `err` without running it: the flush scheduled for them
    /// could not reach the connection (it is closed).
    pub(super) fn fail_queued(&self, err: &Error) {
        let jobs = std::mem::take(&mut *self.jobs.lock().expect("batch lock"));
        self.waits().queued = None;
        let failed = Err(err.clone());
        let mut effects = Vec::new();
        for job in jobs {
            job(None, &mut effects).0(&failed);
        }
    }

    /// The commit latency writes see now: the longest of the oldest unanswered write's wait
    /// so far and every wait answered since the previous call.
    pub(super) fn commit_latency(&self) -> Duration {
        let mut waits = self.waits();
        let oldest = [waits.queued, waits.flushing]
            .into_iter()
            .flatten()
            .map(|since| since.elapsed())
            .max()
            .unwrap_or_default();
        oldest.max(std::mem::take(&mut waits.worst))
    }

    /// Flush calls so far (each commits what was queued when it started, if anything).
    #[cfg(test)]
    fn flushes(&self) -> usize {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes queued for the next flush.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.jobs.lock().expect("batch lock").len()
    }

    fn waits(&self) -> std::sync::MutexGuard<'_, Waits> {
        self.waits.lock().expect("batch waits lock")
    }

    /// Runs every queued job in one transaction. Called on the connection thread.
    pub(super) fn flush(&self, conn: &mut Connection, leases: &dyn LiveLeases) {
        #[cfg(test)]
        self.flushes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let jobs = {
            let mut queued = self.jobs.lock().expect("batch lock");
            let mut waits = self.waits();
            waits.flushing = waits.queued.take();
            std::mem::take(&mut *queued)
        };
        if jobs.is_empty() {
            return;
        }
        let _answered = Answered(self);
        let started = std::time::Instant::now();
        let size = jobs.len();
        let mut effects = Vec::new();
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(err) => {
                let failed = Err(Error::from(err));
                for job in jobs {
                    job(None, &mut effects).0(&failed);
                }
                return;
            }
        };
        let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
        let mut aborted = None;
        for job in jobs {
            // Once the transaction is gone, the rest are not run: they fail with its error.
            let (completion, abort) = job(aborted.is_none().then_some(&*tx), &mut effects);
            completions.push(completion);
            aborted = aborted.or(abort);
        }
        // An aborted transaction (rolled back by SQLite, or holding part of a failed job, which
        // dropping it rolls back): every job in it fails, including those that had succeeded,
        // none of which was acknowledged.
        let committed = match aborted {
            Some(err) => {
                drop(tx);
                Err(err)
            }
            None => tx.commit().map_err(Error::from),
        };
        metrics::histogram!(crate::metrics::COMMIT_DURATION)
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!(crate::metrics::COMMIT_BATCH_SIZE).record(size as f64);
        if committed.is_ok() {
            count_committed(&effects);
            leases.apply(effects);
            match events::latest_id(conn) {
                Ok(id) => leases.publish_event_id(id),
                Err(err) => tracing::warn!(error = %err, "reading the newest event id"),
            }
        }
        for complete in completions {
            complete(&committed);
        }
    }
}

/// Ends the commit in progress in [`Waits`] however the flush returns.
struct Answered<'a>(&'a Batch);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        let mut waits = self.0.waits();
        if let Some(since) = waits.flushing.take() {
            waits.worst = waits.worst.max(since.elapsed());
        }
    }
}

/// Counts the grants and revocations a commit made (restored leases, applied at start-up
/// without a commit, are not counted again).
fn count_committed(effects: &[Effect]) {
    for effect in effects {
        match effect {
            Effect::Granted(..) => metrics::counter!(crate::metrics::GRANTS).increment(1),
            Effect::Revoked(_, cause) => {
                metrics::counter!(crate::metrics::REVOCATIONS, "cause" => cause.as_str())
                    .increment(1);
            }
            _ => {}
        }
    }
}

/// A job that failed: its own error, and the error every other job of the commit fails with
/// if its failure took the commit down.
struct Failed {
    err: Error,
    aborted: Option<Error>,
}

impl Failed {
    /// A failure that left the transaction as it was before the job.
    fn alone(err: Error) -> Self {
        Failed { err, aborted: None }
    }
}

impl From<tokio_rusqlite::rusqlite::Error> for Failed {
    fn from(err: tokio_rusqlite::rusqlite::Error) -> Self {
        Failed::alone(err.into())
    }
}

/// Runs `op` inside a savepoint, rolling back only its own writes if it fails.
fn in_savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection, &mut Vec<Effect>) -> Result<T>,
) -> std::result::Result<(T, Vec<Effect>), Failed> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let mut effects = Vec::new();
    match op(conn, &mut effects) {
        Ok(value) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok((value, effects))
        }
        Err(err) if conn.is_autocommit() => Err(Failed::alone(err)),
        Err(err) => {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Err(Failed::alone(err))
        }
    }
}

/// Runs `op`, which checks before it changes anything ([`Isolation::ChecksFirst`]), without a
/// savepoint. Whether it changed anything before failing is told by SQLite's count of rows
/// changed: a statement that fails is undone by SQLite and counts nothing, so an unchanged
/// count means the transaction holds nothing of the job.
fn checks_first<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection, &mut Vec<Effect>) -> Result<T>,
) -> std::result::Result<(T, Vec<Effect>), Failed> {
    let before = conn.total_changes();
    let mut effects = Vec::new();
    match op(conn, &mut effects) {
        Ok(value) => Ok((value, effects)),
        Err(err) if conn.is_autocommit() || conn.total_changes() == before => {
            Err(Failed::alone(err))
        }
        Err(err) => {
            tracing::warn!(error = %err, "a write failed after changing the database: its commit is rolled back");
            // A storage failure is the others' failure too; a refusal is the job's own.
            let theirs = match &err {
                Error::ResourceExhausted(_) | Error::Internal => err.clone(),
                _ => Error::Unavailable(
                    "a write sharing this one's commit failed partway, so the commit was rolled \
                     back: nothing of this call was written; retry it"
                        .into(),
                ),
            };
            Err(Failed {
                err,
                aborted: Some(theirs),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::{sync::oneshot, task::JoinHandle};
    use tokio_rusqlite::rusqlite::Connection;

    use super::Isolation;
    use crate::{
        error::{Error, Result},
        store::{Store, testing::open_store},
    };

    /// A store with an empty table `written (n)`.
    async fn store_with_table() -> (tempfile::TempDir, Arc<Store>) {
        let (dir, store) = open_store().await;
        store
            .call(|conn| {
                conn.execute_batch("CREATE TABLE written (n INTEGER NOT NULL)")?;
                Ok(())
            })
            .await
            .unwrap();
        (dir, Arc::new(store))
    }

    fn insert(tx: &Connection, n: i64) -> Result<()> {
        tx.execute("INSERT INTO written (n) VALUES (?1)", [n])?;
        Ok(())
    }

    /// The rows of `written`, in order.
    async fn written(store: &Store) -> Vec<i64> {
        store
            .call(|conn| {
                let mut rows = conn.prepare("SELECT n FROM written ORDER BY n")?;
                let rows = rows.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap()
    }

    type Write = Box<dyn FnOnce(&Connection) -> Result<()> + Send>;

    /// Runs `writes` as one commit: queued while the connection thread is held, as a commit in
    /// progress would hold it, then let go. Returns each write's answer, in order.
    async fn one_commit(store: &Arc<Store>, writes: Vec<(Isolation, Write)>) -> Vec<Result<()>> {
        let (release, held) = oneshot::channel::<()>();
        let holder = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .call(move |_| {
                        let _ = held.blocking_recv();
                        Ok(())
                    })
                    .await
            }
        });
        let flushes = store.batch.flushes();
        let mut answers: Vec<JoinHandle<Result<()>>> = Vec::new();
        for (isolation, write) in writes {
            let writer = store.clone();
            answers.push(tokio::spawn(async move {
                writer
                    .write_quietly_as(isolation, move |tx, _| write(tx))
                    .await
            }));
            // Queued in this order: each is in the queue before the next is spawned.
            while store.batch.queued() < answers.len() {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        assert_eq!(
            store.batch.flushes() - flushes,
            1,
            "the writes shared one flush"
        );
        results
    }

    fn refusal() -> Error {
        Error::FailedPrecondition("refused".into())
    }

    /// A write that changes a row, then refuses.
    fn insert_then_refuse(tx: &Connection) -> Result<()> {
        insert(tx, 2)?;
        Err(refusal())
    }

    /// One commit of three writes: row 1 in a savepoint, `middle` with `isolation`, then row 3
    /// without a savepoint, so each test sees a neighbour of either kind.
    async fn between_neighbours(
        store: &Arc<Store>,
        isolation: Isolation,
        middle: Write,
    ) -> Vec<Result<()>> {
        one_commit(
            store,
            vec![
                (Isolation::Savepoint, Box::new(|tx| insert(tx, 1))),
                (isolation, middle),
                (Isolation::ChecksFirst, Box::new(|tx| insert(tx, 3))),
            ],
        )
        .await
    }

    #[tokio::test]
    async fn writes_queued_behind_a_busy_connection_share_one_flush() {
        let (_dir, store) = store_with_table().await;
        let writes = (0..50)
            .map(|n| {
                let write: Write = Box::new(move |tx| insert(tx, n));
                (Isolation::Savepoint, write)
            })
            .collect();
        // `one_commit` checks that the fifty writes queued meanwhile are one flush call, not
        // one each.
        let answers = one_commit(&store, writes).await;
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(written(&store).await, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_write_refused_before_it_changes_anything_fails_alone_without_a_savepoint() {
        let (_dir, store) = store_with_table().await;
        let answers = between_neighbours(
            &store,
            Isolation::ChecksFirst,
            Box::new(|tx| {
                // Reads, then refuses: nothing to roll back.
                tx.query_row("SELECT count(*) FROM written", [], |r| r.get::<_, i64>(0))?;
                Err(refusal())
            }),
        )
        .await;
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(answers[1], Err(Error::FailedPrecondition(_))));
        assert_eq!(written(&store).await, [1, 3]);
    }

    #[tokio::test]
    async fn a_write_that_fails_after_a_change_without_a_savepoint_takes_its_commit_down() {
        let (_dir, store) = store_with_table().await;
        let answers =
            between_neighbours(&store, Isolation::ChecksFirst, Box::new(insert_then_refuse)).await;
        assert!(
            matches!(answers[1], Err(Error::FailedPrecondition(_))),
            "the failed write gets its own error: {answers:?}"
        );
        for other in [&answers[0], &answers[2]] {
            assert!(
                matches!(other, Err(Error::Unavailable(_))),
                "the others are told to retry: {answers:?}"
            );
        }
        assert_eq!(
            written(&store).await,
            [0i64; 0],
            "nothing half-done is committed"
        );
        // The connection is not left inside the rolled-back transaction.
        let again = one_commit(
            &store,
            vec![(Isolation::ChecksFirst, Box::new(|tx| insert(tx, 4)))],
        )
        .await;
        assert!(again[0].is_ok());
        assert_eq!(written(&store).await, [4]);
    }

    #[tokio::test]
    async fn a_write_that_fails_after_a_change_in_its_savepoint_fails_alone() {
        let (_dir, store) = store_with_table().await;
        let answers =
            between_neighbours(&store, Isolation::Savepoint, Box::new(insert_then_refuse)).await;
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(answers[1], Err(Error::FailedPrecondition(_))));
        assert_eq!(written(&store).await, [1, 3]);
    }
}
