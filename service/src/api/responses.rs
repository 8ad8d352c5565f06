//! Response building: the store's model (and the lease machinery's values) as `pb` messages.

use kanband_proto::pb::{self, keep_alive_response::Event as KeepAliveEvent};

use crate::{
    coordinator::Push,
    domain::{BlockKind, RunOutcome, Status, WorkspaceKind, lease::RevokeCause},
    store::model::{
        Attachment, Board, Comment, Event, Grant, Mode, Run, SessionRecord, Subscription, Task,
        TaskDetail, Workspace,
    },
};

/// A timestamp from Unix milliseconds.
pub(crate) fn timestamp(ms: i64) -> kanband_proto::Timestamp {
    kanband_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Encodes the position to continue after as a page token.
pub(crate) fn next_page_token(next: Option<i64>) -> String {
    next.map(|n| format!("p{n}")).unwrap_or_default()
}

fn status_to_pb(status: Status) -> pb::TaskStatus {
    match status {
        Status::Triage => pb::TaskStatus::Triage,
        Status::Todo => pb::TaskStatus::Todo,
        Status::Scheduled => pb::TaskStatus::Scheduled,
        Status::Ready => pb::TaskStatus::Ready,
        Status::Running => pb::TaskStatus::Running,
        Status::Blocked => pb::TaskStatus::Blocked,
        Status::Review => pb::TaskStatus::Review,
        Status::Done => pb::TaskStatus::Done,
        Status::Archived => pb::TaskStatus::Archived,
    }
}

fn block_kind_to_pb(kind: Option<BlockKind>) -> pb::BlockKind {
    match kind {
        None => pb::BlockKind::Unspecified,
        Some(BlockKind::Dependency) => pb::BlockKind::Dependency,
        Some(BlockKind::NeedsInput) => pb::BlockKind::NeedsInput,
        Some(BlockKind::Capability) => pb::BlockKind::Capability,
        Some(BlockKind::Transient) => pb::BlockKind::Transient,
        Some(BlockKind::None) => pb::BlockKind::None,
    }
}

fn outcome_to_pb(outcome: Option<RunOutcome>) -> pb::RunOutcome {
    use pb::RunOutcome as P;
    match outcome {
        None => P::Unspecified,
        Some(RunOutcome::Completed) => P::Completed,
        Some(RunOutcome::Blocked) => P::Blocked,
        Some(RunOutcome::Crashed) => P::Crashed,
        Some(RunOutcome::TimedOut) => P::TimedOut,
        Some(RunOutcome::SpawnFailed) => P::SpawnFailed,
        Some(RunOutcome::GaveUp) => P::GaveUp,
        Some(RunOutcome::Reclaimed) => P::Reclaimed,
        Some(RunOutcome::Expired) => P::Expired,
        Some(RunOutcome::RateLimited) => P::RateLimited,
        Some(RunOutcome::ReviewRequested) => P::ReviewRequested,
        Some(RunOutcome::ChangesRequested) => P::ChangesRequested,
        Some(RunOutcome::Scheduled) => P::Scheduled,
        Some(RunOutcome::Released) => P::Released,
        Some(RunOutcome::Revoked) => P::Revoked,
    }
}

fn workspace_to_pb(ws: Workspace) -> pb::Workspace {
    let kind = match ws.kind {
        WorkspaceKind::Scratch => pb::WorkspaceKind::Scratch,
        WorkspaceKind::Worktree => pb::WorkspaceKind::Worktree,
        WorkspaceKind::Dir => pb::WorkspaceKind::Dir,
    };
    pb::Workspace {
        kind: kind.into(),
        path: ws.path,
        branch: ws.branch,
    }
}

fn cause_to_pb(cause: RevokeCause) -> pb::RevokeCause {
    match cause {
        RevokeCause::Archived => pb::RevokeCause::Archived,
        RevokeCause::Reclaimed => pb::RevokeCause::Reclaimed,
        RevokeCause::Scheduled => pb::RevokeCause::Scheduled,
        RevokeCause::BoardReset => pb::RevokeCause::BoardReset,
        RevokeCause::MaxRuntime => pb::RevokeCause::MaxRuntime,
        RevokeCause::StaleProgress => pb::RevokeCause::StaleProgress,
    }
}

/// A session.
pub(crate) fn session_to_pb(s: SessionRecord) -> pb::Session {
    pb::Session {
        id: s.id,
        machine_id: s.machine_id,
        hostname: s.hostname,
        profiles: s.profiles,
        capabilities: s.capabilities,
        slots: s.slots,
        ttl_ms: s.ttl_ms,
        review_lane: s.review_lane,
    }
}

/// A grant.
pub(crate) fn grant_to_pb(g: Grant) -> pb::Grant {
    pb::Grant {
        task: Some(g.task.into()),
        run_id: g.claim.run_id,
        claim_token: g.claim.token,
        epoch: g.claim.epoch,
        ttl_ms: g.ttl_ms,
        review: g.claim.review,
        profile: g.claim.profile,
    }
}

/// What the server pushes on a keep-alive stream, as the stream's event.
pub(crate) fn push_to_pb(push: Push) -> KeepAliveEvent {
    match push {
        Push::Revoked {
            token,
            task_id,
            cause,
        } => KeepAliveEvent::Revoked(pb::Revoked {
            claim_token: token,
            task_id,
            cause: cause_to_pb(cause).into(),
        }),
        Push::CancelRequested {
            token,
            task_id,
            grace,
        } => KeepAliveEvent::CancelRequested(pb::CancelRequested {
            claim_token: token,
            task_id,
            reason: format!(
                "an operator reclaimed the task; stop within {} s or the claim is revoked",
                grace.as_secs()
            ),
        }),
        Push::Drain => KeepAliveEvent::Drain(pb::Drain {}),
    }
}

/// A notification subscription.
pub(crate) fn subscription_to_pb(s: Subscription) -> pb::Subscription {
    pb::Subscription {
        id: s.id,
        task_id: s.task_id,
        platform: s.platform,
        chat_id: s.chat_id,
        thread_id: s.thread_id,
        owner_profile: s.owner_profile,
        mode: match s.mode {
            Mode::Every => pb::DeliveryMode::Every,
            Mode::Final => pb::DeliveryMode::Final,
        }
        .into(),
        cursor: s.cursor as u64,
        created_at: Some(timestamp(s.created_at)),
    }
}

impl From<Board> for pb::Board {
    fn from(b: Board) -> Self {
        pb::Board {
            slug: b.slug,
            display_name: b.display_name,
            metadata: b.metadata.into_iter().collect(),
            default_assignee: b.default_assignee,
            max_retries: b.max_retries,
            max_running: b.max_running,
            archived: b.archived,
            created_at: Some(timestamp(b.created_at)),
            updated_at: Some(timestamp(b.updated_at)),
        }
    }
}

impl From<Task> for pb::Task {
    fn from(t: Task) -> Self {
        pb::Task {
            id: t.id,
            board: t.board,
            title: t.title,
            body: t.body,
            assignee: t.assignee,
            status: status_to_pb(t.status).into(),
            priority: t.priority,
            created_by: t.created_by,
            created_at: Some(timestamp(t.created_at)),
            started_at: t.started_at.map(timestamp),
            completed_at: t.completed_at.map(timestamp),
            updated_at: Some(timestamp(t.updated_at)),
            tenant: t.tenant,
            idempotency_key: t.idempotency_key.unwrap_or_default(),
            result: t.result,
            summary: t.summary,
            workspace: Some(workspace_to_pb(t.workspace)),
            max_runtime_seconds: t.max_runtime_seconds,
            max_retries: t.max_retries,
            required_capabilities: t.required_capabilities,
            target_machine: t.target_machine,
            worker_options: Some(pb::WorkerOptions {
                skills: t.worker_options.skills,
                model: t.worker_options.model,
                provider: t.worker_options.provider,
                reasoning_effort: t.worker_options.reasoning_effort,
            }),
            consecutive_failures: t.consecutive_failures,
            last_failure_error: t.last_failure_error,
            block_kind: block_kind_to_pb(t.block_kind).into(),
            block_reason: t.block_reason,
            block_recurrences: t.block_recurrences,
            current_run_id: t.current_run_id.unwrap_or_default(),
            epoch: t.epoch,
            scheduled_until: t.scheduled_until.map(timestamp),
            cooldown_until: t.cooldown_until.map(timestamp),
            protocol_violations: t.protocol_violations,
            outcomeless_attempts: t.outcomeless_attempts,
        }
    }
}

impl From<Attachment> for pb::Attachment {
    fn from(a: Attachment) -> Self {
        pb::Attachment {
            id: a.id,
            task_id: a.task_id,
            name: a.name,
            media_type: a.media_type,
            size: a.size,
            sha256: a.sha256,
            uploaded_by: a.uploaded_by,
            created_at: Some(timestamp(a.created_at)),
        }
    }
}

impl From<Comment> for pb::Comment {
    fn from(c: Comment) -> Self {
        pb::Comment {
            id: c.id as u64,
            task_id: c.task_id,
            author: c.author,
            body: c.body,
            created_at: Some(timestamp(c.created_at)),
        }
    }
}

impl From<Run> for pb::Run {
    fn from(r: Run) -> Self {
        pb::Run {
            id: r.id,
            task_id: r.task_id,
            epoch: r.epoch,
            session_id: r.session_id,
            profile: r.profile,
            machine_id: r.machine_id,
            review: r.review,
            started_at: Some(timestamp(r.started_at)),
            ended_at: r.ended_at.map(timestamp),
            outcome: outcome_to_pb(r.outcome).into(),
            summary: r.summary,
            error: r.error,
            exit_code: r.exit_code,
            last_heartbeat_at: r.last_heartbeat_at.map(timestamp),
            last_heartbeat_note: r.last_heartbeat_note,
        }
    }
}

impl From<Event> for pb::Event {
    fn from(e: Event) -> Self {
        pb::Event {
            id: e.id as u64,
            board: e.board,
            task_id: e.task_id,
            kind: e.kind,
            actor: e.actor,
            details: e.details.into_iter().collect(),
            created_at: Some(timestamp(e.created_at)),
            identity: e.identity,
            identity_role: e.identity_role,
        }
    }
}

impl From<TaskDetail> for pb::TaskDetail {
    fn from(d: TaskDetail) -> Self {
        pb::TaskDetail {
            task: Some(d.task.into()),
            parents: d.parents,
            children: d.children,
            comments: d.comments.into_iter().map(Into::into).collect(),
            runs: d.runs.into_iter().map(Into::into).collect(),
            recent_events: d.recent_events.into_iter().map(Into::into).collect(),
            imported: d.imported.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_milliseconds() {
        let ts = timestamp(1_700_000_000_123);
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_000_000));
    }
}
