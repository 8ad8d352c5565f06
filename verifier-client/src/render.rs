//! How messages look: one JSON shape and one human shape per message type.
//!
//! The generated types do not derive serde (the contract crate stays free of it), so the JSON
//! is built here by hand. Field names are the `.proto` field names; enums are the lowercase
//! names of [`crate::names`]; timestamps are RFC 3339 strings or `null` when unset. Human
//! output keeps one line per thing where it can (`t_0123... ready "title"`), so it greps well.

use std::{collections::HashMap, fmt::Write as _};

use kanband_proto::Timestamp;
use kanband_proto::pb::{
    Attachment, Board, Candidate, Comment, Event, Run, StatsResponse, Task, TaskDetail, Workspace,
};
use serde_json::{Map, Value, json};

use crate::names::{block_kind_name, run_outcome_name, status_name, workspace_kind_name};

/// A timestamp as RFC 3339 with a `Z` (prost-types' display form), or `null`.
pub(crate) fn time(ts: Option<&Timestamp>) -> Value {
    ts.map_or(Value::Null, |ts| Value::String(rfc3339(ts)))
}

/// A timestamp for people; `-` when unset.
pub(crate) fn time_text(ts: Option<&Timestamp>) -> String {
    ts.map_or_else(|| "-".to_owned(), rfc3339)
}

/// RFC 3339 in UTC with a `Z`, as grpcurl prints it.
fn rfc3339(ts: &Timestamp) -> String {
    prost_types::Timestamp {
        seconds: ts.seconds,
        nanos: ts.nanos,
    }
    .to_string()
}

/// A string map as a JSON object (sorted by key).
fn string_map(map: &HashMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// A string map as `k=v` pairs sorted by key, for people.
fn pairs(map: &HashMap<String, String>) -> String {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort();
    entries
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn workspace(ws: Option<&Workspace>) -> Value {
    ws.map_or(Value::Null, |ws| {
        json!({
            "kind": workspace_kind_name(ws.kind),
            "path": ws.path,
            "branch": ws.branch,
        })
    })
}

/// Every field of a task.
pub fn task(task: &Task) -> Value {
    let options = task.worker_options.as_ref();
    json!({
        "id": task.id,
        "board": task.board,
        "title": task.title,
        "body": task.body,
        "assignee": task.assignee,
        "status": status_name(task.status),
        "priority": task.priority,
        "created_by": task.created_by,
        "created_at": time(task.created_at.as_ref()),
        "started_at": time(task.started_at.as_ref()),
        "completed_at": time(task.completed_at.as_ref()),
        "updated_at": time(task.updated_at.as_ref()),
        "tenant": task.tenant,
        "idempotency_key": task.idempotency_key,
        "result": task.result,
        "summary": task.summary,
        "workspace": workspace(task.workspace.as_ref()),
        "max_runtime_seconds": task.max_runtime_seconds,
        "max_retries": task.max_retries,
        "required_capabilities": task.required_capabilities,
        "target_machine": task.target_machine,
        "worker_options": options.map_or(Value::Null, |o| json!({
            "skills": o.skills,
            "model": o.model,
            "provider": o.provider,
            "reasoning_effort": o.reasoning_effort,
        })),
        "consecutive_failures": task.consecutive_failures,
        "last_failure_error": task.last_failure_error,
        "block_kind": block_kind_name(task.block_kind),
        "block_reason": task.block_reason,
        "block_recurrences": task.block_recurrences,
        "current_run_id": task.current_run_id,
        "epoch": task.epoch,
        "scheduled_until": time(task.scheduled_until.as_ref()),
        "cooldown_until": time(task.cooldown_until.as_ref()),
        "protocol_violations": task.protocol_violations,
        "outcomeless_attempts": task.outcomeless_attempts,
    })
}

/// A task's fields with `extra` merged in at the top level (for `task create`'s `created` and
/// `task show`'s parents, children, runs, comments and events).
pub fn task_with(t: &Task, extra: Value) -> Value {
    let mut value = task(t);
    if let (Value::Object(fields), Value::Object(extra)) = (&mut value, extra) {
        fields.extend(extra);
    }
    value
}

/// One line for a task: `t_0123... ready "title"`, then the assignee if any.
pub fn task_line(task: &Task) -> String {
    let mut line = format!("{} {} {:?}", task.id, status_name(task.status), task.title);
    if !task.assignee.is_empty() {
        let _ = write!(line, " @{}", task.assignee);
    }
    line
}

/// An attachment.
pub fn attachment(a: &Attachment) -> Value {
    json!({
        "id": a.id,
        "task_id": a.task_id,
        "name": a.name,
        "media_type": a.media_type,
        "size": a.size,
        "sha256": a.sha256,
        "uploaded_by": a.uploaded_by,
        "created_at": time(a.created_at.as_ref()),
    })
}

/// An attachment as one line: `a_... 1234 text/plain "name"`.
pub fn attachment_line(a: &Attachment) -> String {
    format!("{} {} {} {:?}", a.id, a.size, a.media_type, a.name)
}

/// A comment.
pub fn comment(c: &Comment) -> Value {
    json!({
        "id": c.id,
        "task_id": c.task_id,
        "author": c.author,
        "body": c.body,
        "created_at": time(c.created_at.as_ref()),
    })
}

/// A run.
pub fn run(r: &Run) -> Value {
    json!({
        "id": r.id,
        "task_id": r.task_id,
        "epoch": r.epoch,
        "session_id": r.session_id,
        "profile": r.profile,
        "machine_id": r.machine_id,
        "review": r.review,
        "started_at": time(r.started_at.as_ref()),
        "ended_at": time(r.ended_at.as_ref()),
        "outcome": run_outcome_name(r.outcome),
        "summary": r.summary,
        "error": r.error,
        "exit_code": r.exit_code,
        "last_heartbeat_at": time(r.last_heartbeat_at.as_ref()),
        "last_heartbeat_note": r.last_heartbeat_note,
    })
}

/// An event.
pub fn event(e: &Event) -> Value {
    json!({
        "id": e.id,
        "board": e.board,
        "task_id": e.task_id,
        "kind": e.kind,
        "actor": e.actor,
        "details": string_map(&e.details),
        "created_at": time(e.created_at.as_ref()),
        "identity": e.identity,
        "identity_role": e.identity_role,
    })
}

/// One line for an event:
/// `#12 2025-... t_0123... completed by gw-laptop (supervisor), note: ses_... from=running to=done`.
pub fn event_line(e: &Event) -> String {
    let subject = if e.task_id.is_empty() {
        format!("board {}", e.board)
    } else {
        e.task_id.clone()
    };
    let mut line = format!(
        "#{} {} {} {}",
        e.id,
        time_text(e.created_at.as_ref()),
        subject,
        e.kind
    );
    if let Some(by) = author(e) {
        let _ = write!(line, " {by}");
    }
    if !e.details.is_empty() {
        let _ = write!(line, " {}", pairs(&e.details));
    }
    line
}

/// Who caused an event: `by NAME (ROLE)`, with `, note: ACTOR` when the caller's note says
/// something the identity does not. An event from a kanband that records no identity shows
/// its actor alone.
fn author(e: &Event) -> Option<String> {
    let note = (!e.actor.is_empty() && e.actor != e.identity).then_some(e.actor.as_str());
    match (e.identity.as_str(), note) {
        ("", None) => None,
        ("", Some(actor)) => Some(format!("by {actor}")),
        (identity, None) => Some(format!("by {identity} ({})", e.identity_role)),
        (identity, Some(note)) => {
            Some(format!("by {identity} ({}), note: {note}", e.identity_role))
        }
    }
}

/// A task with everything around it.
pub fn detail(d: &TaskDetail) -> Value {
    let extra = json!({
        "parents": d.parents,
        "children": d.children,
        "runs": d.runs.iter().map(run).collect::<Vec<_>>(),
        "comments": d.comments.iter().map(comment).collect::<Vec<_>>(),
        "recent_events": d.recent_events.iter().map(event).collect::<Vec<_>>(),
    });
    match &d.task {
        Some(t) => task_with(t, extra),
        None => extra,
    }
}

/// A task with everything around it, for people.
pub fn detail_text(d: &TaskDetail) -> String {
    let mut out = String::new();
    let Some(t) = &d.task else {
        return out;
    };
    let _ = writeln!(out, "{}", task_line(t));
    let _ = writeln!(
        out,
        "  board {}  priority {}  epoch {}  created {} by {}",
        t.board,
        t.priority,
        t.epoch,
        time_text(t.created_at.as_ref()),
        if t.created_by.is_empty() {
            "-"
        } else {
            &t.created_by
        },
    );
    if !t.required_capabilities.is_empty() {
        let _ = writeln!(out, "  needs {}", t.required_capabilities.join(", "));
    }
    if t.status == kanband_proto::pb::TaskStatus::Blocked as i32 || !t.block_reason.is_empty() {
        let _ = writeln!(
            out,
            "  block {}: {}",
            block_kind_name(t.block_kind),
            t.block_reason
        );
    }
    if !t.last_failure_error.is_empty() {
        let _ = writeln!(
            out,
            "  failures {} (last: {})",
            t.consecutive_failures, t.last_failure_error
        );
    }
    if !t.summary.is_empty() {
        let _ = writeln!(out, "  summary: {}", t.summary);
    }
    if !t.body.is_empty() {
        let _ = writeln!(out, "  body:");
        for line in t.body.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    if !d.parents.is_empty() {
        let _ = writeln!(out, "  parents: {}", d.parents.join(" "));
    }
    if !d.children.is_empty() {
        let _ = writeln!(out, "  children: {}", d.children.join(" "));
    }
    if !d.runs.is_empty() {
        let _ = writeln!(out, "  runs:");
        for r in &d.runs {
            let _ = write!(
                out,
                "    {} epoch {} {}@{} {} {}",
                r.id,
                r.epoch,
                r.profile,
                r.machine_id,
                time_text(r.started_at.as_ref()),
                run_outcome_name(r.outcome)
            );
            if !r.summary.is_empty() {
                let _ = write!(out, " {:?}", r.summary);
            }
            if !r.error.is_empty() {
                let _ = write!(out, " error {:?}", r.error);
            }
            out.push('\n');
        }
    }
    if !d.comments.is_empty() {
        let _ = writeln!(out, "  comments:");
        for c in &d.comments {
            let _ = writeln!(
                out,
                "    {} {}: {}",
                time_text(c.created_at.as_ref()),
                c.author,
                c.body
            );
        }
    }
    if !d.recent_events.is_empty() {
        let _ = writeln!(out, "  events:");
        for e in &d.recent_events {
            let _ = writeln!(out, "    {}", event_line(e));
        }
    }
    out
}

/// A board.
pub fn board(b: &Board) -> Value {
    json!({
        "slug": b.slug,
        "display_name": b.display_name,
        "metadata": string_map(&b.metadata),
        "default_assignee": b.default_assignee,
        "max_retries": b.max_retries,
        "max_running": b.max_running,
        "archived": b.archived,
        "created_at": time(b.created_at.as_ref()),
        "updated_at": time(b.updated_at.as_ref()),
    })
}

/// One line for a board: `slug "name"`, then what is notable.
pub fn board_line(b: &Board) -> String {
    let mut line = format!("{} {:?}", b.slug, b.display_name);
    if !b.default_assignee.is_empty() {
        let _ = write!(line, " default @{}", b.default_assignee);
    }
    if b.archived {
        line.push_str(" (archived)");
    }
    line
}

/// Service statistics.
pub fn stats(s: &StatsResponse) -> Value {
    let lag = s.expiry_lag.unwrap_or_default();
    json!({
        "tasks_by_status": s.tasks_by_status,
        "live_sessions": s.live_sessions,
        "live_claims": s.live_claims,
        "oldest_ready_age_ms": s.oldest_ready_age_ms,
        "waiting_pollers": s.waiting_pollers,
        "deadlines_retrying": s.deadlines_retrying,
        "expiry_lag": {
            "count": lag.count,
            "p50_us": lag.p50_us,
            "p99_us": lag.p99_us,
            "max_us": lag.max_us,
        },
    })
}

/// Service statistics for people.
pub fn stats_text(s: &StatsResponse) -> String {
    let mut by_status: Vec<_> = s.tasks_by_status.iter().collect();
    by_status.sort();
    let tasks = by_status
        .iter()
        .map(|(status, n)| format!("{status} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let lag = s.expiry_lag.unwrap_or_default();
    format!(
        "tasks: {}\nlive sessions {}, live claims {}, waiting pollers {}\n\
         oldest ready task {} ms\nexpiry lag: {} samples, p50 {} us, p99 {} us, max {} us\n\
         deadlines retrying {}\n",
        if tasks.is_empty() { "none" } else { &tasks },
        s.live_sessions,
        s.live_claims,
        s.waiting_pollers,
        s.oldest_ready_age_ms,
        lag.count,
        lag.p50_us,
        lag.p99_us,
        lag.max_us,
        s.deadlines_retrying
    )
}

/// A dispatch candidate: the task with `would_grant` and `why_not`.
pub fn candidate(c: &Candidate) -> Value {
    let extra = json!({ "would_grant": c.would_grant, "why_not": c.why_not });
    match &c.task {
        Some(t) => task_with(t, extra),
        None => extra,
    }
}

/// One line for a candidate: `*` marks the task that would be granted next.
pub fn candidate_line(c: &Candidate) -> String {
    let mark = if c.would_grant { "*" } else { " " };
    let task = c.task.as_ref().map(task_line).unwrap_or_default();
    if c.why_not.is_empty() {
        format!("{mark} {task}")
    } else {
        format!("{mark} {task}: {}", c.why_not)
    }
}

#[cfg(test)]
mod tests {
    use kanband_proto::pb::TaskStatus;

    use super::*;

    #[test]
    fn task_json_uses_lowercase_names() {
        let t = Task {
            id: "t_1".into(),
            title: "say \"hi\"".into(),
            status: TaskStatus::Done.into(),
            assignee: "p".into(),
            created_at: Some(Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Task::default()
        };
        let value = task(&t);
        assert_eq!(value["status"], "done");
        assert_eq!(value["block_kind"], "unspecified");
        assert_eq!(value["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(value["started_at"], Value::Null);
        assert_eq!(task_line(&t), r#"t_1 done "say \"hi\"" @p"#);
        let with = task_with(&t, json!({"created": true}));
        assert_eq!(with["created"], true);
        assert_eq!(with["id"], "t_1");
    }

    #[test]
    fn an_event_line_names_the_identity_and_the_note_beside_it() {
        let e = |identity: &str, role: &str, actor: &str| Event {
            id: 7,
            task_id: "t_1".into(),
            kind: "completed".into(),
            identity: identity.into(),
            identity_role: role.into(),
            actor: actor.into(),
            ..Event::default()
        };
        let line = event_line(&e("gw-laptop", "supervisor", "alice"));
        assert!(
            line.ends_with("t_1 completed by gw-laptop (supervisor), note: alice"),
            "{line}"
        );
        let line = event_line(&e("admin", "admin", "admin"));
        assert!(line.ends_with("completed by admin (admin)"), "{line}");
        let line = event_line(&e("kanband", "system", ""));
        assert!(line.ends_with("completed by kanband (system)"), "{line}");
        let line = event_line(&e("", "", "ses_1"));
        assert!(
            line.ends_with("completed by ses_1"),
            "an older kanband: {line}"
        );
        assert_eq!(
            event(&e("gw-laptop", "supervisor", "alice"))["identity"],
            "gw-laptop"
        );
    }
}
