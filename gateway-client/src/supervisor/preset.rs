//! Built-in worker launchers for the platforms kanband-gateway replaces the dispatcher of, and
//! the start-up check that a worker program exists at all.
//!
//! [`HermesPreset`] starts a worker exactly as Hermes Agent 0.19's own dispatcher does
//! (`hermes_cli.kanban_db._default_spawn`): `hermes -p <profile> --cli --accept-hooks
//! [--skills S]... [-m MODEL] [--provider P] chat -q "work kanban task <id>"`, with the
//! variables its workers read. What it leaves out on purpose: `HERMES_KANBAN_DB` and
//! `HERMES_KANBAN_WORKSPACES_ROOT` (a worker must reach the board through kanband, never the
//! file), `HERMES_KANBAN_CLAIM_LOCK` (the claim token replaces it) and the goal-mode variables
//! (kanband has no goal mode). Hermes 0.19 has no command-line flag for reasoning effort; the
//! task's value is in `KANBAN_REASONING_EFFORT`.

use std::path::{Path, PathBuf};

use kanband_proto::pb;

use super::template;

/// Variables a Hermes worker must not inherit from the supervisor.
pub(crate) const HERMES_UNSET: &[&str] = &[
    // An inherited TUI setting sends the quiet chat run into the interactive UI, which exits 0
    // without doing the task.
    "HERMES_TUI",
    // Direct database access is what kanband replaces.
    "HERMES_KANBAN_DB",
    "HERMES_KANBAN_WORKSPACES_ROOT",
];

/// How to start Hermes Agent workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HermesPreset {
    /// The `hermes` program: a name looked up on `PATH`, or a path.
    pub program: String,
    /// The Hermes root (the default profile's `HERMES_HOME`); a profile's home is
    /// `<root>/profiles/<name>`. `None` leaves `HERMES_HOME` to `hermes -p` to resolve.
    pub home: Option<PathBuf>,
}

impl HermesPreset {
    /// `hermes` from `PATH`, homes resolved by Hermes itself.
    pub fn new() -> HermesPreset {
        HermesPreset {
            program: "hermes".into(),
            home: None,
        }
    }

    /// The shell script (for `sh -c`) that starts the worker of `task` as `profile`: the
    /// program `exec`ed with every argument quoted as one word.
    pub(crate) fn script(&self, profile: &str, task: &pb::Task) -> String {
        let options = task.worker_options.clone().unwrap_or_default();
        let mut argv: Vec<String> = vec![
            self.program.clone(),
            "-p".into(),
            profile.into(),
            "--cli".into(),
            "--accept-hooks".into(),
        ];
        for skill in options.skills.iter().filter(|s| !s.is_empty()) {
            argv.extend(["--skills".into(), skill.clone()]);
        }
        if !options.model.is_empty() {
            argv.extend(["-m".into(), options.model.clone()]);
        }
        if !options.provider.is_empty() {
            argv.extend(["--provider".into(), options.provider.clone()]);
        }
        argv.extend([
            "chat".into(),
            "-q".into(),
            format!("work kanban task {}", task.id),
        ]);
        let words: Vec<String> = argv.iter().map(|a| template::quote(a)).collect();
        format!("exec {}", words.join(" "))
    }

    /// The variables Hermes workers read, beyond those every worker gets.
    pub(crate) fn env(
        &self,
        profile: &str,
        task: &pb::Task,
        workspace: &Path,
    ) -> Vec<(&'static str, String)> {
        let mut env = vec![
            // The author the kanban tools record.
            ("HERMES_PROFILE", profile.to_owned()),
            // File tools and context files anchor on the task's workspace.
            ("TERMINAL_CWD", workspace.display().to_string()),
        ];
        if !task.tenant.is_empty() {
            env.push(("HERMES_TENANT", task.tenant.clone()));
        }
        if let Some(branch) = task
            .workspace
            .as_ref()
            .map(|w| w.branch.clone())
            .filter(|b| !b.is_empty())
        {
            env.push(("HERMES_KANBAN_BRANCH", branch));
        }
        if let Some(home) = self.profile_home(profile) {
            env.push(("HERMES_HOME", home.display().to_string()));
        }
        env
    }

    /// The profile's `HERMES_HOME`, when a root is configured and the profile exists under it.
    fn profile_home(&self, profile: &str) -> Option<PathBuf> {
        let root = self.home.as_ref()?;
        if profile == "default" {
            return Some(root.clone());
        }
        let dir = root.join("profiles").join(profile);
        dir.is_dir().then_some(dir)
    }
}

impl Default for HermesPreset {
    fn default() -> Self {
        HermesPreset::new()
    }
}

/// Words that start a shell command without naming a program to look for: keywords,
/// builtins, and wrappers whose program comes later.
const SHELL_WORDS: &[&str] = &[
    "!", "(", "{", ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue",
    "echo", "env", "eval", "exit", "export", "false", "fg", "for", "getopts", "hash", "if", "jobs",
    "kill", "local", "nice", "nohup", "printf", "pwd", "read", "readonly", "return", "set",
    "shift", "source", "test", "time", "times", "trap", "true", "type", "ulimit", "umask", "unset",
    "until", "wait", "while",
];

/// The program a command template starts, when its first word names one plainly (no quotes,
/// variables, placeholders or shell syntax); `exec` in front is looked through. `None` when the
/// template starts otherwise, in which case nothing can be checked before it runs.
pub fn template_program(template: &str) -> Option<&str> {
    let mut words = template.split_whitespace();
    let mut first = words.next()?;
    if first == "exec" {
        first = words.next()?;
    }
    let plain = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./+-@%".contains(c));
    let assignment = first.contains('=');
    (plain && !assignment && !SHELL_WORDS.contains(&first)).then_some(first)
}

/// Finds `program` as the shell would: a path (with a `/`) must be an executable file; a bare
/// name is looked up on `path` (the `PATH` value).
pub fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        let candidate = PathBuf::from(program);
        return is_executable(&candidate).then_some(candidate);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> pb::Task {
        pb::Task {
            id: "t_00000000000000aa".into(),
            tenant: "acme".into(),
            workspace: Some(pb::Workspace {
                branch: "wt/feature".into(),
                ..Default::default()
            }),
            worker_options: Some(pb::WorkerOptions {
                skills: vec!["translation".into(), String::new(), "it's".into()],
                model: "anthropic/claude-sonnet-4.6".into(),
                provider: "openrouter".into(),
                reasoning_effort: "high".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_command_is_hermes_own_dispatcher_argv() {
        let script = HermesPreset::new().script("alice", &task());
        assert_eq!(
            script,
            "exec hermes -p alice --cli --accept-hooks --skills translation --skills 'it'\\''s' \
             -m anthropic/claude-sonnet-4.6 --provider openrouter chat -q 'work kanban task \
             t_00000000000000aa'"
        );
        let bare = HermesPreset::new().script(
            "bob",
            &pb::Task {
                id: "t_1".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            bare,
            "exec hermes -p bob --cli --accept-hooks chat -q 'work kanban task t_1'"
        );
    }

    #[test]
    fn the_shell_runs_exactly_that_argv() {
        let preset = HermesPreset {
            program: "printf".into(),
            home: None,
        };
        let script = preset
            .script("a b", &task())
            .replacen("printf", "printf '%s\\n'", 1);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let words: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(words[..3], ["-p", "a b", "--cli"]);
        assert!(words.contains(&"it's".to_owned()));
        assert_eq!(words.last().unwrap(), "work kanban task t_00000000000000aa");
    }

    #[test]
    fn the_environment_has_what_hermes_workers_read() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("profiles/alice")).unwrap();
        let preset = HermesPreset {
            program: "hermes".into(),
            home: Some(root.path().to_owned()),
        };
        let env = preset.env("alice", &task(), Path::new("/w/t_1"));
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HERMES_PROFILE"), Some("alice"));
        assert_eq!(get("TERMINAL_CWD"), Some("/w/t_1"));
        assert_eq!(get("HERMES_TENANT"), Some("acme"));
        assert_eq!(get("HERMES_KANBAN_BRANCH"), Some("wt/feature"));
        let home = root.path().join("profiles/alice").display().to_string();
        assert_eq!(get("HERMES_HOME"), Some(home.as_str()));

        let default = preset.env("default", &pb::Task::default(), Path::new("/w"));
        let get = |k: &str| {
            default
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("HERMES_HOME"), Some(root.path().display().to_string()));
        assert_eq!(get("HERMES_TENANT"), None);
        assert_eq!(get("HERMES_KANBAN_BRANCH"), None);
        // A profile that does not exist under the root is left to `hermes -p` to report.
        let missing = preset.env("carol", &pb::Task::default(), Path::new("/w"));
        assert!(missing.iter().all(|(n, _)| *n != "HERMES_HOME"));
        assert!(
            HermesPreset::new()
                .env("alice", &task(), Path::new("/w"))
                .iter()
                .all(|(n, _)| *n != "HERMES_HOME")
        );
    }

    #[test]
    fn a_template_names_its_program_only_when_plain() {
        assert_eq!(template_program("./worker.sh {task}"), Some("./worker.sh"));
        assert_eq!(
            template_program("  exec hermes -p {profile}"),
            Some("hermes")
        );
        assert_eq!(
            template_program("/usr/bin/python3 -m w"),
            Some("/usr/bin/python3")
        );
        for opaque in [
            "",
            "exec",
            "$HOME/bin/w",
            "\"my worker\" {task}",
            "FOO=1 worker",
            "cd {workspace} && make",
            "{profile}-worker",
            "if true; then w; fi",
            "(w)",
            "exit 3",
            "trap 'exit 0' TERM; sleep 100",
        ] {
            assert_eq!(template_program(opaque), None, "{opaque:?}");
        }
    }

    #[test]
    fn programs_are_found_as_the_shell_would() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("w");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let plain = dir.path().join("not-exec");
        std::fs::write(&plain, "").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(find_program("w", Some(&path)), Some(exe.clone()));
        assert_eq!(find_program("not-exec", Some(&path)), None);
        assert_eq!(find_program("absent", Some(&path)), None);
        assert_eq!(find_program("w", None), None);
        assert_eq!(find_program(exe.to_str().unwrap(), None), Some(exe));
        assert_eq!(find_program(plain.to_str().unwrap(), Some(&path)), None);
        assert_eq!(find_program(dir.path().to_str().unwrap(), None), None);
    }
}
