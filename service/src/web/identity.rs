//! Who is signed in to the board, and what they may do there.
//!
//! This is the seam between the board and whatever issues identities: the board asks
//! [`crate::web::sessions::Sessions::who`] "who holds this cookie" and gets an [`Identity`]
//! with a [`Role`]; a role that may not act sees the board without any action. Today the only
//! issuer is the one-time sign-in link kanband prints for the local admin; named, revocable
//! tokens plug in at [`crate::web::sessions::Sessions::sign_in`].

use std::fmt;

/// What an identity may do (the roles of kanband's authentication model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Every task and board action; no service administration.
    Operator,
    /// A supervisor bound to a machine: leases only, so on the board it only reads.
    Supervisor,
    /// A worker bound to one claim: on the board it only reads.
    Worker,
    /// Reads the board; no actions.
    Reader,
}

impl Role {
    /// Whether the board offers (and accepts) task actions: create, comment, assign, move, ...
    pub fn can_act(self) -> bool {
        matches!(self, Role::Admin | Role::Operator)
    }

    /// The role's name as the API and the page show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Worker => "worker",
            Role::Reader => "reader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in person or program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name recorded as the actor of what it does (at most 128 bytes).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Identity {
    /// The local administrator: whoever can read kanband's ready line.
    pub fn local_admin() -> Identity {
        Identity {
            name: "admin".to_owned(),
            role: Role::Admin,
        }
    }
}
