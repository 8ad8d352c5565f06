//! [`TokenBook`]: the live bearer tokens, held in memory by hash (so authenticating a call
//! never waits for the database) and written through to the store when one is created or
//! revoked. Each live token has a revocation signal that the layer ties to every stream opened
//! with it, so revoking cuts open streams at once.

use std::{
    collections::HashMap,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::RwLock,
};

use tokio::sync::watch;

use super::{
    identity::{Binding, Identity, Role},
    token,
};
use crate::{
    clock::now_ms,
    domain::{ids, limits, validate},
    error::{Error, Result},
    store::{Store, model::TokenRecord},
};

/// The file in the data directory that holds the admin token written at first start (0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Name of the admin token written at first start.
const FIRST_ADMIN: &str = "admin";

/// A token to create, as the caller asked for it.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Recorded as the actor.
    pub name: String,
    /// Any role but worker (a worker's credential is its claim token).
    pub role: Role,
    /// Supervisor tokens: the machine id they serve (required for them, refused otherwise).
    pub machine_id: String,
    /// Supervisor tokens: the profiles they may serve; empty means any.
    pub profiles: Vec<String>,
}

#[derive(Debug)]
struct Live {
    /// Who the token's holder calls as, made once rather than on every call.
    identity: Identity,
    revoked: watch::Sender<bool>,
}

/// The live tokens by hash.
#[derive(Debug, Default)]
pub struct TokenBook {
    live: RwLock<HashMap<String, Live>>,
}

impl TokenBook {
    /// Loads the live tokens from `store`. On the very first start (no token ever made) it
    /// makes an admin token and writes it to [`ADMIN_TOKEN_FILE`] in `data_dir` with mode
    /// 0600. Returns the book and that file, if it exists.
    pub async fn open(store: &Store, data_dir: &Path) -> Result<(TokenBook, Option<PathBuf>)> {
        let rows = store.tokens().await?;
        let first_start = rows.is_empty();
        let book = TokenBook::default();
        {
            let mut live = book.write();
            for (record, hash) in rows {
                if record.revoked_at.is_none() {
                    live.insert(hash, Live::new(&record));
                }
            }
        }
        let file = data_dir.join(ADMIN_TOKEN_FILE);
        if first_start {
            book.write_first_admin(store, &file).await?;
        }
        let exists = file.exists();
        Ok((book, exists.then_some(file)))
    }

    /// Makes the first admin token: the file first (created new, 0600), then the row, so a
    /// failure leaves neither a token nobody can read nor a file that names no token.
    async fn write_first_admin(&self, store: &Store, file: &Path) -> Result<()> {
        let secret = token::generate();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
            .and_then(|mut f| {
                f.write_all(format!("{secret}\n").as_bytes())?;
                f.sync_all()
            });
        if let Err(err) = written {
            tracing::error!(file = %file.display(), error = %err, "cannot write the admin token");
            return Err(Error::Unavailable(format!(
                "cannot write the admin token to {}: {err}",
                file.display()
            )));
        }
        let new = NewToken {
            name: FIRST_ADMIN.to_owned(),
            role: Role::Admin,
            machine_id: String::new(),
            profiles: Vec::new(),
        };
        if let Err(err) = self.insert(store, new, &secret).await {
            let _ = std::fs::remove_file(file);
            return Err(err);
        }
        tracing::info!(file = %file.display(), "wrote the first admin token");
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Live>> {
        self.live.write().expect("token book lock")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Live>> {
        self.live.read().expect("token book lock")
    }

    /// Who holds `secret`, and the signal that turns true when it is revoked; `None` for a
    /// malformed, unknown or revoked token.
    pub fn authenticate(&self, secret: &str) -> Option<(Identity, watch::Receiver<bool>)> {
        if !token::well_formed(secret) {
            return None;
        }
        let live = self.read();
        let entry = live.get(&token::hash(secret))?;
        Some((entry.identity.clone(), entry.revoked.subscribe()))
    }

    /// Creates a token; returns its secret (shown once, never stored) and its record.
    pub async fn create(&self, store: &Store, new: NewToken) -> Result<(String, TokenRecord)> {
        validate::required_text("name", &new.name, limits::NAME_MAX)?;
        match new.role {
            Role::Worker => {
                return Err(Error::invalid(
                    "role",
                    "a worker's credential is the claim token its supervisor hands it; \
                     tokens are admin, operator, supervisor or reader",
                ));
            }
            Role::Supervisor => {
                validate::required_text("machine_id", &new.machine_id, limits::NAME_MAX)?;
                if !new.profiles.is_empty() {
                    validate::profiles("profiles", &new.profiles)?;
                }
            }
            _ if !new.machine_id.is_empty() || !new.profiles.is_empty() => {
                return Err(Error::invalid(
                    "machine_id",
                    "only supervisor tokens are bound to a machine id and profiles",
                ));
            }
            _ => {}
        }
        let secret = token::generate();
        let record = self.insert(store, new, &secret).await?;
        Ok((secret, record))
    }

    async fn insert(&self, store: &Store, new: NewToken, secret: &str) -> Result<TokenRecord> {
        let mut profiles = new.profiles;
        profiles.sort();
        profiles.dedup();
        let record = TokenRecord {
            id: ids::fresh(token::ID_PREFIX),
            name: new.name,
            role: new.role,
            machine_id: new.machine_id,
            profiles,
            created_at: now_ms(),
            revoked_at: None,
        };
        let hash = token::hash(secret);
        let record = store.insert_token(record, hash.clone()).await?;
        self.write().insert(hash, Live::new(&record));
        Ok(record)
    }

    /// Revokes the live token with this id or name: from the answer on, it authenticates
    /// nothing, and every stream opened with it is cut.
    pub async fn revoke(&self, store: &Store, id_or_name: String) -> Result<TokenRecord> {
        validate::required_text("id", &id_or_name, limits::NAME_MAX)?;
        let (record, hash) = store.revoke_token(id_or_name).await?;
        if let Some(live) = self.write().remove(&hash) {
            live.revoked.send_replace(true);
        }
        Ok(record)
    }
}

impl Live {
    fn new(record: &TokenRecord) -> Live {
        Live {
            identity: identity(record),
            revoked: watch::Sender::new(false),
        }
    }
}

/// The identity a token's holder calls as.
fn identity(record: &TokenRecord) -> Identity {
    Identity {
        name: record.name.clone(),
        role: record.role,
        key: record.id.clone(),
        binding: if record.role == Role::Supervisor {
            Binding::Machine {
                machine_id: record.machine_id.clone(),
                profiles: record.profiles.clone(),
            }
        } else {
            Binding::None
        },
    }
}
