//! Who caused an event: the authenticated identity, and the caller's free-form note.
//!
//! A request's `actor` (or `created_by`, `author`, `uploaded_by`) field is whatever the client
//! wrote, so it is kept only as a note ("on behalf of"); the identity recorded beside it is the
//! one the auth layer authenticated, which a client cannot choose. What kanband does on its own
//! (a lease running out, a revocation, a requeue at start-up, a retry) is recorded as
//! [`Author::SYSTEM`].

/// The author of one change, as recorded in `events.identity`, `events.identity_role` and
/// `events.actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The authenticated identity's name (a token's name, `admin` for the socket's owner,
    /// `worker:<task>` for a claim's worker, `kanband` for kanband itself).
    pub identity: String,
    /// Its role (`admin`, `operator`, `supervisor`, `worker`, `reader`, or [`Author::SYSTEM_ROLE`]).
    pub role: String,
    /// The free-form note the caller gave (the request's `actor`), or what kanband names as the
    /// actor of a change it makes (a session id, `kanband`).
    pub note: String,
}

impl Author {
    /// The name kanband records for the changes it makes itself.
    pub const SYSTEM: &str = "kanband";
    /// The role recorded for kanband itself and for imports.
    pub const SYSTEM_ROLE: &str = "system";
    /// What an event written before identities were recorded reads as, name and role.
    pub const UNKNOWN: &str = "unknown";

    /// `identity` with `role`, noting `note`.
    pub fn new(
        identity: impl Into<String>,
        role: impl Into<String>,
        note: impl Into<String>,
    ) -> Self {
        Author {
            identity: identity.into(),
            role: role.into(),
            note: note.into(),
        }
    }

    /// kanband itself, with the note `kanband` (the actor it has always recorded).
    pub fn system() -> Self {
        Author::system_noting(Author::SYSTEM)
    }

    /// kanband itself, noting `note` (such as the session whose claim it granted).
    pub fn system_noting(note: impl Into<String>) -> Self {
        Author::new(Author::SYSTEM, Author::SYSTEM_ROLE, note)
    }

    /// The same identity with another note: a change one call causes in passing (a child
    /// promoted by its parent's completion) keeps the caller but names its own actor.
    pub fn noting(&self, note: impl Into<String>) -> Self {
        Author::new(self.identity.clone(), self.role.clone(), note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kanband_records_itself_with_the_system_role() {
        let me = Author::system();
        assert_eq!(
            (me.identity.as_str(), me.role.as_str()),
            ("kanband", "system")
        );
        assert_eq!(me.note, "kanband");
        let granted = Author::system_noting("ses_1");
        assert_eq!(
            (granted.identity.as_str(), granted.note.as_str()),
            ("kanband", "ses_1")
        );
    }

    #[test]
    fn another_note_keeps_the_identity() {
        let caller = Author::new("gw-laptop", "supervisor", "alice");
        let child = caller.noting("ses_1");
        assert_eq!(
            (child.identity.as_str(), child.role.as_str()),
            ("gw-laptop", "supervisor")
        );
        assert_eq!(child.note, "ses_1");
    }
}
