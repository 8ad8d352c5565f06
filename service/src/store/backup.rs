//! Online backups (`Admin.Backup`), written only into the one directory kanband owns for them
//! (`backups` in the data directory, or `--backup-dir`). The caller names the file, never the
//! path: a name with `/`, or starting with `.` (so also `..`), is refused. SQLite's
//! `VACUUM INTO` creates its output itself, so it writes a temporary file with a random name
//! inside the directory, which is made 0600 and then hard-linked to the name: the link fails
//! if anything (a file, a dangling symlink) already has the name, so the backup never replaces
//! or follows anything, and a refused backup leaves nothing behind.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use super::Store;
use crate::error::{Error, Result};

/// Name of the backup directory inside the data directory, when none is configured.
pub const BACKUP_DIR: &str = "backups";

/// Longest backup file name, in bytes (most filesystems' limit).
const NAME_MAX: usize = 255;

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

impl Store {
    /// Writes a consistent copy of the database to `name` in `dir` (created 0700 if needed),
    /// mode 0600; returns its path and size. Refuses a name that is not a plain file name and a
    /// name already taken.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn backup(&self, dir: PathBuf, name: String) -> Result<(PathBuf, u64)> {
        check_name(&name)?;
        prepare(&dir)?;
        let target = dir.join(&name);
        if fs::symlink_metadata(&target).is_ok() {
            return Err(exists(&target));
        }
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|_| Error::Internal)?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let temp = dir.join(format!(".partial-{hex}"));
        let text = temp
            .to_str()
            .ok_or_else(|| Error::invalid("path", "the backup directory must be valid UTF-8"))?
            .to_owned();
        let written = self
            .call(move |conn| {
                conn.execute("VACUUM INTO ?1", [&text]).map_err(|err| {
                    Error::FailedPrecondition(format!("cannot write the backup: {err}"))
                })?;
                Ok(())
            })
            .await
            .and_then(|()| {
                fs::set_permissions(&temp, fs::Permissions::from_mode(0o600))
                    .and_then(|()| fs::hard_link(&temp, &target))
                    .map_err(|err| match err.kind() {
                        std::io::ErrorKind::AlreadyExists => exists(&target),
                        _ => Error::FailedPrecondition(format!(
                            "cannot write the backup {}: {err}",
                            target.display()
                        )),
                    })
            });
        let _ = fs::remove_file(&temp);
        written?;
        let bytes = fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        Ok((target, bytes))
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
