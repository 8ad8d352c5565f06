//! Plain data the store reads and writes. The gRPC layer converts these to and from `pb`.

use std::collections::BTreeMap;

use crate::domain::{
    BlockKind, RunOutcome, Status, WorkspaceKind,
    events::EventKind,
    lease::{ClaimState, HolderCall},
};

/// A board and its dispatch settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// Unique slug.
    pub slug: String,
    /// Human-readable name.
    pub display_name: String,
    /// Free-form labels.
    pub metadata: BTreeMap<String, String>,
    /// Profile for unassigned tasks; empty for none.
    pub default_assignee: String,
    /// Failure limit; 0 for the service default.
    pub max_retries: u32,
    /// Running cap; 0 for none.
    pub max_running: u32,
    /// Archived boards take no new tasks.
    pub archived: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Fields of a new board, already validated.
#[derive(Debug, Clone, Default)]
pub struct NewBoard {
    /// Slug.
    pub slug: String,
    /// Display name (the slug when empty).
    pub display_name: String,
    /// Labels.
    pub metadata: BTreeMap<String, String>,
    /// Default assignee.
    pub default_assignee: String,
    /// Failure limit.
    pub max_retries: u32,
    /// Running cap.
    pub max_running: u32,
}

/// Changes to a board, already validated; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct BoardChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New metadata, replacing the old.
    pub metadata: Option<BTreeMap<String, String>>,
    /// New default assignee.
    pub default_assignee: Option<String>,
    /// New failure limit.
    pub max_retries: Option<u32>,
    /// New running cap.
    pub max_running: Option<u32>,
}

/// Where a supervisor runs a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Kind of directory.
    pub kind: WorkspaceKind,
    /// Directory for worktree and dir.
    pub path: String,
    /// Branch for worktree.
    pub branch: String,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace {
            kind: WorkspaceKind::Scratch,
            path: String::new(),
            branch: String::new(),
        }
    }
}

/// Options handed to the supervisor uninterpreted. Stored as a JSON object of these four keys
/// (a key left out reads as empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WorkerOptions {
    /// Skills.
    pub skills: Vec<String>,
    /// Model.
    pub model: String,
    /// Provider.
    pub provider: String,
    /// Reasoning effort.
    pub reasoning_effort: String,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the fields mirror kanban.v1.Task, which documents each one
pub struct Task {
    pub id: String,
    pub board: String,
    pub title: String,
    pub body: String,
    pub assignee: String,
    pub status: Status,
    pub priority: i32,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub tenant: String,
    pub idempotency_key: Option<String>,
    pub result: String,
    pub summary: String,
    pub workspace: Workspace,
    pub max_runtime_seconds: u32,
    pub max_retries: u32,
    pub required_capabilities: Vec<String>,
    pub target_machine: String,
    pub worker_options: WorkerOptions,
    pub consecutive_failures: u32,
    pub last_failure_error: String,
    pub block_kind: Option<BlockKind>,
    pub block_reason: String,
    pub block_recurrences: u32,
    pub current_run_id: Option<String>,
    pub epoch: u64,
    pub scheduled_until: Option<i64>,
    pub cooldown_until: Option<i64>,
    pub protocol_violations: u32,
    pub outcomeless_attempts: u32,
}

/// Fields of a new task, already validated.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)] // the fields mirror kanban.v1.CreateTaskRequest
pub struct NewTask {
    pub board: String,
    pub title: String,
    pub body: String,
    pub assignee: String,
    pub priority: i32,
    pub created_by: String,
    pub tenant: String,
    pub idempotency_key: Option<String>,
    pub parents: Vec<String>,
    /// Triage or blocked to start there; `None` lets the parents decide.
    pub initial_status: Option<Status>,
    pub workspace: Workspace,
    pub max_runtime_seconds: u32,
    pub max_retries: u32,
    pub required_capabilities: Vec<String>,
    pub target_machine: String,
    pub worker_options: WorkerOptions,
}

/// Changes to a task's descriptive fields, already validated; `None` keeps the value.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)] // the fields mirror kanban.v1.UpdateTaskRequest
pub struct TaskChanges {
    pub title: Option<String>,
    pub body: Option<String>,
    pub priority: Option<i32>,
    pub tenant: Option<String>,
    pub workspace: Option<Workspace>,
    pub max_runtime_seconds: Option<u32>,
    pub max_retries: Option<u32>,
    pub required_capabilities: Option<Vec<String>>,
    pub target_machine: Option<String>,
    pub worker_options: Option<WorkerOptions>,
}

impl TaskChanges {
    /// Names of the fields that are set, for the `updated` event.
    pub fn field_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut note = |set: bool, name| {
            if set {
                names.push(name);
            }
        };
        note(self.title.is_some(), "title");
        note(self.body.is_some(), "body");
        note(self.priority.is_some(), "priority");
        note(self.tenant.is_some(), "tenant");
        note(self.workspace.is_some(), "workspace");
        note(self.max_runtime_seconds.is_some(), "max_runtime_seconds");
        note(self.max_retries.is_some(), "max_retries");
        note(
            self.required_capabilities.is_some(),
            "required_capabilities",
        );
        note(self.target_machine.is_some(), "target_machine");
        note(self.worker_options.is_some(), "worker_options");
        names
    }
}

/// A comment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors kanban.v1.Comment
pub struct Comment {
    pub id: i64,
    pub task_id: String,
    pub author: String,
    pub body: String,
    pub created_at: i64,
}

/// A file attached to a task; its bytes are the blob named by `sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors kanban.v1.Attachment
pub struct Attachment {
    pub id: String,
    pub task_id: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub uploaded_by: String,
    pub created_at: i64,
}

/// An upload's header, already validated.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// The task.
    pub task_id: String,
    /// File name (only a name).
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// A worker's claim token on the task, fenced; `None` for an operator.
    pub claim_token: Option<String>,
    /// Who uploads.
    pub uploaded_by: String,
}

/// One attempt at a task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors kanban.v1.Run
pub struct Run {
    pub id: String,
    pub task_id: String,
    pub epoch: u64,
    pub session_id: String,
    pub profile: String,
    pub machine_id: String,
    pub review: bool,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<RunOutcome>,
    pub summary: String,
    pub error: String,
    pub exit_code: Option<i32>,
    pub last_heartbeat_at: Option<i64>,
    pub last_heartbeat_note: String,
}

/// One entry of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors kanban.v1.Event
pub struct Event {
    pub id: i64,
    pub board: String,
    pub task_id: String,
    pub kind: String,
    pub actor: String,
    pub details: BTreeMap<String, String>,
    pub created_at: i64,
    pub identity: String,
    pub identity_role: String,
}

/// A task with everything around it.
#[derive(Debug, Clone)]
pub struct TaskDetail {
    /// The task.
    pub task: Task,
    /// Parent ids.
    pub parents: Vec<String>,
    /// Child ids.
    pub children: Vec<String>,
    /// Comments, oldest first.
    pub comments: Vec<Comment>,
    /// Runs, oldest first.
    pub runs: Vec<Run>,
    /// Most recent events, oldest first.
    pub recent_events: Vec<Event>,
    /// The source's record of a task `kanband import` brought in (JSON); none for others.
    pub imported: Option<String>,
}

/// Filters and paging of a task listing.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Board slug.
    pub board: String,
    /// Statuses; empty means all but archived.
    pub statuses: Vec<Status>,
    /// Assignee, if filtered.
    pub assignee: Option<String>,
    /// Tenant, if filtered.
    pub tenant: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Continue after this row (from a page token).
    pub after: Option<i64>,
}

/// Filters of an event listing.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Board, if filtered.
    pub board: Option<String>,
    /// Task, if filtered.
    pub task_id: Option<String>,
    /// Only ids greater than this.
    pub after_id: i64,
    /// Page size.
    pub limit: u32,
}

/// Filters of a watch: like [`EventFilter`] plus kinds and the task's current assignee.
#[derive(Debug, Clone, Default)]
pub struct WatchFilter {
    /// Board, if filtered.
    pub board: Option<String>,
    /// Task, if filtered.
    pub task_id: Option<String>,
    /// Kinds; empty means all.
    pub kinds: Vec<String>,
    /// Current assignee of the event's task, if filtered.
    pub assignee: Option<String>,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `s_` id.
    pub id: String,
    /// Machine id.
    pub machine_id: String,
    /// Host name.
    pub hostname: String,
    /// Profiles it runs.
    pub profiles: Vec<String>,
    /// Capabilities, sorted.
    pub capabilities: Vec<String>,
    /// Slots.
    pub slots: u32,
    /// Lease time.
    pub ttl_ms: u32,
    /// Takes review tasks.
    pub review_lane: bool,
    /// The key of the identity that opened it (see `auth::Identity::key`): only it, or an
    /// admin, may keep, use or close the session.
    pub owner: String,
}

/// A claim as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// Opaque token.
    pub token: String,
    /// Task id.
    pub task_id: String,
    /// Board of the task.
    pub board: String,
    /// Fencing epoch.
    pub epoch: u64,
    /// Run id.
    pub run_id: String,
    /// Holding session.
    pub session_id: String,
    /// Profile it runs as.
    pub profile: String,
    /// Granted from the review lane.
    pub review: bool,
    /// Live, revoking or ended.
    pub state: ClaimState,
    /// For a `scheduled` revocation: the wake-up time to apply.
    pub revoke_until: Option<i64>,
    /// While an operator's cancel request is pending: when its grace ends (Unix ms).
    pub cancel_until: Option<i64>,
    /// The holder call that ended it, if its holder ended it.
    pub ended_by: Option<HolderCall>,
}

/// The answer to a holder call that ends a claim.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The task as it is now.
    pub task: Task,
    /// The call is a retry of the one that ended the claim: nothing new was recorded.
    pub already_recorded: bool,
}

/// A granted claim.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The task, now running.
    pub task: Task,
    /// The claim.
    pub claim: ClaimRecord,
    /// Lease time.
    pub ttl_ms: u32,
    /// How long the task had been unchanged (ready, or in review) when it was granted: the
    /// ready -> granted latency, in ms of the wall clock.
    pub waited_ms: i64,
}

/// Which events a notification subscription wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every terminal event.
    Every,
    /// Only the task's end; removed once that is acknowledged.
    Final,
}

impl Mode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Every => "every",
            Mode::Final => "final",
        }
    }

    /// The event kinds it delivers.
    pub fn kinds(self) -> &'static [EventKind] {
        match self {
            Mode::Every => EventKind::TERMINAL,
            Mode::Final => EventKind::FINAL,
        }
    }
}

/// A notification subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors kanban.v1.Subscription
pub struct Subscription {
    pub id: String,
    pub task_id: String,
    pub platform: String,
    pub chat_id: String,
    pub thread_id: String,
    pub owner_profile: String,
    pub mode: Mode,
    pub cursor: i64,
    pub created_at: i64,
}

/// A bearer token as stored: everything but its secret, of which only the hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public `k_` id, for lists and revocation.
    pub id: String,
    /// Recorded as the actor of what its holder does.
    pub name: String,
    /// What it may do.
    pub role: crate::auth::Role,
    /// Supervisor tokens: the machine id they serve; empty otherwise.
    pub machine_id: String,
    /// Supervisor tokens: the profiles they may serve; empty means any.
    pub profiles: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; `None` unless it was revoked.
    pub revoked_at: Option<i64>,
    /// Unix ms from which it authenticates nothing; `None`: it works until revoked.
    pub expires_at: Option<i64>,
}
