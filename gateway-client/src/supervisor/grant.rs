//! What a grant becomes: the worker's working directory, its rendered command and its
//! environment (the names listed in [`WORKER_ENVIRONMENT`](super::WORKER_ENVIRONMENT)).

use kanband_proto::pb;

use super::{SupervisorConfig, child, child::Job, preset, template};

/// The job for `grant`, or why its workspace cannot be prepared (for the spawn_failed report).
pub(super) fn job(config: &SupervisorConfig, grant: &pb::Grant) -> Result<Job, String> {
    let task = grant.task.clone().unwrap_or_default();
    let cwd = child::workspace_for(&config.workspaces_root, &task)
        .map_err(|err| format!("cannot prepare the workspace: {err}"))?;
    let workspace = cwd.display().to_string();
    let epoch = grant.epoch.to_string();
    let (script, launcher_env, unset) = match &config.preset {
        Some(hermes) => (
            hermes.script(&grant.profile, &task),
            hermes.env(&grant.profile, &task, &cwd),
            preset::HERMES_UNSET,
        ),
        None => {
            let script = template::render(&config.command, |name| match name {
                "task" => Some(task.id.as_str()),
                "profile" => Some(grant.profile.as_str()),
                "board" => Some(task.board.as_str()),
                "run" => Some(grant.run_id.as_str()),
                "workspace" => Some(workspace.as_str()),
                "epoch" => Some(epoch.as_str()),
                _ => None,
            });
            (script, Vec::new(), &[][..])
        }
    };
    let options = task.worker_options.clone().unwrap_or_default();
    let mut env = vec![
        ("KANBAN_ADDR", config.addr.clone()),
        ("KANBAN_CA", path_text(config.tls.ca.as_deref())),
        ("KANBAN_CERT", path_text(config.tls.cert.as_deref())),
        ("KANBAN_KEY", path_text(config.tls.key.as_deref())),
        ("KANBAN_BOARD", task.board.clone()),
        ("KANBAN_TASK", task.id.clone()),
        ("KANBAN_RUN_ID", grant.run_id.clone()),
        ("KANBAN_CLAIM_TOKEN", grant.claim_token.clone()),
        ("KANBAN_EPOCH", epoch),
        ("KANBAN_LEASE_TTL_MS", grant.ttl_ms.to_string()),
        ("KANBAN_WORKSPACE", workspace.clone()),
        ("KANBAN_PROFILE", grant.profile.clone()),
        (
            "KANBAN_REVIEW",
            if grant.review { "1" } else { "0" }.to_owned(),
        ),
        ("KANBAN_SKILLS", options.skills.join(",")),
        ("KANBAN_MODEL", options.model),
        ("KANBAN_PROVIDER", options.provider),
        ("KANBAN_REASONING_EFFORT", options.reasoning_effort),
        ("HERMES_KANBAN_TASK", task.id.clone()),
        ("HERMES_KANBAN_RUN_ID", grant.run_id.clone()),
        ("HERMES_KANBAN_BOARD", task.board.clone()),
        ("HERMES_KANBAN_WORKSPACE", workspace),
    ];
    env.extend(launcher_env);
    Ok(Job {
        token: grant.claim_token.clone(),
        script,
        cwd,
        env,
        unset,
    })
}

/// A path as an environment value; none is the empty string (which clients read as unset).
fn path_text(path: Option<&std::path::Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::WORKER_ENVIRONMENT;

    #[test]
    fn a_grant_becomes_a_job() {
        let root = tempfile::tempdir().unwrap();
        let config = SupervisorConfig::new(
            "unix:/run/k.sock",
            vec!["coder".into()],
            root.path(),
            "run {task} as {profile} on {board} ({run}, epoch {epoch}) in {workspace}",
        );
        let grant = pb::Grant {
            task: Some(pb::Task {
                id: "t_00000000000000aa".into(),
                board: "ops".into(),
                ..Default::default()
            }),
            run_id: "r_00000000000000bb".into(),
            claim_token: "c_secret".into(),
            epoch: 4,
            ttl_ms: 60_000,
            profile: "coder".into(),
            ..Default::default()
        };
        let job = job(&config, &grant).unwrap();
        let dir = root.path().join("t_00000000000000aa");
        assert_eq!(job.cwd, dir);
        assert_eq!(
            job.script,
            format!(
                "run t_00000000000000aa as coder on ops (r_00000000000000bb, epoch 4) in {}",
                template::quote(&dir.display().to_string())
            )
        );
        let env: std::collections::HashMap<_, _> = job.env.iter().cloned().collect();
        assert_eq!(env["KANBAN_CLAIM_TOKEN"], "c_secret");
        assert_eq!(env["KANBAN_EPOCH"], "4");
        assert_eq!(env["HERMES_KANBAN_BOARD"], "ops");
        assert_eq!(env["KANBAN_REVIEW"], "0");
        assert_eq!(env["KANBAN_LEASE_TTL_MS"], "60000");
        // What is set is what --help documents, and the other way round.
        let mut set: Vec<_> = job.env.iter().map(|(k, _)| *k).collect();
        let mut documented: Vec<_> = WORKER_ENVIRONMENT.iter().map(|(k, _)| *k).collect();
        set.sort();
        documented.sort();
        assert_eq!(set, documented);
    }
}
