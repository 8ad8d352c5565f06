//! `kanband import`: bringing another kanban's boards into a stopped kanband's data directory.
//!
//! The import runs offline, beside no kanband: it opens the data directory's store the way
//! kanband does (taking its lock, so a running kanband refuses it and it refuses a running
//! kanband), writes every board in one transaction, and closes it. A board is therefore either
//! imported whole or not at all, and no client ever sees one half-imported.
//!
//! - [`hermes`]: Hermes Agent 0.19 boards, read through SQLite's online backup API.
//! - [`report`]: what an import read, imported and skipped, per board and table.

pub mod hermes;
pub mod report;

use std::path::{Path, PathBuf};

use crate::{
    domain::dispatch::Load,
    store::{
        OpenError, Store,
        effect::{Effect, LiveLeases},
    },
};

/// Why an import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The kanband data directory could not be opened (kanband is running on it, ...).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The source is not what the importer reads, or a board cannot be read.
    #[error("{0}")]
    Source(String),
    /// Writing into kanband failed; the transaction was rolled back.
    #[error("writing into kanband failed, nothing was imported: {0}")]
    Write(#[from] crate::error::Error),
    /// A file operation of the importer itself failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// The lease state of an offline store: there is none (no session or claim runs while
/// kanband is stopped, and the import creates none).
#[derive(Debug)]
struct Offline;

impl LiveLeases for Offline {
    fn apply(&self, _effects: Vec<Effect>) {}
    fn publish_event_id(&self, _id: i64) {}
    fn claim_overdue(&self, _token: &str) -> bool {
        false
    }
    fn session_overdue(&self, _session_id: &str) -> bool {
        false
    }
    fn free_slots(&self, _session_id: &str) -> u32 {
        0
    }
    fn load(&self) -> Load {
        Load::default()
    }
    fn claim_tokens(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens the store of a stopped kanband's data directory (created if missing). The
/// attachment cap is for uploads to a running kanband; a blob the source already holds is
/// brought over whatever its size.
async fn open_offline(data_dir: &Path) -> Result<Store, OpenError> {
    Store::open(data_dir, std::sync::Arc::new(Offline), u64::MAX).await
}

/// A private scratch directory (mode 0700) removed when dropped: where source snapshots go.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn create(parent: &Path) -> Result<Scratch, ImportError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let path = parent.join(format!("kanband-import-{}", crate::domain::ids::fresh("")));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|source| ImportError::Io {
                what: format!("cannot create {}", path.display()),
                source,
            })?;
        Ok(Scratch(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %err, "cannot remove the import's scratch directory");
        }
    }
}
