//! The sidecar lock file that makes kanband the only owner of a data directory.
//!
//! The lock is an exclusive `flock` on `kanband.lock`, taken before the database is opened and
//! held for the life of the process (the kernel drops it if the process dies, so a crash never
//! leaves a stale lock). The holder writes its PID into the file so the refusal can name it.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "kanband.lock";

/// An exclusive lock on a data directory, released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another kanband is already running on data directory {dir}{}", pid_suffix(.pid))]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's PID, if it wrote one.
        pid: Option<u32>,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

fn pid_suffix(pid: &Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

impl DataDirLock {
    /// Takes the lock on `dir` without waiting.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    pid,
                });
            }
            Err(TryLockError::Error(err)) => return Err(io(err)),
        }
        // The PID only names the holder in a refusal: failing to write it (a full disk) must
        // not stop start-up.
        let pid = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        if let Err(err) = pid {
            tracing::warn!(path = %path.display(), error = %err, "cannot write the PID into the lock file");
        }
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
