//! The mapping rules from a Hermes 0.19 board to kanband's model: pure functions from the rows
//! read to a [`BoardPlan`], the per-table counts and the problems found.
//!
//! - Times: Hermes stores Unix seconds, kanband milliseconds.
//! - Ids: Hermes task ids (`t_` + 8 hex digits) do not fit kanband's (`t_` + 16), so every
//!   task gets a new one, issued in Hermes's creation order; the Hermes id is in the task's
//!   source record, in the `imported` event of the task and in the report. Runs get new ids,
//!   and epochs 1, 2, ... per task in Hermes's run order. Events get new ids in Hermes's order.
//! - Every row kanband keeps is stored with its whole source row (`imported`), so no field is
//!   lost where kanband has no column for it (project, claim lock, worker pid, goal mode, run
//!   metadata, step keys, ...).
//! - A task Hermes shows running is imported ready, its run in flight ended as `reclaimed`,
//!   and a `requeued` event says its claim was not carried over.
//! - Event kinds keep their name where kanband records the same thing; `edited` and
//!   `specified` become `updated`, `promoted_manual` becomes `promoted`, `stale` becomes
//!   `expired`, `attachment_removed` becomes `attachment_deleted`; any other kind is kept as `hermes_<kind>`. Details hold the payload's keys
//!   (strings as they are, nulls left out, other values as JSON), and `hermes_kind`, `hermes_event_id`,
//!   `hermes_payload` (the payload exactly), `hermes_run_id` and `run` when it had a run.
//! - A subscription's cursor (`last_event_id`, a Hermes event id) becomes the new id of the
//!   last event at or below it, so exactly the events Hermes had not delivered are delivered.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::source::{Row, Source, int, text, time_ms};
use crate::{
    domain::{BlockKind, EventKind, RunOutcome, Status, WorkspaceKind},
    import::report::TableCount,
    store::{
        import::{
            BoardPlan, CommentPlan, EventPlan, IMPORT_ACTOR, RunPlan, SourceBoard,
            SubscriptionPlan, TaskPlan,
        },
        model::{WorkerOptions, Workspace},
    },
};

/// The actor of the history brought over (Hermes records none).
pub const HISTORY_ACTOR: &str = "hermes";

/// What the mapping of one board produced.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The rows to write.
    pub plan: BoardPlan,
    /// Per source table.
    pub tables: Vec<TableCount>,
    /// Problems in rows imported anyway.
    pub problems: Vec<String>,
    /// Hermes task id of each planned task, in plan order.
    pub hermes_ids: Vec<String>,
    /// Position in the plan's tasks of each Hermes task id.
    pub positions: HashMap<String, usize>,
}

/// Where the board is and what its `board.json` says.
#[derive(Debug, Clone)]
pub struct BoardInput<'a> {
    /// Source slug (also the kanband board's).
    pub slug: &'a str,
    /// Canonical path of the database read.
    pub path: &'a str,
    /// `board.json`, if there was one.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The import's time (Unix ms), for what it ends and records itself.
    pub now: i64,
}

/// Maps a board. Attachment rows are only counted as read here: [`super::attachments`]
/// decides each, as it needs the files.
pub fn map(input: &BoardInput<'_>, source: &Source) -> Mapped {
    let mut problems = Vec::new();
    let source_record = |row: &Row| {
        serde_json::json!({"system": "hermes", "source": input.path, "row": row}).to_string()
    };

    // Tasks.
    let mut tasks_count = TableCount::new("tasks", source.tasks.len());
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut task_rows: Vec<&Row> = Vec::new();
    for row in &source.tasks {
        match text(row, "id") {
            Some(id) if !position.contains_key(&id) => {
                position.insert(id, task_rows.len());
                task_rows.push(row);
            }
            Some(_) => tasks_count.skip("duplicate task id"),
            None => tasks_count.skip("no task id"),
        }
    }
    let hermes_ids: Vec<String> = task_rows
        .iter()
        .map(|r| text(r, "id").unwrap_or_default())
        .collect();
    let task_of = |row: &Row| text(row, "task_id").and_then(|id| position.get(&id).copied());

    // Runs, in Hermes order, numbered per task.
    let mut runs_count = TableCount::new("task_runs", source.runs.len());
    let mut runs = Vec::new();
    let mut run_position: HashMap<i64, usize> = HashMap::new();
    let mut epochs: HashMap<usize, i64> = HashMap::new();
    let mut in_flight: HashMap<usize, Option<i64>> = HashMap::new();
    for row in &source.runs {
        let Some(task) = task_of(row) else {
            runs_count.skip("names a task that is not on the board");
            continue;
        };
        let epoch = epochs.entry(task).or_default();
        *epoch += 1;
        let hermes_run = int(row, "id");
        let (ended_at, outcome, error) = match time_ms(row, "ended_at") {
            None => (
                input.now,
                RunOutcome::Reclaimed,
                "in flight when the board was imported: the claim was not carried over".into(),
            ),
            Some(ended) => {
                let named = text(row, "outcome").or_else(|| text(row, "status"));
                let outcome = named.as_deref().and_then(run_outcome).unwrap_or_else(|| {
                    problems.push(format!(
                        "run {} of task {}: unknown outcome {:?}, imported as reclaimed (the source row keeps it)",
                        hermes_run.unwrap_or_default(),
                        hermes_ids[task],
                        named.unwrap_or_default()
                    ));
                    RunOutcome::Reclaimed
                });
                (ended, outcome, text(row, "error").unwrap_or_default())
            }
        };
        if time_ms(row, "ended_at").is_none() {
            in_flight.insert(task, hermes_run);
        }
        if let Some(id) = hermes_run {
            run_position.insert(id, runs.len());
        }
        runs.push(RunPlan {
            task,
            epoch: *epoch,
            profile: text(row, "profile").unwrap_or_default(),
            started_at: time_ms(row, "started_at").unwrap_or(input.now),
            ended_at,
            outcome,
            summary: text(row, "summary").unwrap_or_default(),
            error,
            last_heartbeat_at: time_ms(row, "last_heartbeat_at"),
            imported: source_record(row),
        });
    }
    runs_count.imported = runs.len();

    // Events, in Hermes order; the import's own events follow.
    let mut events_count = TableCount::new("task_events", source.events.len());
    let mut events = Vec::new();
    let mut cursor_points: Vec<(i64, usize)> = Vec::new();
    let mut latest_at: HashMap<usize, i64> = HashMap::new();
    let mut block_reason: HashMap<usize, String> = HashMap::new();
    let mut orphans = 0;
    for row in &source.events {
        let task = task_of(row);
        let hermes_kind = text(row, "kind").unwrap_or_default();
        let created_at = time_ms(row, "created_at").unwrap_or(input.now);
        let mut details = BTreeMap::new();
        let raw_payload = text(row, "payload");
        if let Some(payload) = raw_payload.as_deref() {
            match serde_json::from_str::<serde_json::Value>(payload) {
                Ok(serde_json::Value::Object(map)) => {
                    for (key, value) in map {
                        let value = match value {
                            serde_json::Value::Null => continue,
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        details.insert(key, value);
                    }
                }
                Ok(serde_json::Value::Null) => {}
                _ => {}
            }
            details.insert("hermes_payload".into(), payload.to_owned());
        }
        details.insert("hermes_kind".into(), hermes_kind.clone());
        let hermes_event = int(row, "id");
        if let Some(id) = hermes_event {
            details.insert("hermes_event_id".into(), id.to_string());
        }
        let hermes_run = int(row, "run_id");
        if let Some(run) = hermes_run {
            details.insert("hermes_run_id".into(), run.to_string());
        }
        match task {
            Some(task) => {
                let latest = latest_at.entry(task).or_default();
                *latest = (*latest).max(created_at);
                if hermes_kind == "blocked"
                    && let Some(reason) = details.get("reason")
                {
                    block_reason.insert(task, reason.clone());
                }
            }
            None => {
                orphans += 1;
                if let Some(id) = text(row, "task_id") {
                    details.insert("hermes_task_id".into(), id);
                }
            }
        }
        if let Some(id) = hermes_event {
            cursor_points.push((id, events.len()));
        }
        events.push(EventPlan {
            task,
            run: hermes_run.and_then(|r| run_position.get(&r).copied()),
            kind: event_kind(&hermes_kind),
            actor: HISTORY_ACTOR.into(),
            details,
            created_at,
        });
    }
    events_count.imported = events.len();
    if orphans > 0 {
        problems.push(format!(
            "{orphans} event(s) name a task that is not on the board: kept as board events (hermes_task_id in their details)"
        ));
    }

    // The tasks themselves, now that their runs and history are known.
    let mut last_summary: HashMap<usize, String> = HashMap::new();
    for run in &runs {
        if !run.summary.is_empty() {
            last_summary.insert(run.task, run.summary.clone());
        }
    }
    let mut tasks = Vec::with_capacity(task_rows.len());
    for (at, row) in task_rows.iter().enumerate() {
        let id = &hermes_ids[at];
        let hermes_status = text(row, "status").unwrap_or_default();
        let status = match Status::parse(&hermes_status) {
            Some(Status::Running) => Status::Ready,
            Some(status) => status,
            None => {
                problems.push(format!(
                    "task {id}: unknown status {hermes_status:?}, imported as triage"
                ));
                Status::Triage
            }
        };
        let block_kind = match text(row, "block_kind") {
            Some(kind) => BlockKind::parse(&kind).or_else(|| {
                problems.push(format!(
                    "task {id}: unknown block kind {kind:?}, imported as none"
                ));
                Some(BlockKind::None)
            }),
            None if status == Status::Blocked => Some(BlockKind::None),
            None => None,
        };
        let kind_text = text(row, "workspace_kind").unwrap_or_else(|| "scratch".into());
        let workspace_kind = WorkspaceKind::parse(&kind_text).unwrap_or_else(|| {
            problems.push(format!(
                "task {id}: unknown workspace kind {kind_text:?}, imported as scratch"
            ));
            WorkspaceKind::Scratch
        });
        let skills = text(row, "skills")
            .and_then(|s| serde_json::from_str::<Vec<serde_json::Value>>(&s).ok())
            .map(|list| {
                list.into_iter()
                    .filter_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let created_at = time_ms(row, "created_at").unwrap_or(input.now);
        let started_at = time_ms(row, "started_at");
        let completed_at = time_ms(row, "completed_at");
        let updated_at = [
            Some(created_at),
            started_at,
            completed_at,
            latest_at.get(&at).copied(),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(created_at);
        tasks.push(TaskPlan {
            title: text(row, "title").unwrap_or_default(),
            body: text(row, "body").unwrap_or_default(),
            assignee: text(row, "assignee").unwrap_or_default(),
            status,
            priority: int(row, "priority").unwrap_or(0),
            created_by: text(row, "created_by").unwrap_or_default(),
            created_at,
            updated_at,
            started_at,
            completed_at,
            tenant: text(row, "tenant").unwrap_or_default(),
            idempotency_key: text(row, "idempotency_key").filter(|k| !k.is_empty()),
            result: text(row, "result").unwrap_or_default(),
            summary: last_summary.remove(&at).unwrap_or_default(),
            workspace: Workspace {
                kind: workspace_kind,
                path: text(row, "workspace_path").unwrap_or_default(),
                branch: text(row, "branch_name").unwrap_or_default(),
            },
            max_runtime_seconds: int(row, "max_runtime_seconds").unwrap_or(0).max(0),
            max_retries: int(row, "max_retries").unwrap_or(0).max(0),
            worker_options: WorkerOptions {
                skills,
                model: text(row, "model_override").unwrap_or_default(),
                provider: String::new(),
                reasoning_effort: String::new(),
            },
            consecutive_failures: int(row, "consecutive_failures").unwrap_or(0).max(0),
            last_failure_error: text(row, "last_failure_error").unwrap_or_default(),
            block_kind,
            block_reason: if status == Status::Blocked {
                block_reason.remove(&at).unwrap_or_default()
            } else {
                String::new()
            },
            block_recurrences: int(row, "block_recurrences").unwrap_or(0).max(0),
            epoch: epochs.get(&at).copied().unwrap_or(0),
            imported: source_record(row),
        });
        if hermes_status == "running" && !in_flight.contains_key(&at) {
            in_flight.insert(at, None);
        }
    }
    tasks_count.imported = tasks.len();

    // Live idempotency keys are unique on kanband: a repeat keeps its key in its record only.
    let mut keys = HashSet::new();
    for (at, task) in tasks.iter_mut().enumerate() {
        if let Some(key) = &task.idempotency_key
            && task.status != Status::Archived
            && !keys.insert(key.clone())
        {
            problems.push(format!(
                "task {}: idempotency key {key:?} is also a live earlier task's: imported without it (its source record keeps it)",
                hermes_ids[at]
            ));
            task.idempotency_key = None;
        }
    }

    // The import's own events: where each task came from, and the claims not carried over.
    for (at, id) in hermes_ids.iter().enumerate() {
        events.push(EventPlan {
            task: Some(at),
            run: None,
            kind: EventKind::Imported.as_str().into(),
            actor: IMPORT_ACTOR.into(),
            details: BTreeMap::from([
                ("system".into(), "hermes".into()),
                ("source".into(), input.path.to_owned()),
                ("hermes_task_id".into(), id.clone()),
            ]),
            created_at: input.now,
        });
    }
    let mut requeued: Vec<(usize, Option<i64>)> = in_flight.into_iter().collect();
    requeued.sort();
    for (task, hermes_run) in requeued {
        let mut details = BTreeMap::from([(
            "reason".to_owned(),
            "Hermes showed this task running when its board was imported: its claim was not \
             carried over, so the task is ready to be claimed again"
                .to_owned(),
        )]);
        if let Some(run) = hermes_run {
            details.insert("hermes_run_id".into(), run.to_string());
        }
        events.push(EventPlan {
            task: Some(task),
            run: hermes_run.and_then(|r| run_position.get(&r).copied()),
            kind: EventKind::Requeued.as_str().into(),
            actor: IMPORT_ACTOR.into(),
            details,
            created_at: input.now,
        });
    }

    // Links.
    let mut links_count = TableCount::new("task_links", source.links.len());
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let mut parents_of: HashMap<usize, Vec<usize>> = HashMap::new();
    for row in &source.links {
        let parent = text(row, "parent_id").and_then(|id| position.get(&id).copied());
        let child = text(row, "child_id").and_then(|id| position.get(&id).copied());
        let (Some(parent), Some(child)) = (parent, child) else {
            links_count.skip("dangling: names a task that is not on the board");
            continue;
        };
        if parent == child {
            links_count.skip("links a task to itself");
        } else if !seen.insert((parent, child)) {
            links_count.skip("duplicate link");
        } else if reaches(&parents_of, parent, child) {
            links_count.skip("would close a cycle");
        } else {
            parents_of.entry(child).or_default().push(parent);
            links.push((parent, child));
        }
    }
    links_count.imported = links.len();

    // Comments.
    let mut comments_count = TableCount::new("task_comments", source.comments.len());
    let mut comments = Vec::new();
    for row in &source.comments {
        let Some(task) = task_of(row) else {
            comments_count.skip("names a task that is not on the board");
            continue;
        };
        comments.push(CommentPlan {
            task,
            author: text(row, "author").unwrap_or_default(),
            body: text(row, "body").unwrap_or_default(),
            created_at: time_ms(row, "created_at").unwrap_or(input.now),
            imported: source_record(row),
        });
    }
    comments_count.imported = comments.len();

    // Subscriptions.
    cursor_points.sort();
    let mut subs_count = TableCount::new("kanban_notify_subs", source.subscriptions.len());
    let mut subscriptions = Vec::new();
    for row in &source.subscriptions {
        let Some(task) = task_of(row) else {
            subs_count.skip("names a task that is not on the board");
            continue;
        };
        let delivered = int(row, "last_event_id").unwrap_or(0);
        let after = cursor_points
            .iter()
            .take_while(|(id, _)| *id <= delivered)
            .map(|&(_, at)| at)
            .max();
        subscriptions.push(SubscriptionPlan {
            task,
            platform: text(row, "platform").unwrap_or_default(),
            chat_id: text(row, "chat_id").unwrap_or_default(),
            thread_id: text(row, "thread_id").unwrap_or_default(),
            // Hermes delivers an unowned subscription through its default profile.
            owner_profile: text(row, "notifier_profile")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "default".into()),
            after,
            created_at: time_ms(row, "created_at").unwrap_or(input.now),
            imported: source_record(row),
        });
    }
    subs_count.imported = subscriptions.len();

    let (display_name, metadata, archived) = board_metadata(input);
    let fingerprint = task_rows.first().map(|row| {
        format!(
            "{}@{}",
            text(row, "id").unwrap_or_default(),
            int(row, "created_at").unwrap_or_default()
        )
    });
    let tables = vec![
        tasks_count,
        links_count,
        comments_count,
        events_count,
        runs_count,
        TableCount::new("task_attachments", source.attachments.len()),
        subs_count,
    ];
    Mapped {
        plan: BoardPlan {
            source: SourceBoard {
                system: "hermes".into(),
                path: input.path.to_owned(),
                fingerprint,
            },
            slug: input.slug.to_owned(),
            display_name,
            metadata,
            archived,
            tasks,
            links,
            comments,
            runs,
            events,
            subscriptions,
            attachments: Vec::new(),
            report: serde_json::Value::Null,
        },
        tables,
        problems,
        hermes_ids,
        positions: position,
    }
}

/// Whether `target` is `from` or one of its ancestors (following parent links upwards): then
/// making `target` a child of `from` would close a cycle.
fn reaches(parents_of: &HashMap<usize, Vec<usize>>, from: usize, target: usize) -> bool {
    let mut stack = vec![from];
    let mut seen = HashSet::new();
    while let Some(at) = stack.pop() {
        if at == target {
            return true;
        }
        if seen.insert(at) {
            stack.extend(parents_of.get(&at).into_iter().flatten().copied());
        }
    }
    false
}

/// The kanband run outcome of a Hermes run outcome (or run status, for a run ended without
/// one).
pub fn run_outcome(hermes: &str) -> Option<RunOutcome> {
    Some(match hermes {
        "completed" | "done" => RunOutcome::Completed,
        "blocked" => RunOutcome::Blocked,
        "crashed" | "failed" => RunOutcome::Crashed,
        "timed_out" => RunOutcome::TimedOut,
        "spawn_failed" => RunOutcome::SpawnFailed,
        "gave_up" => RunOutcome::GaveUp,
        "reclaimed" => RunOutcome::Reclaimed,
        "scheduled" => RunOutcome::Scheduled,
        "stale" => RunOutcome::Expired,
        "released" => RunOutcome::Released,
        _ => return None,
    })
}

/// The kanband event kind of a Hermes event kind.
pub fn event_kind(hermes: &str) -> String {
    let same = [
        EventKind::Created,
        EventKind::Assigned,
        EventKind::Commented,
        EventKind::Linked,
        EventKind::Unlinked,
        EventKind::Promoted,
        EventKind::Blocked,
        EventKind::BlockLoopDetected,
        EventKind::Unblocked,
        EventKind::Scheduled,
        EventKind::Archived,
        EventKind::Claimed,
        EventKind::Completed,
        EventKind::GaveUp,
        EventKind::Crashed,
        EventKind::TimedOut,
        EventKind::SpawnFailed,
        EventKind::Reclaimed,
        EventKind::Attached,
    ];
    if same.iter().any(|k| k.as_str() == hermes) {
        return hermes.to_owned();
    }
    match hermes {
        "edited" | "specified" => EventKind::Updated.as_str().into(),
        "promoted_manual" => EventKind::Promoted.as_str().into(),
        "stale" => EventKind::Expired.as_str().into(),
        "attachment_removed" => EventKind::AttachmentDeleted.as_str().into(),
        other => format!("hermes_{other}"),
    }
}

/// The board's display name, labels and archived flag from `board.json` (Hermes's defaults
/// when it has none: the slug's words capitalised).
fn board_metadata(input: &BoardInput<'_>) -> (String, BTreeMap<String, String>, bool) {
    let default_name = input
        .slug
        .replace('_', "-")
        .split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut labels = BTreeMap::from([("hermes_board".to_owned(), input.slug.to_owned())]);
    let Some(meta) = &input.metadata else {
        return (default_name, labels, false);
    };
    let mut name = default_name;
    let mut archived = false;
    for (key, value) in meta {
        match (key.as_str(), value) {
            ("slug" | "db_path", _) | (_, serde_json::Value::Null) => {}
            ("name", serde_json::Value::String(s)) if !s.trim().is_empty() => {
                name = s.trim().to_owned()
            }
            ("archived", v) => archived = v.as_bool().unwrap_or(false),
            (_, serde_json::Value::String(s)) if s.is_empty() => {}
            (key, serde_json::Value::String(s)) => {
                labels.insert(format!("hermes_{key}"), s.clone());
            }
            (key, other) => {
                labels.insert(format!("hermes_{key}"), other.to_string());
            }
        }
    }
    (name, labels, archived)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(value: serde_json::Value) -> Row {
        value.as_object().unwrap().clone()
    }

    fn input() -> BoardInput<'static> {
        BoardInput {
            slug: "ops",
            path: "/h/kanban.db",
            metadata: None,
            now: 5_000_000,
        }
    }

    fn task(id: &str, status: &str) -> Row {
        row(
            json!({"id": id, "title": id, "status": status, "created_at": 10,
                   "workspace_kind": "scratch", "consecutive_failures": 0,
                   "block_recurrences": 0}),
        )
    }

    #[test]
    fn a_running_task_is_ready_its_run_ended_and_a_requeued_event_says_why() {
        let source = Source {
            tasks: vec![task("t_a", "running")],
            runs: vec![row(json!({"id": 4, "task_id": "t_a", "status": "running",
                                  "started_at": 20, "profile": "bob"}))],
            ..Source::default()
        };
        let mapped = map(&input(), &source);
        let plan = &mapped.plan;
        assert_eq!(plan.tasks[0].status, Status::Ready);
        assert_eq!(plan.tasks[0].epoch, 1);
        assert_eq!(plan.runs[0].outcome, RunOutcome::Reclaimed);
        assert_eq!(plan.runs[0].ended_at, 5_000_000);
        let last = plan.events.last().unwrap();
        assert_eq!(last.kind, "requeued");
        assert_eq!(last.run, Some(0));
        assert!(
            last.details["reason"].contains("not carried over"),
            "{last:?}"
        );
    }

    #[test]
    fn events_keep_their_payload_and_cursors_point_at_the_last_delivered_event() {
        let source = Source {
            tasks: vec![task("t_a", "done")],
            events: vec![
                row(json!({"id": 1, "task_id": "t_a", "kind": "created", "created_at": 10})),
                row(
                    json!({"id": 3, "task_id": "t_a", "kind": "edited", "created_at": 11,
                           "payload": "{\"fields\": [\"title\"], \"by\": \"x\"}"}),
                ),
                row(
                    json!({"id": 5, "task_id": "t_a", "kind": "spawned", "created_at": 12,
                           "run_id": 9}),
                ),
            ],
            subscriptions: vec![
                row(json!({"task_id": "t_a", "platform": "p", "chat_id": "c",
                           "last_event_id": 3})),
                row(json!({"task_id": "t_a", "platform": "p", "chat_id": "d",
                           "last_event_id": 0, "notifier_profile": "alice"})),
                row(json!({"task_id": "t_gone", "platform": "p", "chat_id": "e",
                           "last_event_id": 0})),
            ],
            ..Source::default()
        };
        let mapped = map(&input(), &source);
        let events = &mapped.plan.events;
        assert_eq!(events[1].kind, "updated");
        assert_eq!(events[1].details["fields"], "[\"title\"]");
        assert_eq!(events[1].details["by"], "x");
        assert_eq!(events[1].details["hermes_kind"], "edited");
        assert_eq!(events[1].details["hermes_event_id"], "3");
        assert_eq!(events[2].kind, "hermes_spawned");
        assert_eq!(events[2].details["hermes_run_id"], "9");
        assert_eq!(events[2].created_at, 12_000);
        let subs = &mapped.plan.subscriptions;
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].after, Some(1), "up to Hermes event 3 was delivered");
        assert_eq!(subs[0].owner_profile, "default");
        assert_eq!(subs[1].after, None, "nothing was delivered");
        assert_eq!(subs[1].owner_profile, "alice");
        let skipped = &mapped.tables[6].skipped;
        assert_eq!(skipped["names a task that is not on the board"], 1);
    }

    #[test]
    fn bad_links_are_skipped_each_with_its_reason() {
        let source = Source {
            tasks: vec![
                task("t_a", "done"),
                task("t_b", "ready"),
                task("t_c", "todo"),
            ],
            links: vec![
                row(json!({"parent_id": "t_a", "child_id": "t_b"})),
                row(json!({"parent_id": "t_b", "child_id": "t_c"})),
                row(json!({"parent_id": "t_a", "child_id": "t_b"})),
                row(json!({"parent_id": "t_c", "child_id": "t_a"})),
                row(json!({"parent_id": "t_a", "child_id": "t_a"})),
                row(json!({"parent_id": "t_x", "child_id": "t_a"})),
            ],
            ..Source::default()
        };
        let mapped = map(&input(), &source);
        assert_eq!(mapped.plan.links, [(0, 1), (1, 2)]);
        let links = &mapped.tables[1];
        assert_eq!(links.imported, 2);
        assert_eq!(links.skipped["duplicate link"], 1);
        assert_eq!(links.skipped["would close a cycle"], 1);
        assert_eq!(links.skipped["links a task to itself"], 1);
        assert_eq!(
            links.skipped["dangling: names a task that is not on the board"],
            1
        );
    }

    #[test]
    fn task_fields_map_and_a_repeated_live_key_is_dropped_with_a_problem() {
        let mut first = task("t_a", "blocked");
        first.insert("skills".into(), json!("[\"a\", \"b\"]"));
        first.insert("model_override".into(), json!("m"));
        first.insert("idempotency_key".into(), json!("k"));
        first.insert("created_at".into(), json!(7));
        let mut second = task("t_b", "ready");
        second.insert("idempotency_key".into(), json!("k"));
        let source = Source {
            tasks: vec![first, second],
            events: vec![row(json!({"id": 1, "task_id": "t_a", "kind": "blocked",
                                    "created_at": 9, "payload": "{\"reason\": \"why\"}"}))],
            ..Source::default()
        };
        let mapped = map(&input(), &source);
        let a = &mapped.plan.tasks[0];
        assert_eq!(a.worker_options.skills, ["a", "b"]);
        assert_eq!(a.worker_options.model, "m");
        assert_eq!((a.created_at, a.updated_at), (7_000, 9_000));
        assert_eq!(a.block_kind, Some(BlockKind::None));
        assert_eq!(a.block_reason, "why");
        assert!(a.imported.contains("\"t_a\""), "{}", a.imported);
        assert_eq!(mapped.plan.tasks[1].idempotency_key, None);
        assert!(
            mapped.problems[0].contains("idempotency key"),
            "{:?}",
            mapped.problems
        );
        assert_eq!(mapped.plan.source.fingerprint.as_deref(), Some("t_a@7"));
    }

    #[test]
    fn kinds_and_outcomes_map() {
        assert_eq!(event_kind("completed"), "completed");
        assert_eq!(event_kind("promoted_manual"), "promoted");
        assert_eq!(event_kind("stale"), "expired");
        assert_eq!(event_kind("heartbeat"), "hermes_heartbeat");
        assert_eq!(run_outcome("stale"), Some(RunOutcome::Expired));
        assert_eq!(run_outcome("done"), Some(RunOutcome::Completed));
        assert_eq!(run_outcome("weird"), None);
    }
}
