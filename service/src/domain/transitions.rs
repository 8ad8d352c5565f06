//! The transition rules of a task's status, as one pure function.
//!
//! Every status change anywhere in kanband goes through [`next_status`]: the store asks it
//! before writing, so the rules live in exactly one place and are tested here as a full
//! table of status x operation.

use super::{
    limits::BLOCK_LOOP_LIMIT,
    status::{BlockKind, Status},
};

/// Something an operator, the dispatcher or a holder asks of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Operator promotion from triage, todo or scheduled.
    Promote,
    /// Operator block of a task that is not running.
    Block(BlockKind),
    /// Operator unblock of a blocked task.
    Unblock,
    /// Park the task, optionally until a wake-up time. On a running task this revokes the claim.
    Schedule,
    /// The wake-up time of a scheduled task has come.
    Wake,
    /// Remove the task from the board. On a running task this revokes the claim.
    Archive,
    /// Change the assignee.
    Assign,
    /// Change descriptive fields.
    Edit,
    /// A parent link is added to this task (as the child); `parents_finished` in the context is
    /// computed with the new parent included.
    AddParent,
    /// The last unfinished parent of this task finished or was unlinked.
    ParentsFinished,
    /// A finished parent of this task became unfinished again (a done parent was reopened for
    /// review); `parents_finished` in the context is computed after the change.
    ParentUnfinished,
    /// Send a finished task back to review.
    ReopenReview,
    /// The dispatcher grants a claim (ready in the work lane, review in the review lane).
    Claim,
    /// The holder completed the task.
    Complete,
    /// The holder blocked the task.
    HolderBlock(BlockKind),
    /// The holder asks for review.
    RequestReview,
    /// The reviewing holder asks for changes.
    RequestChanges,
    /// The claim ends without an outcome: release, expiry, operator reclaim, or a failure that
    /// does not give up.
    Requeue,
    /// The claim ends in a failure that blocks the task (a breaker tripped, or a terminal
    /// provider error).
    Fail,
}

impl Op {
    /// Whether the rule for this operation can depend on [`Context::parents_finished`]. For
    /// the others a caller may leave it unknown (the store then skips looking the parents up,
    /// which a holder's complete used to do on every call).
    pub fn reads_parents(self) -> bool {
        match self {
            Op::Promote
            | Op::Unblock
            | Op::Wake
            | Op::AddParent
            | Op::ParentUnfinished
            | Op::Claim
            | Op::Requeue
            | Op::RequestChanges => true,
            Op::Block(_)
            | Op::Schedule
            | Op::Archive
            | Op::Assign
            | Op::Edit
            | Op::ParentsFinished
            | Op::ReopenReview
            | Op::Complete
            | Op::HolderBlock(_)
            | Op::RequestReview
            | Op::Fail => false,
        }
    }
}

/// What the rules need to know about a task beyond its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// Every parent is done or archived.
    pub parents_finished: bool,
    /// The current claim came from the review lane.
    pub review_lane: bool,
    /// Kind of the task's previous block, if any.
    pub last_block_kind: Option<BlockKind>,
    /// Same-kind blocks in a row so far.
    pub block_recurrences: u32,
}

/// Why an operation is refused in the current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The task's status when refused.
    pub status: Status,
    /// What would have to be true, for the message.
    pub hint: &'static str,
}

/// The outcome of a block: where the task goes and how the recurrence count moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockOutcome {
    /// New status: todo for a dependency, triage for a loop, else blocked.
    pub status: Status,
    /// New count of same-kind blocks in a row.
    pub recurrences: u32,
    /// The same kind recurred twice in a row (event `block_loop_detected`).
    pub loop_detected: bool,
}

/// Applies the block rule: `dependency` goes to todo; otherwise the same kind as the previous
/// block counts a recurrence, and at [`BLOCK_LOOP_LIMIT`] the task goes to triage.
pub fn block_outcome(kind: BlockKind, ctx: &Context) -> BlockOutcome {
    if kind == BlockKind::Dependency {
        return BlockOutcome {
            status: Status::Todo,
            recurrences: 0,
            loop_detected: false,
        };
    }
    let recurrences = if ctx.last_block_kind == Some(kind) {
        ctx.block_recurrences + 1
    } else {
        0
    };
    let loop_detected = recurrences >= BLOCK_LOOP_LIMIT;
    BlockOutcome {
        status: if loop_detected {
            Status::Triage
        } else {
            Status::Blocked
        },
        recurrences,
        loop_detected,
    }
}

/// The status a task moves to when `op` is applied in `status`, or why it is refused.
pub fn next_status(status: Status, op: Op, ctx: &Context) -> Result<Status, Refused> {
    use Status::*;
    let refuse = |hint| Err(Refused { status, hint });
    let ready_or_todo = if ctx.parents_finished { Ready } else { Todo };
    let requeued = if ctx.review_lane {
        Review
    } else {
        ready_or_todo
    };
    match op {
        Op::Promote => match status {
            Triage | Scheduled => Ok(ready_or_todo),
            Todo if ctx.parents_finished => Ok(Ready),
            Todo => refuse("its parents must finish first"),
            Blocked => refuse("a blocked task is unblocked, not promoted"),
            _ => refuse("only triage, todo and scheduled tasks can be promoted"),
        },
        Op::Block(kind) => match status {
            Triage | Todo | Scheduled | Ready | Review => Ok(block_outcome(kind, ctx).status),
            Running => refuse("a running task is blocked by its holder, or reclaimed first"),
            _ => refuse("only triage, todo, scheduled, ready and review tasks can be blocked"),
        },
        Op::Unblock => match status {
            Blocked => Ok(ready_or_todo),
            _ => refuse("only blocked tasks can be unblocked"),
        },
        Op::Schedule => match status {
            Triage | Todo | Scheduled | Ready | Running | Blocked => Ok(Scheduled),
            _ => refuse("review, done and archived tasks cannot be scheduled"),
        },
        Op::Wake => match status {
            Scheduled => Ok(ready_or_todo),
            _ => refuse("only scheduled tasks wake up"),
        },
        Op::Archive => match status {
            Archived => refuse("the task is already archived"),
            _ => Ok(Archived),
        },
        Op::Assign => match status {
            Running => refuse("a running task keeps its assignee; reclaim it first"),
            Done | Archived => refuse("finished tasks cannot be reassigned"),
            _ => Ok(status),
        },
        Op::Edit => match status {
            Archived => refuse("archived tasks cannot be changed"),
            _ => Ok(status),
        },
        Op::AddParent => match status {
            Ready if !ctx.parents_finished => Ok(Todo),
            Done | Archived => refuse("finished tasks cannot get new parents"),
            _ => Ok(status),
        },
        Op::ParentsFinished => match status {
            Todo => Ok(Ready),
            _ => Ok(status),
        },
        Op::ParentUnfinished => match status {
            Ready if !ctx.parents_finished => Ok(Todo),
            _ => Ok(status),
        },
        Op::ReopenReview => match status {
            Done => Ok(Review),
            _ => refuse("only done tasks can be reopened for review"),
        },
        Op::Claim => match status {
            Ready if ctx.parents_finished => Ok(Running),
            Review => Ok(Running),
            Ready => refuse("its parents must finish first"),
            _ => refuse("only ready and review tasks can be claimed"),
        },
        Op::Complete | Op::HolderBlock(_) | Op::RequestReview | Op::Requeue | Op::Fail => {
            match status {
                Running => Ok(match op {
                    Op::Complete => Done,
                    Op::HolderBlock(kind) => block_outcome(kind, ctx).status,
                    Op::RequestReview => Review,
                    Op::Fail => Blocked,
                    _ => requeued,
                }),
                _ => refuse("only a running task has a holder"),
            }
        }
        Op::RequestChanges => match status {
            Running if ctx.review_lane => Ok(ready_or_todo),
            Running => refuse("only a review-lane claim can request changes"),
            _ => refuse("only a running task has a holder"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const KIND: BlockKind = BlockKind::Transient;

    /// Every operation, once.
    const OPS: &[Op] = &[
        Op::Promote,
        Op::Block(KIND),
        Op::Unblock,
        Op::Schedule,
        Op::Wake,
        Op::Archive,
        Op::Assign,
        Op::Edit,
        Op::AddParent,
        Op::ParentsFinished,
        Op::ParentUnfinished,
        Op::ReopenReview,
        Op::Claim,
        Op::Complete,
        Op::HolderBlock(KIND),
        Op::RequestReview,
        Op::RequestChanges,
        Op::Requeue,
        Op::Fail,
    ];

    /// The expected result of every (status, op) pair with finished parents, a work-lane claim
    /// and no earlier block; `None` means refused.
    fn expected(status: Status, op: Op) -> Option<Status> {
        let allowed: &[(Status, Status)] = match op {
            Op::Promote => &[(Triage, Ready), (Todo, Ready), (Scheduled, Ready)],
            Op::Block(_) => &[
                (Triage, Blocked),
                (Todo, Blocked),
                (Scheduled, Blocked),
                (Ready, Blocked),
                (Review, Blocked),
            ],
            Op::Unblock => &[(Blocked, Ready)],
            Op::Schedule => &[
                (Triage, Scheduled),
                (Todo, Scheduled),
                (Scheduled, Scheduled),
                (Ready, Scheduled),
                (Running, Scheduled),
                (Blocked, Scheduled),
            ],
            Op::Wake => &[(Scheduled, Ready)],
            Op::Archive => &[
                (Triage, Archived),
                (Todo, Archived),
                (Scheduled, Archived),
                (Ready, Archived),
                (Running, Archived),
                (Blocked, Archived),
                (Review, Archived),
                (Done, Archived),
            ],
            Op::Assign => &[
                (Triage, Triage),
                (Todo, Todo),
                (Scheduled, Scheduled),
                (Ready, Ready),
                (Blocked, Blocked),
                (Review, Review),
            ],
            Op::Edit => &[
                (Triage, Triage),
                (Todo, Todo),
                (Scheduled, Scheduled),
                (Ready, Ready),
                (Running, Running),
                (Blocked, Blocked),
                (Review, Review),
                (Done, Done),
            ],
            Op::AddParent => &[
                (Triage, Triage),
                (Todo, Todo),
                (Scheduled, Scheduled),
                (Ready, Ready),
                (Running, Running),
                (Blocked, Blocked),
                (Review, Review),
            ],
            Op::ParentsFinished => &[
                (Triage, Triage),
                (Todo, Ready),
                (Scheduled, Scheduled),
                (Ready, Ready),
                (Running, Running),
                (Blocked, Blocked),
                (Review, Review),
                (Done, Done),
                (Archived, Archived),
            ],
            Op::ParentUnfinished => &[
                (Triage, Triage),
                (Todo, Todo),
                (Scheduled, Scheduled),
                (Ready, Ready),
                (Running, Running),
                (Blocked, Blocked),
                (Review, Review),
                (Done, Done),
                (Archived, Archived),
            ],
            Op::ReopenReview => &[(Done, Review)],
            Op::Claim => &[(Ready, Running), (Review, Running)],
            Op::Complete => &[(Running, Done)],
            Op::HolderBlock(_) => &[(Running, Blocked)],
            Op::RequestReview => &[(Running, Review)],
            Op::RequestChanges => &[],
            Op::Requeue => &[(Running, Ready)],
            Op::Fail => &[(Running, Blocked)],
        };
        allowed
            .iter()
            .find(|(from, _)| *from == status)
            .map(|(_, to)| *to)
    }

    #[test]
    fn every_status_and_operation_pair() {
        let ctx = Context {
            parents_finished: true,
            ..Context::default()
        };
        for &status in Status::ALL {
            for &op in OPS {
                let got = next_status(status, op, &ctx);
                match expected(status, op) {
                    Some(to) => assert_eq!(got, Ok(to), "{status} x {op:?}"),
                    None => {
                        let refused = got.expect_err(&format!("{status} x {op:?} must be refused"));
                        assert_eq!(refused.status, status, "refusal names the current status");
                        assert!(!refused.hint.is_empty());
                    }
                }
            }
        }
    }

    /// Every context the parents' state could be combined with: either lane, no earlier block
    /// and a same-kind block before.
    fn contexts(parents_finished: bool) -> Vec<Context> {
        let mut all = Vec::new();
        for review_lane in [false, true] {
            for last_block_kind in [None, Some(KIND)] {
                all.push(Context {
                    parents_finished,
                    review_lane,
                    last_block_kind,
                    block_recurrences: 1,
                });
            }
        }
        all
    }

    #[test]
    fn only_the_operations_said_to_read_the_parents_depend_on_them() {
        for &op in OPS {
            let mut depends = false;
            for &status in Status::ALL {
                for (finished, unfinished) in contexts(true).iter().zip(&contexts(false)) {
                    let (a, b) = (
                        next_status(status, op, finished),
                        next_status(status, op, unfinished),
                    );
                    if a != b {
                        depends = true;
                        assert!(
                            op.reads_parents(),
                            "{op:?} in {status}: {a:?} with the parents finished, {b:?} without"
                        );
                    }
                }
            }
            assert_eq!(
                depends,
                op.reads_parents(),
                "{op:?} is said to read the parents but never depends on them"
            );
        }
    }

    #[test]
    fn unfinished_parents_hold_tasks_in_todo() {
        let ctx = Context {
            parents_finished: false,
            ..Context::default()
        };
        assert_eq!(next_status(Triage, Op::Promote, &ctx), Ok(Todo));
        assert_eq!(next_status(Scheduled, Op::Promote, &ctx), Ok(Todo));
        assert!(next_status(Todo, Op::Promote, &ctx).is_err());
        assert_eq!(next_status(Blocked, Op::Unblock, &ctx), Ok(Todo));
        assert_eq!(next_status(Scheduled, Op::Wake, &ctx), Ok(Todo));
        assert_eq!(next_status(Ready, Op::AddParent, &ctx), Ok(Todo));
        assert_eq!(next_status(Ready, Op::ParentUnfinished, &ctx), Ok(Todo));
        assert!(next_status(Ready, Op::Claim, &ctx).is_err());
    }

    #[test]
    fn a_refusal_the_caller_can_act_on_says_what_to_do() {
        let waiting = Context::default();
        let hint = |status, op, ctx: &Context| next_status(status, op, ctx).unwrap_err().hint;
        assert_eq!(
            hint(Todo, Op::Promote, &waiting),
            "its parents must finish first"
        );
        assert_eq!(
            hint(Ready, Op::Claim, &waiting),
            "its parents must finish first"
        );
        assert_eq!(
            hint(Blocked, Op::Promote, &waiting),
            "a blocked task is unblocked, not promoted"
        );
        assert_eq!(
            hint(Running, Op::Block(KIND), &waiting),
            "a running task is blocked by its holder, or reclaimed first"
        );
        assert_eq!(
            hint(Running, Op::RequestChanges, &waiting),
            "only a review-lane claim can request changes"
        );
    }

    #[test]
    fn review_lane_claims_requeue_to_review_and_may_request_changes() {
        let ctx = Context {
            parents_finished: true,
            review_lane: true,
            ..Context::default()
        };
        assert_eq!(next_status(Running, Op::Requeue, &ctx), Ok(Review));
        assert_eq!(next_status(Running, Op::RequestChanges, &ctx), Ok(Ready));
        assert_eq!(next_status(Running, Op::Complete, &ctx), Ok(Done));
        let work = Context {
            review_lane: false,
            ..ctx
        };
        assert!(next_status(Running, Op::RequestChanges, &work).is_err());
    }

    #[test]
    fn dependency_blocks_go_to_todo_and_reset_recurrences() {
        let ctx = Context {
            last_block_kind: Some(BlockKind::Dependency),
            block_recurrences: 1,
            ..Context::default()
        };
        let outcome = block_outcome(BlockKind::Dependency, &ctx);
        assert_eq!(
            outcome,
            BlockOutcome {
                status: Todo,
                recurrences: 0,
                loop_detected: false
            }
        );
        assert_eq!(
            next_status(Ready, Op::Block(BlockKind::Dependency), &ctx),
            Ok(Todo)
        );
    }

    #[test]
    fn the_same_kind_twice_in_a_row_is_a_loop_at_the_second_recurrence() {
        let mut ctx = Context::default();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let outcome = block_outcome(BlockKind::NeedsInput, &ctx);
            statuses.push((outcome.status, outcome.recurrences, outcome.loop_detected));
            ctx.last_block_kind = Some(BlockKind::NeedsInput);
            ctx.block_recurrences = outcome.recurrences;
        }
        assert_eq!(
            statuses,
            [(Blocked, 0, false), (Blocked, 1, false), (Triage, 2, true)]
        );
    }

    #[test]
    fn a_different_kind_starts_counting_again() {
        let ctx = Context {
            last_block_kind: Some(BlockKind::NeedsInput),
            block_recurrences: 1,
            ..Context::default()
        };
        let outcome = block_outcome(BlockKind::Transient, &ctx);
        assert_eq!(
            outcome,
            BlockOutcome {
                status: Blocked,
                recurrences: 0,
                loop_detected: false
            }
        );
    }
}
