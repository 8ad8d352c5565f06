//! Board sign-in: one-time sign-in tokens, or kanband's named bearer tokens, exchanged for a
//! session cookie, and the sessions behind those cookies, held in memory (a restart signs
//! everyone out). A session opened with a bearer token ends when the token is revoked or expires.
//!
//! The cookie holds only a random 128-bit session id (`HttpOnly`, `SameSite=Strict`, path
//! `/`); each session has its own random CSRF secret, which the page reads from `/api/me` and
//! sends back in the `x-kanband-csrf` header of every mutation. A cross-site page can neither
//! read that secret nor send the header without a CORS preflight, which kanband never allows.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::watch;

use crate::auth::{Identity, TokenState};

/// Name of the session cookie.
pub const COOKIE: &str = "kanband_session";

/// How long a sign-in link stays usable.
const SIGNIN_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a session lives without being used.
const IDLE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most sessions (and unused sign-in tokens) held at once; the least recently used go first.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in session as the board sees it.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Who it is.
    pub identity: Identity,
    /// The secret every mutation must carry in `x-kanband-csrf`.
    pub csrf: String,
}

#[derive(Debug)]
struct Entry {
    signed: Signed,
    seen: Instant,
    /// Leaves [`TokenState::Live`] when the bearer token the session was opened with is
    /// revoked or expires; `None` for a session opened with a one-time sign-in token.
    token: Option<watch::Receiver<TokenState>>,
}

impl Entry {
    fn live(&self) -> bool {
        self.seen.elapsed() < IDLE
            && self
                .token
                .as_ref()
                .is_none_or(|state| *state.borrow() == TokenState::Live)
    }
}

#[derive(Debug, Default)]
struct State {
    /// One-time sign-in tokens and what they sign in as.
    tokens: HashMap<String, (Identity, Instant)>,
    /// Session id -> session.
    sessions: HashMap<String, Entry>,
}

/// Sign-in tokens and live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    state: Mutex<State>,
}

/// 128 random bits as 32 hex digits.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("web sessions lock")
    }

    /// A new one-time sign-in token for `identity`.
    pub fn mint(&self, identity: Identity) -> String {
        let token = random_hex();
        let mut state = self.lock();
        let now = Instant::now();
        state
            .tokens
            .retain(|_, (_, minted)| now.duration_since(*minted) < SIGNIN_TTL);
        if state.tokens.len() >= MAX_SESSIONS
            && let Some(oldest) = state
                .tokens
                .iter()
                .min_by_key(|(_, (_, minted))| *minted)
                .map(|(t, _)| t.clone())
        {
            state.tokens.remove(&oldest);
        }
        state.tokens.insert(token.clone(), (identity, now));
        token
    }

    /// Exchanges a sign-in token (used up by this) for a new session; returns the session id
    /// for the cookie. `None` if the token is unknown, used or too old.
    pub fn sign_in(&self, token: &str) -> Option<(String, Signed)> {
        let mut state = self.lock();
        let key = state.tokens.keys().find(|t| same(t, token))?.clone();
        let (identity, minted) = state.tokens.remove(&key)?;
        if minted.elapsed() >= SIGNIN_TTL {
            return None;
        }
        Some(Self::open_in(&mut state, identity, None))
    }

    /// Opens a session for the holder of a bearer token, which lasts while the token's `state`
    /// is live; returns the session id for the cookie.
    pub fn open(&self, identity: Identity, token: watch::Receiver<TokenState>) -> (String, Signed) {
        Self::open_in(&mut self.lock(), identity, Some(token))
    }

    fn open_in(
        state: &mut State,
        identity: Identity,
        token: Option<watch::Receiver<TokenState>>,
    ) -> (String, Signed) {
        let now = Instant::now();
        state.sessions.retain(|_, entry| entry.live());
        if state.sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = state
                .sessions
                .iter()
                .min_by_key(|(_, e)| e.seen)
                .map(|(id, _)| id.clone())
        {
            state.sessions.remove(&oldest);
        }
        let id = random_hex();
        let signed = Signed {
            identity,
            csrf: random_hex(),
        };
        state.sessions.insert(
            id.clone(),
            Entry {
                signed: signed.clone(),
                seen: now,
                token,
            },
        );
        (id, signed)
    }

    /// Who holds the session cookie `id`: the one question the board asks about identity.
    pub fn who(&self, id: &str) -> Option<Signed> {
        let mut state = self.lock();
        let entry = state.sessions.get_mut(id)?;
        if !entry.live() {
            state.sessions.remove(id);
            return None;
        }
        entry.seen = Instant::now();
        Some(entry.signed.clone())
    }

    /// Ends a session.
    pub fn sign_out(&self, id: &str) {
        self.lock().sessions.remove(id);
    }

    /// Whether `given` is the CSRF secret of `signed` (compared in constant time).
    pub fn csrf_ok(signed: &Signed, given: &str) -> bool {
        same(&signed.csrf, given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn a_bearer_tokens_session_ends_when_the_token_is_revoked_or_expires() {
        for end in [TokenState::Revoked, TokenState::Expired] {
            let sessions = Sessions::default();
            let (token, state) = watch::channel(TokenState::Live);
            let (id, signed) = sessions.open(Identity::new("ops", Role::Reader), state);
            assert_eq!(sessions.who(&id).unwrap().csrf, signed.csrf);
            assert_eq!(sessions.who(&id).unwrap().identity.role, Role::Reader);
            token.send_replace(end);
            assert!(sessions.who(&id).is_none(), "{end:?}: signed out at once");
        }
    }

    #[test]
    fn a_token_signs_in_once() {
        let sessions = Sessions::default();
        let token = sessions.mint(Identity::local_admin());
        let (id, signed) = sessions.sign_in(&token).expect("first use signs in");
        assert_eq!(signed.identity.role, Role::Admin);
        assert!(sessions.sign_in(&token).is_none(), "a token works once");
        assert_eq!(sessions.who(&id).unwrap().csrf, signed.csrf);
        assert!(sessions.who("nope").is_none());
        assert!(Sessions::csrf_ok(&signed, &signed.csrf));
        assert!(!Sessions::csrf_ok(&signed, ""));
        sessions.sign_out(&id);
        assert!(sessions.who(&id).is_none());
    }

    #[test]
    fn secrets_are_random_and_distinct() {
        let a = random_hex();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex());
    }
}
