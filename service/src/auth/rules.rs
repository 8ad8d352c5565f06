//! The checks finer than the [`policy`](super::policy) table, made by the handlers with facts
//! only they have: a supervisor opens sessions only for the machine id (and profiles) its token
//! was issued for, and uses only sessions it opened and their claims; a worker acts only on its
//! own claim, comments only on its own task and creates only children of it. An admin may do
//! all of it. Each refusal is PERMISSION_DENIED naming what the caller is bound to.

use super::identity::{Binding, Identity, Role};
use crate::error::{Error, Result};

fn denied(message: String) -> Error {
    Error::PermissionDenied(message)
}

/// Opening a session for `machine_id` serving `profiles`.
pub fn may_open(caller: &Identity, machine_id: &str, profiles: &[String]) -> Result<()> {
    let Binding::Machine {
        machine_id: bound,
        profiles: allowed,
    } = &caller.binding
    else {
        return Ok(());
    };
    if bound != machine_id {
        return Err(denied(format!(
            "the supervisor token {:?} is for machine {bound:?}, not {machine_id:?}",
            caller.name
        )));
    }
    may_serve(caller, allowed, profiles)
}

/// Serving (or being notified for) `profiles` under a token that allows `allowed` (empty: any).
fn may_serve(caller: &Identity, allowed: &[String], profiles: &[String]) -> Result<()> {
    if let Some(other) = profiles
        .iter()
        .find(|p| !allowed.is_empty() && !allowed.contains(p))
    {
        return Err(denied(format!(
            "the supervisor token {:?} may serve only {}, not {other:?}",
            caller.name,
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// Notifications for `profiles`.
pub fn may_be_notified(caller: &Identity, profiles: &[String]) -> Result<()> {
    match &caller.binding {
        Binding::Machine {
            profiles: allowed, ..
        } => may_serve(caller, allowed, profiles),
        _ => Ok(()),
    }
}

/// Using (keeping alive, acquiring on, closing) the session `session_id`, opened by `owner`
/// (`None`: not open, which the operation itself answers).
pub fn may_use_session(caller: &Identity, session_id: &str, owner: Option<&str>) -> Result<()> {
    match owner {
        Some(owner) if caller.role != Role::Admin && owner != caller.key => Err(denied(format!(
            "session {session_id} was opened by another identity; {:?} may use only its own \
             sessions",
            caller.name
        ))),
        _ => Ok(()),
    }
}

/// A holder verb on the claim `token`, whose session was opened by `owner` (`None` if the
/// claim is not live: its fencing answers).
pub fn may_hold(caller: &Identity, token: &str, owner: Option<&str>) -> Result<()> {
    if let Some((own, task_id)) = caller.claim() {
        if own != token {
            return Err(denied(format!(
                "the worker of {task_id} may act only on its own claim"
            )));
        }
        return Ok(());
    }
    match owner {
        Some(owner) if caller.role != Role::Admin && owner != caller.key => Err(denied(format!(
            "the claim belongs to another identity's session; {:?} may act only on the claims \
             of its own sessions",
            caller.name
        ))),
        _ => Ok(()),
    }
}

/// Commenting on `task_id`.
pub fn may_comment(caller: &Identity, task_id: &str) -> Result<()> {
    own_task(caller, task_id, "comment on")
}

/// Attaching a file to `task_id`.
pub fn may_attach(caller: &Identity, task_id: &str) -> Result<()> {
    own_task(caller, task_id, "attach files to")
}

fn own_task(caller: &Identity, task_id: &str, what: &str) -> Result<()> {
    match caller.claim() {
        Some((_, own)) if own != task_id => Err(denied(format!(
            "the worker of {own} may {what} only its own task, not {task_id}"
        ))),
        _ => Ok(()),
    }
}

/// Creating a task with `parents`.
pub fn may_create(caller: &Identity, parents: &[String]) -> Result<()> {
    match caller.claim() {
        Some((_, own)) if !parents.iter().any(|p| p == own) => Err(denied(format!(
            "the worker of {own} may create only child tasks of it (with {own} among the parents)"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor(profiles: &[&str]) -> Identity {
        Identity {
            name: "gw".into(),
            role: Role::Supervisor,
            key: "k_1".into(),
            binding: Binding::Machine {
                machine_id: "m1".into(),
                profiles: profiles.iter().map(|p| (*p).to_owned()).collect(),
            },
        }
    }

    #[test]
    fn a_supervisor_is_bound_to_its_machine_profiles_and_sessions() {
        let gw = supervisor(&["coder"]);
        assert!(may_open(&gw, "m1", &["coder".into()]).is_ok());
        assert!(may_open(&gw, "m2", &["coder".into()]).is_err());
        assert!(may_open(&gw, "m1", &["other".into()]).is_err());
        assert!(may_open(&supervisor(&[]), "m1", &["any".into()]).is_ok());
        assert!(may_be_notified(&gw, &["other".into()]).is_err());
        assert!(may_use_session(&gw, "s_1", Some("k_1")).is_ok());
        assert!(may_use_session(&gw, "s_1", Some("k_2")).is_err());
        assert!(may_use_session(&gw, "s_1", None).is_ok());
        assert!(may_use_session(&Identity::local_admin(), "s_1", Some("k_2")).is_ok());
        assert!(may_hold(&gw, "c_1", Some("k_1")).is_ok());
        assert!(may_hold(&gw, "c_1", Some("k_2")).is_err());
    }

    #[test]
    fn a_worker_is_bound_to_its_claim_and_task() {
        let worker = Identity::worker("c_1", "t_1");
        assert!(may_hold(&worker, "c_1", Some("anyone")).is_ok());
        assert!(may_hold(&worker, "c_2", None).is_err());
        assert!(may_comment(&worker, "t_1").is_ok());
        assert!(may_comment(&worker, "t_2").is_err());
        assert!(may_attach(&worker, "t_1").is_ok());
        assert!(may_attach(&worker, "t_2").is_err());
        assert!(may_create(&worker, &["t_1".into()]).is_ok());
        assert!(may_create(&worker, &[]).is_err());
        assert!(may_create(&worker, &["t_2".into()]).is_err());
        assert!(may_create(&Identity::local_admin(), &[]).is_ok());
    }
}
