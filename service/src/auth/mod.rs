//! Who may do what: identities and roles ([`identity`]), bearer tokens stored as hashes
//! ([`token`], [`book`]), the table of which role may call each RPC ([`policy`]), and the layer
//! that authenticates every call and enforces that table ([`layer`]). Finer checks (a
//! supervisor's own machine and sessions, a worker's own task) are made by the handlers with
//! the [`Identity`] the layer leaves in the request's extensions ([`caller`]).

pub mod book;
pub mod identity;
pub mod layer;
pub mod policy;
pub mod rules;
pub mod token;

pub use book::{ADMIN_TOKEN_FILE, NewToken, Refusal, TokenBook, TokenState};
pub use identity::{Binding, Identity, Role};
pub use layer::AuthLayer;

/// The caller of `request`: the identity the layer authenticated. A call made in process (the
/// web board calls the services directly, after its own sign-in check) carries the identity
/// the board put there, else it is the local admin.
pub fn caller<T>(request: &tonic::Request<T>) -> Identity {
    request
        .extensions()
        .get::<Identity>()
        .cloned()
        .unwrap_or_else(Identity::local_admin)
}
