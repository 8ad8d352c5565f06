//! The data directory before SQLite opens anything in it: created 0700 and refused when group
//! or others may write into it (they could replace kanband's files); every file kanband
//! creates there made 0600; and a marker, written when a board is first initialised, that
//! tells a fresh directory from one whose database is gone or empty, so kanband never starts
//! an empty board where a board existed.

use std::{
    fs::{self, OpenOptions},
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::Path,
};

use super::{DB_FILE, LOCK_FILE, OpenError};

/// Name of the marker file: its presence says this directory holds a board.
pub const MARKER_FILE: &str = "kanband.board";

/// What the marker says, for a person who finds it.
const MARKER_TEXT: &str = "This directory holds a kanband board: kanband.db must exist beside \
                           this file. kanband refuses to start if it is missing or empty.\n";

/// How a damaged directory can be brought back; part of every refusal.
const RECOVERY: &str = "put the database back (a copy written by Admin.Backup, or one rebuilt \
                        with `sqlite3 <copy> .recover`), or, to start an empty board on purpose, \
                        move this data directory aside";

/// Creates `dir` (and its parents) with mode 0700, or checks that an existing one is not
/// writable by group or others.
pub(super) fn create(dir: &Path) -> Result<(), OpenError> {
    let io = |source| OpenError::DataDir {
        dir: dir.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let mode = fs::metadata(dir).map_err(io)?.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(OpenError::Permissions {
            dir: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Whether the directory is fresh (no board yet) or holds one; refuses a damaged one. Called
/// with the directory's lock held. For a fresh directory the empty database file is created
/// here with mode 0600 (SQLite gives its WAL the same mode).
pub(super) fn inspect(dir: &Path) -> Result<Fresh, OpenError> {
    let db = dir.join(DB_FILE);
    let wal = dir.join(format!("{DB_FILE}-wal"));
    let marked = dir.join(MARKER_FILE).exists();
    let size = |path: &Path| fs::symlink_metadata(path).ok().map(|m| m.len());
    let wal_holds_work = size(&wal).is_some_and(|len| len > 0);
    let damaged = |what: String| OpenError::Damaged {
        dir: dir.to_owned(),
        what,
    };
    let evidence = || match (marked, wal_holds_work) {
        (true, true) => format!(
            ", but this directory held a board ({MARKER_FILE}) and {DB_FILE}-wal still holds committed work"
        ),
        (true, false) => format!(", but this directory held a board ({MARKER_FILE})"),
        (false, _) => format!(", but {DB_FILE}-wal holds committed work"),
    };
    match size(&db) {
        None if marked || wal_holds_work => {
            Err(damaged(format!("{DB_FILE} is missing{}", evidence())))
        }
        Some(0) if marked || wal_holds_work => Err(damaged(format!(
            "{DB_FILE} is empty (0 bytes){}",
            evidence()
        ))),
        None => {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&db)
                .map_err(|source| OpenError::DataDir {
                    dir: dir.to_owned(),
                    source,
                })?;
            Ok(Fresh(true))
        }
        Some(_) => {
            // Files from before kanband made everything 0600.
            for name in [DB_FILE, &format!("{DB_FILE}-wal"), LOCK_FILE] {
                private(&dir.join(name));
            }
            Ok(Fresh(!marked))
        }
    }
}

/// Whether the marker is still to be written (a fresh directory, or one from a kanband that
/// wrote none).
#[derive(Debug, Clone, Copy)]
pub(super) struct Fresh(pub(super) bool);

/// Writes the marker (mode 0600), once the database is initialised. A directory left without
/// one (a full disk) gets it at the next start, as one from a kanband that wrote none.
pub(super) fn mark(dir: &Path) -> Result<(), OpenError> {
    let path = dir.join(MARKER_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(MARKER_TEXT.as_bytes()).map(|()| file))
        .map_err(|source| OpenError::DataDir {
            dir: dir.to_owned(),
            source,
        })?;
    file.sync_all().map_err(|source| OpenError::DataDir {
        dir: dir.to_owned(),
        source,
    })
}

/// Makes an existing file readable and writable by its owner only.
fn private(path: &Path) {
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.is_file()
        && meta.permissions().mode() & 0o077 != 0
        && let Err(err) = fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    {
        tracing::warn!(path = %path.display(), error = %err, "cannot make the file 0600");
    }
}

/// The message of a damaged directory, with the way back.
pub(super) fn recovery() -> &'static str {
    RECOVERY
}
