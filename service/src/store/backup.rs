//! Online backups (`Admin.Backup`), written only into the one directory kanband owns for them
//! (`backups` in the data directory, or `--backup-dir`). The caller names the file, never the
//! path: a name with `/`, or starting with `.` (so also `..`), is refused. SQLite's
//! `VACUUM INTO` creates its output itself, so it writes a temporary file with a random name
//! inside the directory, which is made 0600 and then hard-linked to the name: the link fails
//! if anything (a file, a dangling symlink) already has the name, so the backup never replaces
//! or follows anything, and a refused backup leaves nothing behind.
//!
//! A backup is the database copy `<name>` and, beside it, the directory `<name>.attachments`
//! holding a copy of every attachment blob that copy names (by hash, as in the data
//! directory's `attachments`). Blobs are kept from removal (pinned) from before the copy is
//! taken until they are copied, so a deletion meanwhile cannot take one the copy names.
//! Restoring is: the database file as `kanband.db` and the blobs into `attachments/` of a new
//! data directory.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use super::{Store, blobs};
use crate::{
    domain::ids,
    error::{Error, Result},
};

/// Name of the backup directory inside the data directory, when none is configured.
pub const BACKUP_DIR: &str = "backups";

/// Suffix of the directory of a backup's attachment blobs, after the backup's name.
pub const BLOBS_SUFFIX: &str = ".attachments";

/// Longest backup file name, in bytes (most filesystems' limit, less the blob directory's
/// suffix).
const NAME_MAX: usize = 255 - BLOBS_SUFFIX.len();

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The database copy.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The directory of attachment blobs beside it.
    pub attachments_dir: PathBuf,
    /// Blobs copied.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
}

/// Refuses anything but a plain file name.
fn check_name(name: &str) -> Result<()> {
    let why = if name.len() > NAME_MAX {
        Some(format!("must be at most {NAME_MAX} bytes"))
    } else if name.contains('/') || name.contains('\0') {
        Some("must be a file name, not a path: backups go into kanband's backup directory".into())
    } else if name.starts_with('.') {
        Some("must not start with `.`".into())
    } else {
        None
    };
    why.map_or(Ok(()), |why| Err(Error::invalid("path", why)))
}

/// Creates the backup directory (0700) if needed, and refuses one that is a symlink, not a
/// directory, or writable by group or others.
fn prepare(dir: &Path) -> Result<()> {
    let refuse = |why: String| {
        Error::FailedPrecondition(format!("backup directory {}: {why}", dir.display()))
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| refuse(format!("cannot create it: {err}")))?;
    let meta = fs::symlink_metadata(dir).map_err(|err| refuse(err.to_string()))?;
    if !meta.is_dir() {
        return Err(refuse(
            "is not a directory (a symlink is not accepted)".into(),
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refuse(format!(
            "is writable by group or others (mode {mode:o}); chmod 700 it"
        )));
    }
    Ok(())
}

fn exists(path: &Path) -> Error {
    Error::AlreadyExists(format!("{} already exists", path.display()))
}

fn cannot_write(path: &Path, err: impl std::fmt::Display) -> Error {
    Error::FailedPrecondition(format!("cannot write the backup {}: {err}", path.display()))
}

/// Copies the blobs `shas` from `from` into the new directory `to` (0700), each file and the
/// directory synced; returns the bytes copied.
fn copy_blobs(from: &Path, to: &Path, shas: &[String]) -> Result<u64> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .map_err(|err| cannot_write(to, err))?;
    let mut bytes = 0;
    for sha in shas {
        let source = from.join(sha);
        let target = to.join(sha);
        bytes += fs::copy(&source, &target).map_err(|err| {
            tracing::error!(blob = %source.display(), error = %err, "cannot copy an attachment blob into a backup");
            cannot_write(&target, format!("attachment blob {sha}: {err}"))
        })?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600))
            .and_then(|()| fs::File::open(&target)?.sync_all())
            .map_err(|err| cannot_write(&target, err))?;
    }
    blobs::sync_dir(to).map_err(|err| cannot_write(to, err))?;
    Ok(bytes)
}

impl Store {
    /// Writes a consistent copy of the database to `name` in `dir` (created 0700 if needed),
    /// mode 0600, and the attachment blobs it names to `<name>.attachments` beside it. Refuses
    /// a name that is not a plain file name and a name already taken (either of the two).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn backup(&self, dir: PathBuf, name: String) -> Result<BackupReport> {
        check_name(&name)?;
        prepare(&dir)?;
        let target = dir.join(&name);
        let blobs_target = dir.join(format!("{name}{BLOBS_SUFFIX}"));
        for taken in [&target, &blobs_target] {
            if fs::symlink_metadata(taken).is_ok() {
                return Err(exists(taken));
            }
        }
        let temp = dir.join(ids::fresh(".partial-"));
        let blobs_temp = dir.join(format!(
            "{}{BLOBS_SUFFIX}",
            temp.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
        ));
        let text = temp
            .to_str()
            .ok_or_else(|| Error::invalid("path", "the backup directory must be valid UTF-8"))?
            .to_owned();
        // Pinned before the copy is taken: no blob it names can be removed until copied.
        let pin = self.blobs.pin();
        let shas = self
            .call(move |conn| {
                conn.execute("VACUUM INTO ?1", [&text]).map_err(|err| {
                    Error::FailedPrecondition(format!("cannot write the backup: {err}"))
                })?;
                // The same state as the copy: nothing commits between the two on this thread.
                let shas = conn
                    .prepare("SELECT DISTINCT sha256 FROM attachments ORDER BY sha256")?
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(shas)
            })
            .await;
        let written = match shas {
            Ok(shas) => {
                let from = self.blobs.path("");
                let (temp, blobs_temp) = (temp.clone(), blobs_temp.clone());
                let (target, blobs_target) = (target.clone(), blobs_target.clone());
                tokio::task::spawn_blocking(move || {
                    let blob_bytes = copy_blobs(&from, &blobs_temp, &shas)?;
                    fs::set_permissions(&temp, fs::Permissions::from_mode(0o600))
                        .and_then(|()| fs::hard_link(&temp, &target))
                        .map_err(|err| match err.kind() {
                            std::io::ErrorKind::AlreadyExists => exists(&target),
                            _ => cannot_write(&target, err),
                        })?;
                    if let Err(err) = fs::rename(&blobs_temp, &blobs_target) {
                        let _ = fs::remove_file(&target);
                        return Err(cannot_write(&blobs_target, err));
                    }
                    let _ = blobs::sync_dir(target.parent().unwrap_or(Path::new(".")));
                    Ok((shas.len() as u64, blob_bytes))
                })
                .await
                .map_err(|_| Error::Internal)?
            }
            Err(err) => Err(err),
        };
        drop(pin);
        // Blobs freed while pinned go now.
        self.release_blobs(Vec::new()).await;
        let _ = fs::remove_file(&temp);
        let _ = fs::remove_dir_all(&blobs_temp);
        let (blobs, blob_bytes) = written?;
        let bytes = fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        Ok(BackupReport {
            path: target,
            bytes,
            attachments_dir: blobs_target,
            blobs,
            blob_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_accepted() {
        for good in ["backup.db", "2026-12-02 nightly", "a..b"] {
            check_name(good).unwrap_or_else(|err| panic!("{good}: {err}"));
        }
        for bad in ["/tmp/x.db", "../x.db", "..", ".", ".hidden", "a/b", "x\0y"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"x".repeat(NAME_MAX + 1)).is_err());
    }
}
