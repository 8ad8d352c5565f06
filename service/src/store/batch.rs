//! Group commit: writes that arrive while a commit is in progress share the next transaction.
//!
//! Every write is queued as a job; the write that finds the queue empty schedules a flush on
//! the connection thread, and every write queued before that flush starts joins it. (A flush
//! scheduled per write would put one flush per waiting writer on the connection thread's
//! queue, each committing only the few writes that arrived since the one before, and each
//! writer's answer would wait behind all of them.) A flush takes every queued job, runs each
//! inside its own savepoint (a failing job rolls back alone and gets its own error), commits
//! once, applies the successful jobs' effects to the lease state in order, and only then
//! answers every job. So each acknowledged write is committed before its reply, one fsync
//! serves many writers under load, and the lease state still changes in exactly the
//! database's commit order.

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
/// its completion it returns the error that aborted the whole transaction, if its failure did:
/// for some errors (a full disk, I/O errors) SQLite rolls back the transaction, not just the
/// statement.
type Job =
    Box<dyn FnOnce(Option<&Connection>, &mut Vec<Effect>) -> (Completion, Option<Error>) + Send>;

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
    pub(super) fn push<T, F>(&self, op: F) -> (oneshot::Receiver<Result<T>>, bool)
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
            match in_savepoint(conn, op) {
                Ok((value, mine)) => {
                    effects.extend(mine);
                    let completion: Completion = Box::new(move |committed: &Result<()>| {
                        let _ = reply.send(committed.clone().map(|()| value));
                    });
                    (completion, None)
                }
                Err(err) => {
                    let aborted = conn.is_autocommit().then(|| err.clone());
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
        // An aborted transaction was already rolled back by SQLite: every job in it fails,
        // including those that had succeeded, none of which was acknowledged.
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

/// Runs `op` inside a savepoint, rolling back only its own writes if it fails.
fn in_savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection, &mut Vec<Effect>) -> Result<T>,
) -> Result<(T, Vec<Effect>)> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let mut effects = Vec::new();
    match op(conn, &mut effects) {
        Ok(value) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok((value, effects))
        }
        Err(err) if conn.is_autocommit() => Err(err),
        Err(err) => {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use crate::store::testing::open_store;

    #[tokio::test]
    async fn writes_queued_behind_a_busy_connection_share_one_flush() {
        let (_dir, store) = open_store().await;
        let store = Arc::new(store);
        store
            .call(|conn| {
                conn.execute_batch("CREATE TABLE written (n INTEGER NOT NULL)")?;
                Ok(())
            })
            .await
            .unwrap();
        // Hold the connection thread, as a commit in progress would.
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
        let before = store.batch.flushes();
        let writers: Vec<_> = (0..50)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write_quietly(move |tx, _| {
                            tx.execute("INSERT INTO written (n) VALUES (?1)", [n])?;
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        while store.batch.queued() < 50 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(
            store.batch.flushes() - before,
            1,
            "the fifty writes queued meanwhile are one flush call, not one each"
        );
        let written: i64 = store
            .call(|conn| Ok(conn.query_row("SELECT count(*) FROM written", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(written, 50);
    }
}
