//! What committed writes may have made claimable since the dispatcher last looked, so that it
//! runs a pass only when a waiting session could use it.
//!
//! Most writes may change anything a grant depends on (a claim ending frees a slot and the
//! caps, a task moving, a board or session changing), and a new waiter needs a pass of its own;
//! those say [`Claimable::Anything`]. A create says only the profile its new task is for, so a
//! stream of creates for a profile no waiting session runs costs no pass at all.

use std::collections::HashSet;

use crate::store::effect::Claimable;

/// Everything claimable that changed since the dispatcher last took it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Something any session might claim changed.
    anything: bool,
    /// Profiles whose tasks became claimable.
    profiles: HashSet<String>,
}

impl Changes {
    /// Adds what a write may have made claimable.
    pub fn add(&mut self, claimable: Claimable) {
        match claimable {
            Claimable::Anything => {
                self.anything = true;
                self.profiles.clear();
            }
            Claimable::Profile(_) if self.anything => {}
            Claimable::Profile(profile) => {
                self.profiles.insert(profile);
            }
        }
    }

    /// Whether a session running `profiles` could be granted something it could not before.
    pub fn useful_to(&self, profiles: &[String]) -> bool {
        self.anything || profiles.iter().any(|p| self.profiles.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn nothing_changed_is_useful_to_nobody() {
        assert!(!Changes::default().useful_to(&profiles(&["coder"])));
    }

    #[test]
    fn a_profile_is_useful_only_to_sessions_running_it() {
        let mut changes = Changes::default();
        changes.add(Claimable::Profile("writer".into()));
        assert!(!changes.useful_to(&profiles(&["coder"])));
        assert!(changes.useful_to(&profiles(&["coder", "writer"])));
        assert!(!changes.useful_to(&[]));
    }

    #[test]
    fn anything_is_useful_to_every_session_whatever_came_before_or_after() {
        for order in [
            [Claimable::Anything, Claimable::Profile("writer".into())],
            [Claimable::Profile("writer".into()), Claimable::Anything],
        ] {
            let mut changes = Changes::default();
            for claimable in order {
                changes.add(claimable);
            }
            assert!(changes.useful_to(&profiles(&["coder"])));
            assert!(changes.useful_to(&[]));
        }
    }
}
