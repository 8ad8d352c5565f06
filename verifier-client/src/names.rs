//! The one mapping between the `kanban.v1` enums and the lowercase names people type and read.
//!
//! The generated enums print as `TASK_STATUS_READY`; scripts and people say `ready`. Every
//! conversion in either direction goes through the tables here, so a status added to the
//! contract is added in one place.

use kanband_proto::pb::{BlockKind, RunOutcome, TaskStatus, WorkspaceKind};

/// Task statuses by name, in the order a task usually moves through them.
pub const STATUSES: [(&str, TaskStatus); 9] = [
    ("triage", TaskStatus::Triage),
    ("todo", TaskStatus::Todo),
    ("scheduled", TaskStatus::Scheduled),
    ("ready", TaskStatus::Ready),
    ("running", TaskStatus::Running),
    ("blocked", TaskStatus::Blocked),
    ("review", TaskStatus::Review),
    ("done", TaskStatus::Done),
    ("archived", TaskStatus::Archived),
];

/// Block kinds by name.
pub const BLOCK_KINDS: [(&str, BlockKind); 5] = [
    ("dependency", BlockKind::Dependency),
    ("needs_input", BlockKind::NeedsInput),
    ("capability", BlockKind::Capability),
    ("transient", BlockKind::Transient),
    ("none", BlockKind::None),
];

/// Run outcomes by name.
pub const RUN_OUTCOMES: [(&str, RunOutcome); 14] = [
    ("completed", RunOutcome::Completed),
    ("blocked", RunOutcome::Blocked),
    ("crashed", RunOutcome::Crashed),
    ("timed_out", RunOutcome::TimedOut),
    ("spawn_failed", RunOutcome::SpawnFailed),
    ("gave_up", RunOutcome::GaveUp),
    ("reclaimed", RunOutcome::Reclaimed),
    ("expired", RunOutcome::Expired),
    ("rate_limited", RunOutcome::RateLimited),
    ("review_requested", RunOutcome::ReviewRequested),
    ("changes_requested", RunOutcome::ChangesRequested),
    ("scheduled", RunOutcome::Scheduled),
    ("released", RunOutcome::Released),
    ("revoked", RunOutcome::Revoked),
];

/// Workspace kinds by name.
pub const WORKSPACE_KINDS: [(&str, WorkspaceKind); 3] = [
    ("scratch", WorkspaceKind::Scratch),
    ("worktree", WorkspaceKind::Worktree),
    ("dir", WorkspaceKind::Dir),
];

/// What an unset (zero) or unknown enum value prints as.
pub const UNSPECIFIED: &str = "unspecified";

/// The name of a raw enum value from a message, or [`UNSPECIFIED`].
fn name_of<E: Copy + Into<i32>>(table: &[(&'static str, E)], raw: i32) -> &'static str {
    table
        .iter()
        .find(|(_, value)| (*value).into() == raw)
        .map_or(UNSPECIFIED, |(name, _)| name)
}

/// Looks a typed name up, accepting any case and `-` for `_` (so `needs-input` works too).
fn parse<E: Copy>(table: &[(&'static str, E)], what: &str, input: &str) -> Result<E, String> {
    let wanted = input.trim().to_ascii_lowercase().replace('-', "_");
    table
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
            format!(
                "unknown {what} {input:?}; expected one of: {}",
                names.join(", ")
            )
        })
}

/// The lowercase name of a task status as carried in a message (`status` fields are `i32`).
pub fn status_name(raw: i32) -> &'static str {
    name_of(&STATUSES, raw)
}

/// Parses a status name such as `ready`; a clap value parser, so a bad name is a usage error.
pub fn parse_status(input: &str) -> Result<TaskStatus, String> {
    parse(&STATUSES, "status", input)
}

/// The lowercase name of a block kind.
pub fn block_kind_name(raw: i32) -> &'static str {
    name_of(&BLOCK_KINDS, raw)
}

/// Parses a block kind such as `needs_input`; a clap value parser.
pub fn parse_block_kind(input: &str) -> Result<BlockKind, String> {
    parse(&BLOCK_KINDS, "block kind", input)
}

/// The lowercase name of a run outcome; [`UNSPECIFIED`] while the run has not ended.
pub fn run_outcome_name(raw: i32) -> &'static str {
    name_of(&RUN_OUTCOMES, raw)
}

/// The lowercase name of a workspace kind.
pub fn workspace_kind_name(raw: i32) -> &'static str {
    name_of(&WORKSPACE_KINDS, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips() {
        for (name, status) in STATUSES {
            assert_eq!(parse_status(name), Ok(status));
            assert_eq!(status_name(status.into()), name);
            // The table agrees with the generated enum's own name.
            assert_eq!(
                status.as_str_name(),
                format!("TASK_STATUS_{}", name.to_ascii_uppercase())
            );
        }
        assert_eq!(status_name(0), UNSPECIFIED);
        assert_eq!(status_name(99), UNSPECIFIED);
    }

    #[test]
    fn names_are_forgiving_about_case_and_dashes() {
        assert_eq!(parse_status("DONE"), Ok(TaskStatus::Done));
        assert_eq!(parse_block_kind("needs-input"), Ok(BlockKind::NeedsInput));
        let err = parse_status("finished").unwrap_err();
        assert!(err.contains("ready"), "{err}");
    }

    #[test]
    fn tables_match_the_generated_names() {
        for (name, kind) in BLOCK_KINDS {
            assert_eq!(
                kind.as_str_name(),
                format!("BLOCK_KIND_{}", name.to_ascii_uppercase())
            );
        }
        for (name, outcome) in RUN_OUTCOMES {
            assert_eq!(
                outcome.as_str_name(),
                format!("RUN_OUTCOME_{}", name.to_ascii_uppercase())
            );
            assert_eq!(run_outcome_name(outcome.into()), name);
        }
        for (name, kind) in WORKSPACE_KINDS {
            assert_eq!(
                kind.as_str_name(),
                format!("WORKSPACE_KIND_{}", name.to_ascii_uppercase())
            );
            assert_eq!(workspace_kind_name(kind.into()), name);
        }
    }
}
