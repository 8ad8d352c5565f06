//! The store: the only code that touches the database file.
//!
//! One [`tokio_rusqlite::Connection`] serves the whole process. Each operation is one closure
//! run on the connection's thread with its transaction inside, so a transaction is never held
//! across an `.await`, and every acknowledged write is committed before the caller sees `Ok`.
//!
//! Opening, in order: check the data directory's permissions, lock it, check the SQLite
//! version, refuse a directory whose database is gone or empty, open the file,
//! `locking_mode=EXCLUSIVE` before `journal_mode=WAL` (so no `-shm` exists and no other
//! process can open the database), `synchronous=FULL`, `foreign_keys=ON`, then migrate (which
//! takes the exclusive lock at once).
//!
//! Two layers. Below, [`tx`]: in-transaction helpers over a `&Connection` (loads, status
//! changes, fencing and endings, revocation), which never call a `Store` operation. Above, the
//! operations, one file per family, each an `impl Store` block of methods that run one
//! closure on the connection thread:
//!
//! - [`boards`], [`tasks`], [`links`], [`lifecycle`] (operator status changes), [`events`],
//!   [`notifications`], [`attachments`]: the board as people and gateways see it.
//! - [`sessions`], [`holder`] (the holder's calls on a claim), [`grant`] (the dispatcher's
//!   pass), [`deadlines`] (what passing deadlines do), [`coarse`] (the coarse copies of lease
//!   deadlines): the lease operations. They are
//!   `pub(crate)` and called only by the lease machinery and the coordinator above it.
//! - [`stats`], [`invariants`], [`backup`], [`storage_limit`], [`integrity`]: operator views,
//!   the invariant check, backups, the storage cap and the page check run after start-up.
//! - [`import`]: writing boards brought in from another kanban, offline, in one transaction.
//!
//! Beside them: [`batch`] (group commit), [`effect`] (what a commit hands the in-memory lease
//! state), [`rows`] (every row mapper), [`model`] (the plain data), [`blobs`] (the bytes of
//! attachments, beside the database), [`schema`], [`lock`],
//! [`datadir`] (the directory's permissions and the marker that tells a fresh one from one
//! whose database is gone).

mod attachments;
mod backup;
mod batch;
pub(crate) mod blobs;
mod boards;
mod coarse;
mod datadir;
mod deadlines;
pub mod effect;
mod events;
mod grant;
mod holder;
pub mod import;
mod integrity;
pub mod invariants;
mod lifecycle;
mod links;
mod lock;
pub mod model;
mod notifications;
mod rows;
mod schema;
mod sessions;
mod stats;
mod storage_limit;
mod tasks;
#[cfg(test)]
mod testing;
mod tokens;
mod tx;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio_rusqlite::rusqlite::{self, Connection, config::DbConfig};

pub use backup::{BACKUP_DIR, BLOBS_SUFFIX, BackupReport};
pub use blobs::ATTACHMENTS_DIR;
pub use datadir::MARKER_FILE;
pub use lock::{DataDirLock, LOCK_FILE, LockError};
pub use schema::{MigrationError, VERSION as SCHEMA_VERSION};
pub(crate) use tx::claims::Finish;

use crate::{
    domain::ids,
    error::{Error, Result},
};
use batch::Isolation;
use effect::{Claimable, Effect, LiveLeases};

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "kanband.db";

/// Oldest bundled SQLite accepted: 3.51.3 fixes a WAL-reset corruption bug.
pub const MIN_SQLITE_VERSION: i32 = 3_051_003;

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be created.
    #[error("cannot create data directory {dir}: {source}")]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Group or others may write into the data directory, so they could replace its files.
    #[error(
        "data directory {dir} is writable by group or others (mode {mode:o}); make it private \
         with `chmod 700 {dir}` and start again",
        dir = .dir.display()
    )]
    Permissions {
        /// The directory.
        dir: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The directory held a board whose database is gone or empty.
    #[error(
        "data directory {dir}: {what}; kanband will not start an empty board in its place. To \
         recover: {}", datadir::recovery(), dir = .dir.display()
    )]
    Damaged {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Another process owns the directory.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The linked SQLite is too old.
    #[error("SQLite {found} is older than the required 3.51.3 (WAL-reset corruption fix)")]
    SqliteTooOld {
        /// The version found.
        found: &'static str,
    },
    /// SQLite could not open or configure the file.
    #[error("cannot open database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The failure.
        source: rusqlite::Error,
    },
    /// SQLite did not accept a required setting, or its thread stopped.
    #[error("cannot set up database {path}: {reason}")]
    Setup {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The schema could not be migrated.
    #[error("database {path}: {source}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The failure.
        source: MigrationError,
    },
}

/// The single owner of the database.
#[derive(Debug)]
pub struct Store {
    conn: tokio_rusqlite::Connection,
    path: PathBuf,
    /// The in-memory lease state, kept in step with every commit.
    leases: Arc<dyn LiveLeases>,
    batch: Arc<batch::Batch>,
    /// The attachments' bytes.
    blobs: Arc<blobs::Blobs>,
    _lock: DataDirLock,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, which is created with mode 0700
    /// (see [`datadir`] for what is refused), and its attachment directory, whose blobs no row
    /// names are removed. Committed transactions apply their effects to `leases`; attachments
    /// are at most `attachment_max_bytes`.
    pub async fn open(
        data_dir: &Path,
        leases: Arc<dyn LiveLeases>,
        attachment_max_bytes: u64,
    ) -> Result<Store, OpenError> {
        datadir::create(data_dir)?;
        let lock = DataDirLock::acquire(data_dir)?;
        if rusqlite::version_number() < MIN_SQLITE_VERSION {
            return Err(OpenError::SqliteTooOld {
                found: rusqlite::version(),
            });
        }
        let fresh = datadir::inspect(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let blobs = Arc::new(blobs::Blobs::open(data_dir, attachment_max_bytes).map_err(
            |source| OpenError::DataDir {
                dir: data_dir.join(ATTACHMENTS_DIR),
                source,
            },
        )?);
        let sweeper = blobs.clone();
        let sqlite = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = tokio_rusqlite::Connection::open(&path)
            .await
            .map_err(sqlite)?;
        let db_path = path.clone();
        conn.call(move |conn| {
            configure(conn, &db_path)?;
            schema::migrate(conn).map_err(|source| OpenError::Migration {
                path: db_path.clone(),
                source,
            })?;
            storage_limit::restore(conn).map_err(|err| OpenError::Setup {
                path: db_path.clone(),
                reason: format!("cannot apply the storage cap: {err}"),
            })?;
            // New ordered ids start above every stored one.
            for sql in [
                "SELECT max(id) FROM tasks",
                "SELECT max(id) FROM runs",
                "SELECT max(id) FROM attachments",
            ] {
                let newest: Option<String> =
                    conn.query_row(sql, [], |row| row.get(0))
                        .map_err(|source| OpenError::Sqlite {
                            path: db_path.clone(),
                            source,
                        })?;
                if let Some(id) = newest {
                    ids::ordered_after(&id);
                }
            }
            sweeper.sweep(conn).map_err(|err| OpenError::Setup {
                path: db_path.clone(),
                reason: format!("cannot sweep the attachment directory: {err}"),
            })?;
            Ok(())
        })
        .await
        .map_err(|err| match err {
            tokio_rusqlite::Error::Error(err) => err,
            other => OpenError::Setup {
                path: path.clone(),
                reason: other.to_string(),
            },
        })?;
        // Best effort: a full disk must not stop start-up, and the next start tries again.
        if fresh.0
            && let Err(err) = datadir::mark(data_dir)
        {
            tracing::warn!(error = %err, "cannot write the data directory's marker");
        }
        Ok(Store {
            conn,
            path,
            leases,
            batch: Arc::default(),
            blobs,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` on the connection thread (see [`call_on`]).
    async fn call<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        call_on(&self.conn, op).await
    }

    /// Runs `op` as one write: inside its own savepoint of the next group commit (see
    /// [`batch`]). After the commit, on the connection thread and before any other transaction,
    /// the effects it collected are applied to the lease state, so that state changes in
    /// exactly the database's commit order, and the dispatcher is woken for anything. Returns
    /// only once the write is committed.
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<Effect>) -> Result<T> + Send + 'static,
    {
        self.write_as(Isolation::Savepoint, op).await
    }

    /// [`Store::write`] with the given [`Isolation`] from the other writes of its commit.
    async fn write_as<T, F>(&self, isolation: Isolation, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<Effect>) -> Result<T> + Send + 'static,
    {
        self.write_quietly_as(isolation, move |conn, fx| {
            let out = op(conn, fx)?;
            fx.push(Effect::Poke(Claimable::Anything));
            Ok(out)
        })
        .await
    }

    /// [`Store::write`] without waking the dispatcher: for the dispatcher's own passes and the
    /// writes that can make nothing claimable (or push their own, narrower [`Effect::Poke`]).
    async fn write_quietly<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<Effect>) -> Result<T> + Send + 'static,
    {
        self.write_quietly_as(Isolation::Savepoint, op).await
    }

    /// [`Store::write_quietly`] with the given [`Isolation`].
    async fn write_quietly_as<T, F>(&self, isolation: Isolation, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<Effect>) -> Result<T> + Send + 'static,
    {
        let (answer, first) = self.batch.push(isolation, op);
        if first {
            // The flush runs on its own task, so a writer that goes away (a cancelled call)
            // cannot strand the writes that joined its batch.
            let conn = self.conn.clone();
            let batch = self.batch.clone();
            let leases = self.leases.clone();
            tokio::spawn(async move {
                let flushing = batch.clone();
                let flushed = call_on(&conn, move |conn| {
                    flushing.flush(conn, &*leases);
                    Ok(())
                });
                if let Err(err) = flushed.await {
                    batch.fail_queued(&err);
                }
            });
        }
        answer.await.unwrap_or(Err(Error::Internal))
    }

    /// How long writes wait for their commit now (see the lease health check in
    /// [`crate::health`]).
    pub fn commit_latency(&self) -> std::time::Duration {
        self.batch.commit_latency()
    }

    /// Test hook: holds the connection thread for `hold`, as a stalled disk would (every write
    /// queued meanwhile waits).
    #[doc(hidden)]
    pub async fn stall_for_test(&self, hold: std::time::Duration) -> Result<()> {
        self.call(move |_| {
            std::thread::sleep(hold);
            Ok(())
        })
        .await
    }

    /// Checkpoints the WAL into the database and closes the connection; the lock is released
    /// when the store is dropped afterwards.
    pub async fn close(self) -> Result<()> {
        self.call(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await?;
        self.conn.close().await.map_err(|err| {
            tracing::error!(error = %err, "closing the database");
            Error::Internal
        })
    }
}

/// Prepared statements the connection keeps (the distinct statements kanband runs, with room).
const STATEMENT_CACHE: usize = 256;

/// Runs `op` on `conn`'s thread, inside the caller's runtime context so that
/// `tokio::time::Instant::now()` there reads the same clock as the rest of the service (this
/// matters when tests pause time).
async fn call_on<T, F>(conn: &tokio_rusqlite::Connection, op: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    Ok(conn
        .call(move |conn| {
            let _clock = runtime.enter();
            op(conn)
        })
        .await?)
}

/// Applies the connection settings, in the order the module overview gives.
fn configure(conn: &Connection, path: &Path) -> Result<(), OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let pragma = |sql: &str| -> Result<String, OpenError> {
        conn.query_row(sql, [], |row| row.get(0)).map_err(sqlite)
    };
    let expect = |sql: &str, want: &str| -> Result<(), OpenError> {
        let got = pragma(sql)?;
        if got.eq_ignore_ascii_case(want) {
            Ok(())
        } else {
            Err(OpenError::Setup {
                path: path.to_owned(),
                reason: format!("{sql} answered {got:?}"),
            })
        }
    };
    expect("PRAGMA locking_mode = EXCLUSIVE", "exclusive")?;
    expect("PRAGMA journal_mode = WAL", "wal")?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite)?;
    // Checkpoints run on the connection thread when a commit leaves the WAL longer than this
    // many pages. Nearly every commit rewrites the same hot pages (task indexes, the event
    // log's tail) and a checkpoint copies each page once, so ten times SQLite's default of
    // 1,000 (a WAL of about 40 MiB) does less copying per write: the checkpoint's share of the
    // thread under the cycle load was 5 %, and cycles went up about 8 %.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)
        .map_err(sqlite)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite)?;
    // Every statement kanband runs stays prepared: a claim -> complete cycle alone runs about
    // two dozen distinct statements, more than rusqlite's default cache of 16 holds, and a
    // statement pushed out is parsed and planned again on its next use.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans that never depend on a bound value. Without this SQLite plans `LIMIT ?` with the
    // value bound at preparation and marks the statement stale whenever that parameter is bound
    // again, so each grant pass's candidate query (and each Watch page) was parsed and planned
    // anew on every call: 4 % of the connection thread under the cycle load.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sqlite)?;
    // Temporary tables and indexes (sorts, VACUUM INTO) in memory: no unlinked temp file is
    // ever held open, so every descriptor kanband has is the database, its WAL or its lock.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sqlite)?;
    Ok(())
}
