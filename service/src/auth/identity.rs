//! Who is calling, and what their role lets them do.
//!
//! Every call is made as an [`Identity`]: a name (recorded as the actor of what it does), a
//! [`Role`], and what the credential is bound to: a supervisor token to one machine id (and
//! possibly a set of profiles), a worker to the one claim whose token it presented. The web
//! board signs people in as the same identities.

use std::fmt;

use crate::domain::Author;

/// What an identity may do. Which role may call each RPC is the table in
/// [`super::policy`]; the finer checks (a supervisor's own sessions, a worker's own task) are
/// made by the handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including storage limits, backups, board reset and token management.
    Admin,
    /// Boards and tasks, reads, dispatch preview; no tokens, no storage settings.
    Operator,
    /// A gateway on one machine: its own sessions, acquire, holder verbs on its own claims,
    /// notifications for the profiles its token allows.
    Supervisor,
    /// The process running one claim: holder verbs on that claim, reads, comments on its own
    /// task, child tasks of it.
    Worker,
    /// Reads, watch, stats.
    Reader,
}

impl Role {
    /// Every role, most privileged first.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::Supervisor,
        Role::Worker,
        Role::Reader,
    ];

    /// Whether the web board offers (and accepts) task actions: create, comment, assign, move.
    pub fn can_act(self) -> bool {
        matches!(self, Role::Admin | Role::Operator)
    }

    /// The role's name as the API, the CLI and the page show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Worker => "worker",
            Role::Reader => "reader",
        }
    }

    /// The role named `name` (as [`Role::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a credential is bound to, beyond its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// Nothing: the role alone decides.
    None,
    /// A supervisor token: sessions only for this machine id, and (if not empty) only these
    /// profiles.
    Machine {
        /// The machine id the token was issued for.
        machine_id: String,
        /// Profiles it may serve and be notified for; empty means any.
        profiles: Vec<String>,
    },
    /// A worker: the claim whose token it presented.
    Claim {
        /// The claim token.
        token: String,
        /// The claim's task.
        task_id: String,
    },
}

/// A caller: a token's holder, the local owner on the Unix socket, or a claim's worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name recorded as the actor of what it does (at most 128 bytes).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Who owns the sessions it opens: the token's id, `local` for the Unix socket's owner, or
    /// the claim token. A session is bound to its opener's key.
    pub key: String,
    /// What its credential is bound to.
    pub binding: Binding,
}

impl Identity {
    /// An identity bound to nothing but its role, keyed by its name.
    pub fn new(name: impl Into<String>, role: Role) -> Identity {
        let name = name.into();
        Identity {
            key: name.clone(),
            name,
            role,
            binding: Binding::None,
        }
    }

    /// The local administrator: kanband's own uid on the Unix socket, or whoever can read
    /// kanband's ready line (the board's sign-in link).
    pub fn local_admin() -> Identity {
        Identity {
            name: "admin".to_owned(),
            role: Role::Admin,
            key: "local".to_owned(),
            binding: Binding::None,
        }
    }

    /// The worker running the claim `token` on `task_id`.
    pub fn worker(token: &str, task_id: &str) -> Identity {
        Identity {
            name: format!("worker:{task_id}"),
            role: Role::Worker,
            key: token.to_owned(),
            binding: Binding::Claim {
                token: token.to_owned(),
                task_id: task_id.to_owned(),
            },
        }
    }

    /// What a change this identity makes is recorded as: its name and role, with the
    /// caller's free-form `note` (the request's `actor`) beside them, never instead.
    pub fn author(&self, note: impl Into<String>) -> Author {
        Author::new(self.name.clone(), self.role.as_str(), note)
    }

    /// The machine id a supervisor token is bound to.
    pub fn machine_id(&self) -> Option<&str> {
        match &self.binding {
            Binding::Machine { machine_id, .. } => Some(machine_id),
            _ => None,
        }
    }

    /// The claim a worker is bound to: (token, task id).
    pub fn claim(&self) -> Option<(&str, &str)> {
        match &self.binding {
            Binding::Claim { token, task_id } => Some((token, task_id)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_by_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(Role::Operator.can_act() && !Role::Reader.can_act());
    }

    #[test]
    fn an_author_is_the_identity_whatever_the_note_says() {
        let by = Identity::worker("clm_1", "t_1").author("admin");
        assert_eq!(
            (by.identity.as_str(), by.role.as_str()),
            ("worker:t_1", "worker")
        );
        assert_eq!(by.note, "admin");
    }
}
