//! [`TokenBook`]: the live bearer tokens, held in memory by hash (so authenticating a call
//! never waits for the database) and written through to the store when one is created or
//! revoked. Each live token has a [`TokenState`] signal that the layer ties to every stream
//! opened with it, so revoking cuts open streams at once; a token made to expire has a timer
//! that turns the same signal at its expiry, and every call checks the time as well.

use std::{
    collections::HashMap,
    fmt,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::RwLock,
    time::Duration,
};

use tokio::sync::watch;

use super::{
    identity::{Binding, Identity, Role},
    token,
};
use crate::{
    clock::{self, now_ms},
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
    /// How long it works from its creation; `None`: until revoked.
    pub expires_in: Option<Duration>,
}

/// Whether a token still works: what the streams and board sessions opened with it watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// It authenticates its holder.
    Live,
    /// An admin revoked it.
    Revoked,
    /// Its lifetime is over.
    Expired,
}

/// Why a bearer token authenticates nothing; its text says what credential is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not the shape of a kanband token.
    Malformed,
    /// No live token has this secret: never made, or revoked.
    Unknown,
    /// The token `name` stopped working at `at` (Unix ms).
    Expired {
        /// The token's name.
        name: String,
        /// Its expiry.
        at: i64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed => write!(
                f,
                "the bearer credential is not a kanband token (`{}` and 64 hex digits) nor a \
                 claim token",
                token::PREFIX
            ),
            Refusal::Unknown => f.write_str(
                "the bearer token is unknown or revoked; an admin makes tokens with \
                 `kanbanctl token create`",
            ),
            Refusal::Expired { name, at } => write!(
                f,
                "the token {name:?} expired at {}; an admin makes a new one with `kanbanctl \
                 token create`",
                clock::rfc3339(*at)
            ),
        }
    }
}

#[derive(Debug)]
struct Live {
    /// Who the token's holder calls as, made once rather than on every call.
    identity: Identity,
    /// Unix ms from which it authenticates nothing.
    expires_at: Option<i64>,
    state: watch::Sender<TokenState>,
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
            expires_in: None,
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

    /// Who holds `secret`, and the signal that leaves [`TokenState::Live`] when the token is
    /// revoked or expires.
    pub fn authenticate(
        &self,
        secret: &str,
    ) -> std::result::Result<(Identity, watch::Receiver<TokenState>), Refusal> {
        if !token::well_formed(secret) {
            return Err(Refusal::Malformed);
        }
        let live = self.read();
        let entry = live.get(&token::hash(secret)).ok_or(Refusal::Unknown)?;
        if let Some(at) = entry.expires_at
            && now_ms() >= at
        {
            return Err(Refusal::Expired {
                name: entry.identity.name.clone(),
                at,
            });
        }
        Ok((entry.identity.clone(), entry.state.subscribe()))
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
        if let Some(lifetime) = new.expires_in {
            let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
            if !(limits::TOKEN_LIFETIME_MIN_MS..=limits::TOKEN_LIFETIME_MAX_MS).contains(&ms) {
                return Err(Error::invalid(
                    "expires_in_ms",
                    format!(
                        "{ms} is outside {}..={} (a second to ten years); 0 makes a token that \
                         works until it is revoked",
                        limits::TOKEN_LIFETIME_MIN_MS,
                        limits::TOKEN_LIFETIME_MAX_MS
                    ),
                ));
            }
        }
        let secret = token::generate();
        let record = self.insert(store, new, &secret).await?;
        Ok((secret, record))
    }

    async fn insert(&self, store: &Store, new: NewToken, secret: &str) -> Result<TokenRecord> {
        let mut profiles = new.profiles;
        profiles.sort();
        profiles.dedup();
        let created_at = now_ms();
        let record = TokenRecord {
            id: ids::fresh(token::ID_PREFIX),
            name: new.name,
            role: new.role,
            machine_id: new.machine_id,
            profiles,
            created_at,
            revoked_at: None,
            // Bounded by TOKEN_LIFETIME_MAX_MS, so no overflow.
            expires_at: new
                .expires_in
                .map(|lifetime| created_at + lifetime.as_millis() as i64),
        };
        let hash = token::hash(secret);
        let record = store.insert_token(record, hash.clone()).await?;
        self.write().insert(hash, Live::new(&record));
        Ok(record)
    }

    /// Revokes the token with this id or name (expired or not): from the answer on, it
    /// authenticates nothing, and every stream opened with it is cut.
    pub async fn revoke(&self, store: &Store, id_or_name: String) -> Result<TokenRecord> {
        validate::required_text("id", &id_or_name, limits::NAME_MAX)?;
        let (record, hash) = store.revoke_token(id_or_name).await?;
        if let Some(live) = self.write().remove(&hash) {
            live.state.send_replace(TokenState::Revoked);
        }
        Ok(record)
    }
}

impl Live {
    /// A live token's entry; for a token made to expire, with the timer that ends its streams
    /// at the expiry (at once if it is already over).
    fn new(record: &TokenRecord) -> Live {
        let state = watch::Sender::new(TokenState::Live);
        if let Some(at) = record.expires_at {
            let expire = state.clone();
            let mut ended = state.subscribe();
            tokio::spawn(async move {
                // Never before the time every call compares with has reached `at`.
                let over = async {
                    while now_ms() < at {
                        tokio::time::sleep_until(clock::instant_at(at)).await;
                    }
                };
                tokio::select! {
                    () = over => {
                        expire.send_if_modified(|state| {
                            let live = *state == TokenState::Live;
                            if live {
                                *state = TokenState::Expired;
                            }
                            live
                        });
                    }
                    // Revoked first: nothing left to time.
                    _ = ended.wait_for(|state| *state != TokenState::Live) => {}
                }
            });
        }
        Live {
            identity: identity(record),
            expires_at: record.expires_at,
            state,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A book holding one token with this record, as loaded at start-up.
    fn book_with(record: &TokenRecord, secret: &str) -> TokenBook {
        let book = TokenBook::default();
        book.write().insert(token::hash(secret), Live::new(record));
        book
    }

    fn record(expires_at: Option<i64>) -> TokenRecord {
        TokenRecord {
            id: "k_0".into(),
            name: "short".into(),
            role: Role::Reader,
            machine_id: String::new(),
            profiles: Vec::new(),
            created_at: now_ms(),
            revoked_at: None,
            expires_at,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_works_until_its_expiry_and_then_ends_its_streams() {
        let secret = token::generate();
        let at = now_ms() + 5_000;
        let book = book_with(&record(Some(at)), &secret);
        let (_, mut state) = book.authenticate(&secret).expect("live before its expiry");

        tokio::time::advance(Duration::from_millis(4_999)).await;
        tokio::task::yield_now().await;
        assert_eq!(*state.borrow(), TokenState::Live, "1 ms before the expiry");
        assert!(book.authenticate(&secret).is_ok());

        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            book.authenticate(&secret).unwrap_err(),
            Refusal::Expired {
                name: "short".into(),
                at
            },
            "every call checks the time itself"
        );
        tokio::time::timeout(Duration::from_secs(1), state.changed())
            .await
            .expect("the timer fires at the expiry")
            .unwrap();
        assert_eq!(*state.borrow(), TokenState::Expired);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_loaded_after_its_expiry_is_refused_and_already_over() {
        let secret = token::generate();
        let book = book_with(&record(Some(now_ms() - 1)), &secret);
        assert!(matches!(
            book.authenticate(&secret),
            Err(Refusal::Expired { .. })
        ));
        let mut state = book.read().values().next().unwrap().state.subscribe();
        tokio::time::timeout(
            Duration::from_secs(1),
            state.wait_for(|state| *state == TokenState::Expired),
        )
        .await
        .expect("its streams end at once")
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_without_an_expiry_never_expires_and_bad_secrets_are_told_apart() {
        let secret = token::generate();
        let book = book_with(&record(None), &secret);
        tokio::time::advance(Duration::from_secs(100 * 365 * 24 * 3600)).await;
        let (_, state) = book.authenticate(&secret).expect("still live");
        assert_eq!(*state.borrow(), TokenState::Live);
        assert_eq!(
            book.authenticate(&token::generate()).unwrap_err(),
            Refusal::Unknown
        );
        assert_eq!(book.authenticate("kbt_00").unwrap_err(), Refusal::Malformed);
    }
}
