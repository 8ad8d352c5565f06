//! The task status, block kinds, workspace kinds and run outcomes as plain Rust enums, with the
//! names the database stores.

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database and shown in messages.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a stored name.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Shared with [`super::events`], whose event kinds are stored names too.
pub(super) use named_enum;

named_enum! {
    /// Where a task is in its life.
    Status {
        /// Needs a person: asked for at creation, or a block loop was detected.
        Triage => "triage",
        /// Waiting for parents.
        Todo => "todo",
        /// Parked, optionally until a wake-up time.
        Scheduled => "scheduled",
        /// Claimable.
        Ready => "ready",
        /// Held by a claim.
        Running => "running",
        /// Stopped until unblocked.
        Blocked => "blocked",
        /// Waiting for the review lane.
        Review => "review",
        /// Finished.
        Done => "done",
        /// Removed from the board, kept for history.
        Archived => "archived",
    }
}

impl Status {
    /// Whether a parent in this status no longer holds its children back.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Done | Status::Archived)
    }
}

named_enum! {
    /// Why a task was blocked.
    BlockKind {
        /// Waits for other tasks; the task goes to `todo`.
        Dependency => "dependency",
        /// Waits for a person's answer.
        NeedsInput => "needs_input",
        /// No supervisor has what it needs.
        Capability => "capability",
        /// A passing problem.
        Transient => "transient",
        /// No reason given.
        None => "none",
    }
}

named_enum! {
    /// The kind of working directory a supervisor prepares.
    WorkspaceKind {
        /// A fresh directory.
        Scratch => "scratch",
        /// A git worktree.
        Worktree => "worktree",
        /// An existing directory.
        Dir => "dir",
    }
}

named_enum! {
    /// How a run (one claim of a task) ended.
    RunOutcome {
        /// The holder completed the task.
        Completed => "completed",
        /// The holder blocked the task.
        Blocked => "blocked",
        /// The worker died without an outcome.
        Crashed => "crashed",
        /// The run exceeded the task's maximum runtime.
        TimedOut => "timed_out",
        /// The supervisor could not start the worker.
        SpawnFailed => "spawn_failed",
        /// The breaker tripped on this run.
        GaveUp => "gave_up",
        /// An operator took the task back.
        Reclaimed => "reclaimed",
        /// The lease ran out.
        Expired => "expired",
        /// The provider rate-limited the worker (exit 75).
        RateLimited => "rate_limited",
        /// The holder asked for review.
        ReviewRequested => "review_requested",
        /// The reviewer asked for changes.
        ChangesRequested => "changes_requested",
        /// An operator scheduled the running task.
        Scheduled => "scheduled",
        /// The holder gave the task back.
        Released => "released",
        /// The claim was revoked (archive, board reset).
        Revoked => "revoked",
    }
}
