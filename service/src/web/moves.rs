//! Dragging a card from one column to another: which task operation that move means. Pure,
//! so it is tested here; the operation itself then goes through the same rules as the API,
//! which may still refuse it (a running task cannot be blocked, say).

use kanband_proto::pb::{BlockKind, TaskStatus};

/// The operation a move performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOp {
    /// `PromoteTask` (triage, todo or scheduled to ready).
    Promote,
    /// `UnblockTask` (blocked to ready or todo).
    Unblock,
    /// `BlockTask` with this kind (`dependency` sends a task to todo).
    Block(BlockKind),
    /// `ScheduleTask` with no wake-up time (parked until someone promotes it).
    Schedule,
    /// `ReopenReview` (done to review).
    ReopenReview,
    /// `ReclaimTask` (running back to ready once the holder stops).
    Reclaim,
    /// `ArchiveTask`.
    Archive,
}

/// The operation moving a `from` card to the `to` column performs, or why no operation does.
pub fn plan(from: TaskStatus, to: TaskStatus) -> Result<MoveOp, &'static str> {
    use TaskStatus::*;
    if from == to {
        return Err("the task is already in that column");
    }
    match to {
        Ready => match from {
            Blocked => Ok(MoveOp::Unblock),
            Running => Ok(MoveOp::Reclaim),
            Triage | Todo | Scheduled => Ok(MoveOp::Promote),
            _ => Err("only triage, todo, scheduled, blocked and running tasks can be made ready"),
        },
        Blocked => Ok(MoveOp::Block(BlockKind::None)),
        Todo => Ok(MoveOp::Block(BlockKind::Dependency)),
        Scheduled => Ok(MoveOp::Schedule),
        Review => match from {
            Done => Ok(MoveOp::ReopenReview),
            _ => Err(
                "only a done task can be sent back to review; a running task's holder asks for review",
            ),
        },
        Archived => Ok(MoveOp::Archive),
        Running => Err("a task starts running when a supervisor claims it"),
        Done => Err("only the worker holding a task's claim can complete it"),
        Triage => Err("a task enters triage when it is created there or a block loop is detected"),
        Unspecified => Err("to: not a status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn moves_map_to_the_operations_the_rules_allow() {
        assert_eq!(plan(Ready, Blocked), Ok(MoveOp::Block(BlockKind::None)));
        assert_eq!(plan(Blocked, Ready), Ok(MoveOp::Unblock));
        assert_eq!(plan(Triage, Ready), Ok(MoveOp::Promote));
        assert_eq!(plan(Running, Ready), Ok(MoveOp::Reclaim));
        assert_eq!(plan(Done, Review), Ok(MoveOp::ReopenReview));
        assert_eq!(plan(Ready, Todo), Ok(MoveOp::Block(BlockKind::Dependency)));
        assert_eq!(plan(Ready, Archived), Ok(MoveOp::Archive));
        assert_eq!(plan(Todo, Scheduled), Ok(MoveOp::Schedule));
        assert!(plan(Ready, Done).unwrap_err().contains("worker"));
        assert!(plan(Ready, Running).is_err());
        assert!(plan(Ready, Ready).is_err());
        assert!(plan(Done, Ready).is_err());
    }
}
