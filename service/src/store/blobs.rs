//! The bytes of attachments: `attachments/<sha256>` in the data directory, one file (mode 0600)
//! per distinct content, never modified once in place.
//!
//! An upload is written to a temporary file (`.partial-<random>`) while its SHA-256 is computed
//! and its size held to the cap; it is then synced, renamed to its hash and the directory
//! synced, all before the row that names it is written. So a committed row always names bytes
//! that survive a crash, and a crash between the two leaves only a blob no row names, which
//! the start-up sweep removes (with any temporary file).
//!
//! Removing a blob races with an upload of the same content (its file is in place, its row not
//! yet committed) and with a backup copying the blobs its database copy names. Both are kept
//! out by [`Blobs::remove_unnamed`]: it runs on the database's thread, where it sees exactly
//! the committed rows, and under one lock with the uploads in flight ([`Hold`]) and the
//! backups copying ([`Pin`]); a blob held by an upload is left alone, and one freed while a
//! backup copies is removed once the last backup is done.

use std::{
    collections::{HashMap, HashSet},
    fs,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio_rusqlite::rusqlite::Connection;

use crate::{
    domain::ids,
    error::{Error, Result},
};

/// Name of the blob directory inside the data directory.
pub const ATTACHMENTS_DIR: &str = "attachments";

/// Prefix of an upload's temporary file.
const PARTIAL: &str = ".partial-";

/// The blob directory and what is using its files now.
#[derive(Debug)]
pub(crate) struct Blobs {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Uploads whose blob is in place and whose row is not yet committed, by hash.
    held: HashMap<String, usize>,
    /// Backups copying blobs now.
    pins: usize,
    /// Blobs freed while a backup copied, removed once none does.
    deferred: HashSet<String>,
}

/// Whether `name` is a blob's file name: 64 lowercase hex digits.
pub(crate) fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn storage(what: &str, path: &Path, err: std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::StorageFull {
        return Error::ResourceExhausted(format!(
            "the attachment disk is full: cannot {what}; nothing was stored"
        ));
    }
    tracing::error!(path = %path.display(), error = %err, "cannot {what}");
    Error::Internal
}

/// Syncs a directory, so the names created or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl Blobs {
    /// Creates the blob directory (0700) if needed.
    pub(crate) fn open(data_dir: &Path, max_bytes: u64) -> std::io::Result<Blobs> {
        let dir = data_dir.join(ATTACHMENTS_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(Blobs {
            dir,
            max_bytes,
            state: Mutex::default(),
        })
    }

    /// The largest file accepted, in bytes.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the blob of `sha256` is.
    pub(crate) fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Starts an upload: a new temporary file, removed again unless the upload is finished.
    pub(crate) async fn upload(&self) -> Result<Upload> {
        let temp = self.dir.join(ids::fresh(PARTIAL));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .await
            .map_err(|err| storage("create an attachment's file", &temp, err))?;
        Ok(Upload {
            file: Some(file),
            temp,
            hasher: Sha256::new(),
            size: 0,
            max_bytes: self.max_bytes,
        })
    }

    /// Removes the blobs in `candidates` that no committed row names, unless an upload holds
    /// one (its row is coming) or a backup is copying (then once it is done). Runs on the
    /// database's thread, outside any transaction. Returns how many files were removed.
    pub(crate) fn remove_unnamed(
        &self,
        conn: &Connection,
        candidates: impl IntoIterator<Item = String>,
    ) -> Result<usize> {
        let mut state = self.state.lock().expect("blob state lock");
        let mut candidates: HashSet<String> = candidates.into_iter().collect();
        if state.pins > 0 {
            state.deferred.extend(candidates);
            return Ok(0);
        }
        candidates.extend(state.deferred.drain());
        let mut named = conn.prepare_cached("SELECT 1 FROM attachments WHERE sha256 = ?1")?;
        let mut removed = 0;
        for sha in candidates {
            if state.held.contains_key(&sha) || named.exists([&sha])? {
                continue;
            }
            let path = self.path(&sha);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "cannot remove an unused attachment blob");
                }
            }
        }
        Ok(removed)
    }

    /// The start-up sweep: removes every temporary file and every blob no row names (left by a
    /// crash between a blob and its row). Files of other names are left alone.
    pub(crate) fn sweep(&self, conn: &Connection) -> Result<usize> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|err| storage("read the attachment directory", &self.dir, err))?;
        let mut hashes = Vec::new();
        let mut partials = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PARTIAL) {
                if fs::remove_file(entry.path()).is_ok() {
                    partials += 1;
                }
            } else if is_hash(&name) {
                hashes.push(name);
            }
        }
        let removed = self.remove_unnamed(conn, hashes)? + partials;
        if removed > 0 {
            let _ = sync_dir(&self.dir);
            tracing::info!(
                removed,
                "removed attachment files no row names (an interrupted upload or delete)"
            );
        }
        Ok(removed)
    }

    /// Keeps every blob from being removed until the pin is dropped (a backup copying).
    pub(crate) fn pin(self: &Arc<Self>) -> Pin {
        self.state.lock().expect("blob state lock").pins += 1;
        Pin(self.clone())
    }

    fn hold(self: &Arc<Self>, sha256: &str) -> Hold {
        *self
            .state
            .lock()
            .expect("blob state lock")
            .held
            .entry(sha256.to_owned())
            .or_default() += 1;
        Hold {
            blobs: self.clone(),
            sha256: sha256.to_owned(),
        }
    }
}

/// An upload being written to its temporary file.
#[derive(Debug)]
pub(crate) struct Upload {
    file: Option<tokio::fs::File>,
    temp: PathBuf,
    hasher: Sha256,
    size: u64,
    max_bytes: u64,
}

impl Upload {
    /// Appends a chunk; refuses one that takes the file over the cap (RESOURCE_EXHAUSTED).
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let size = self.size + chunk.len() as u64;
        if size > self.max_bytes {
            return Err(Error::ResourceExhausted(format!(
                "the attachment is larger than the {} byte cap (--attachment-max-bytes); \
                 nothing was stored",
                self.max_bytes
            )));
        }
        self.hasher.update(chunk);
        let file = self.file.as_mut().ok_or(Error::Internal)?;
        file.write_all(chunk)
            .await
            .map_err(|err| storage("write an attachment", &self.temp, err))?;
        self.size = size;
        Ok(())
    }

    /// Syncs the file, renames it to its hash and syncs the directory: once this returns the
    /// bytes survive a crash. The blob is held (safe from removal) until the [`Stored`] is
    /// dropped, which the caller does once the row naming it has committed or failed.
    pub(crate) async fn finish(mut self, blobs: &Arc<Blobs>) -> Result<Stored> {
        let mut file = self.file.take().ok_or(Error::Internal)?;
        file.flush()
            .await
            .map_err(|err| storage("write an attachment", &self.temp, err))?;
        file.sync_all()
            .await
            .map_err(|err| storage("sync an attachment", &self.temp, err))?;
        drop(file);
        let sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
        let hold = blobs.hold(&sha256);
        let target = blobs.path(&sha256);
        let temp = std::mem::take(&mut self.temp);
        let dir = blobs.dir.clone();
        // The same content already stored is the same bytes: renaming over it is harmless.
        tokio::task::spawn_blocking(move || {
            fs::rename(&temp, &target)
                .map_err(|err| {
                    let _ = fs::remove_file(&temp);
                    storage("store an attachment", &target, err)
                })
                .and_then(|()| {
                    sync_dir(&dir)
                        .map_err(|err| storage("sync the attachment directory", &dir, err))
                })
        })
        .await
        .map_err(|_| Error::Internal)??;
        Ok(Stored {
            sha256,
            size: self.size,
            _hold: hold,
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// A blob in place, held from removal until dropped.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Its hash (its file name).
    pub(crate) sha256: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    _hold: Hold,
}

#[derive(Debug)]
struct Hold {
    blobs: Arc<Blobs>,
    sha256: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut state = self.blobs.state.lock().expect("blob state lock");
        if let Some(count) = state.held.get_mut(&self.sha256) {
            *count -= 1;
            if *count == 0 {
                state.held.remove(&self.sha256);
            }
        }
    }
}

/// Keeps every blob in place while a backup copies (see [`Blobs::pin`]).
#[derive(Debug)]
pub(crate) struct Pin(Arc<Blobs>);

impl Drop for Pin {
    fn drop(&mut self) {
        self.0.state.lock().expect("blob state lock").pins -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE attachments (sha256 TEXT NOT NULL)")
            .unwrap();
        conn
    }

    async fn stored(blobs: &Arc<Blobs>, bytes: &[u8]) -> Stored {
        let mut upload = blobs.upload().await.unwrap();
        upload.write(bytes).await.unwrap();
        upload.finish(blobs).await.unwrap()
    }

    #[tokio::test]
    async fn a_blob_is_named_by_its_sha256_and_the_cap_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(Blobs::open(dir.path(), 4).unwrap());
        let abc = stored(&blobs, b"abc").await;
        assert_eq!(
            abc.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(fs::read(blobs.path(&abc.sha256)).unwrap(), b"abc");
        let mut big = blobs.upload().await.unwrap();
        big.write(b"1234").await.unwrap();
        let err = big.write(b"5").await.unwrap_err();
        assert!(matches!(err, Error::ResourceExhausted(_)), "{err}");
        drop(big);
        let names: Vec<_> = fs::read_dir(&blobs.dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "a refused upload leaves no temporary file");
    }

    #[tokio::test]
    async fn the_sweep_removes_unnamed_blobs_and_partials_but_not_named_or_held_ones() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(Blobs::open(dir.path(), 100).unwrap());
        let conn = db();
        let named = stored(&blobs, b"named").await;
        conn.execute("INSERT INTO attachments VALUES (?1)", [&named.sha256])
            .unwrap();
        let orphan = stored(&blobs, b"orphan").await;
        let held = stored(&blobs, b"held").await;
        let orphan_sha = orphan.sha256.clone();
        drop(orphan);
        fs::write(blobs.dir.join(".partial-0123"), b"half").unwrap();
        fs::write(blobs.dir.join("README"), b"not a blob").unwrap();

        assert_eq!(blobs.sweep(&conn).unwrap(), 2);
        assert!(blobs.path(&named.sha256).exists());
        assert!(
            blobs.path(&held.sha256).exists(),
            "an upload still holds it"
        );
        assert!(!blobs.path(&orphan_sha).exists());
        assert!(!blobs.dir.join(".partial-0123").exists());
        assert!(blobs.dir.join("README").exists());

        let held_sha = held.sha256.clone();
        drop(held);
        let pin = blobs.pin();
        assert_eq!(blobs.remove_unnamed(&conn, [held_sha.clone()]).unwrap(), 0);
        assert!(blobs.path(&held_sha).exists(), "kept while a backup copies");
        drop(pin);
        assert_eq!(blobs.remove_unnamed(&conn, []).unwrap(), 1, "then removed");
        assert!(!blobs.path(&held_sha).exists());
    }
}
