//! The kinds of event the service records, and which of them notifications deliver.
//!
//! Every change appends one event; its kind is stored as text (and streamed, and matched by
//! watch filters and subscriptions), so each name here is part of the interface: never rename
//! one. A claim that ends without an outcome from its holder records its run outcome as the
//! event kind ([`EventKind::ended`]).

use super::status::{RunOutcome, named_enum};

named_enum! {
    /// What happened, as recorded in `events.kind`.
    EventKind {
        /// A task was created.
        Created => "created",
        /// A task's descriptive fields changed.
        Updated => "updated",
        /// A task's assignee changed.
        Assigned => "assigned",
        /// A comment was added.
        Commented => "commented",
        /// A file was attached.
        Attached => "attached",
        /// An attachment was deleted.
        AttachmentDeleted => "attachment_deleted",
        /// A parent link was added.
        Linked => "linked",
        /// A parent link was removed.
        Unlinked => "unlinked",
        /// A ready task went back to todo for an unfinished new parent.
        Demoted => "demoted",
        /// An operator promoted a task, or its last parent finished.
        Promoted => "promoted",
        /// A task was blocked (by an operator or its holder).
        Blocked => "blocked",
        /// The same block kind recurred until the task went to triage.
        BlockLoopDetected => "block_loop_detected",
        /// A blocked task was unblocked.
        Unblocked => "unblocked",
        /// A task was parked in `scheduled`.
        Scheduled => "scheduled",
        /// A scheduled task's wake-up time came.
        Woke => "woke",
        /// A task was archived.
        Archived => "archived",
        /// A done task went back to review.
        ReviewReopened => "review_reopened",
        /// A claim was granted.
        Claimed => "claimed",
        /// The holder completed the task.
        Completed => "completed",
        /// The holder asked for review.
        ReviewRequested => "review_requested",
        /// The reviewer asked for changes.
        ChangesRequested => "changes_requested",
        /// A reclaimed task went back to ready once its revocation finished.
        Requeued => "requeued",
        /// A running claim was fenced (phase one of a revocation).
        Revoked => "revoked",
        /// An operator asked the holder to stop within a grace period.
        CancelRequested => "cancel_requested",
        /// A breaker tripped: the task is blocked until a person looks.
        GaveUp => "gave_up",
        /// A claim whose deadline passed while kanband was down got a fresh lease at start-up.
        LeaseRearmed => "lease_rearmed",
        /// A board was created.
        BoardCreated => "board_created",
        /// A board's settings changed.
        BoardUpdated => "board_updated",
        /// A board and its tasks were archived.
        BoardArchived => "board_archived",
        /// Every task of a board was deleted.
        BoardReset => "board_reset",
        /// A claim ended without an outcome: the worker crashed.
        Crashed => "crashed",
        /// A claim ended without an outcome: the run timed out.
        TimedOut => "timed_out",
        /// A claim ended without an outcome: the worker could not be started.
        SpawnFailed => "spawn_failed",
        /// A claim ended without an outcome: its lease ran out.
        Expired => "expired",
        /// A claim ended without an outcome: the provider rate-limited the worker.
        RateLimited => "rate_limited",
        /// A claim ended without an outcome: the holder gave it back.
        Released => "released",
        /// A run outcome with no event of its own (an operator reclaim records `requeued`).
        Reclaimed => "reclaimed",
        /// A task came in by `kanband import`: its id in the source and where it was read.
        Imported => "imported",
    }
}

impl EventKind {
    /// The terminal kinds a notification subscription in mode `every` receives.
    pub const TERMINAL: &[EventKind] = &[
        EventKind::Completed,
        EventKind::Blocked,
        EventKind::GaveUp,
        EventKind::Crashed,
        EventKind::TimedOut,
        EventKind::Archived,
        EventKind::Unblocked,
        EventKind::ReviewRequested,
        EventKind::ChangesRequested,
        EventKind::BlockLoopDetected,
    ];

    /// The kinds that end a task, which a subscription in mode `final` receives.
    pub const FINAL: &[EventKind] = &[EventKind::Completed, EventKind::GaveUp, EventKind::Archived];

    /// The event recorded when a claim ends with `outcome` (same name as the run outcome).
    pub fn ended(outcome: RunOutcome) -> EventKind {
        match outcome {
            RunOutcome::Completed => EventKind::Completed,
            RunOutcome::Blocked => EventKind::Blocked,
            RunOutcome::Crashed => EventKind::Crashed,
            RunOutcome::TimedOut => EventKind::TimedOut,
            RunOutcome::SpawnFailed => EventKind::SpawnFailed,
            RunOutcome::GaveUp => EventKind::GaveUp,
            RunOutcome::Reclaimed => EventKind::Reclaimed,
            RunOutcome::Expired => EventKind::Expired,
            RunOutcome::RateLimited => EventKind::RateLimited,
            RunOutcome::ReviewRequested => EventKind::ReviewRequested,
            RunOutcome::ChangesRequested => EventKind::ChangesRequested,
            RunOutcome::Scheduled => EventKind::Scheduled,
            RunOutcome::Released => EventKind::Released,
            RunOutcome::Revoked => EventKind::Revoked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_ending_records_its_run_outcome_by_name() {
        for &outcome in RunOutcome::ALL {
            assert_eq!(EventKind::ended(outcome).as_str(), outcome.as_str());
        }
    }

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
    }

    #[test]
    fn final_kinds_are_terminal() {
        for kind in EventKind::FINAL {
            assert!(EventKind::TERMINAL.contains(kind), "{kind}");
        }
    }
}
