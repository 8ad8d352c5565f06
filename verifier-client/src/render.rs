//! How messages look to people: the tables of `-o table|wide` and the text of a task's
//! detail, stats and events. (JSON needs nothing here: it is the response message's own proto3
//! JSON, see [`crate::output`].) Enums are shown by the lowercase names of [`crate::names`],
//! times in RFC 3339 UTC; lines stay greppable (`t_0123... ready "title"` in a task's detail,
//! one line per event in `watch`).

use std::{collections::HashMap, fmt::Write as _};

use kanband_proto::Timestamp;
use kanband_proto::pb::{
    Attachment, Board, Candidate, Event, StatsResponse, Task, TaskDetail, TokenInfo,
};

use crate::{
    names::{block_kind_name, run_outcome_name, status_name},
    output::{Column, col, table, wide},
};

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

/// One line for a task: `t_0123... ready "title"`, then the assignee if any.
pub fn task_line(task: &Task) -> String {
    let mut line = format!("{} {} {:?}", task.id, status_name(task.status), task.title);
    if !task.assignee.is_empty() {
        let _ = write!(line, " @{}", task.assignee);
    }
    line
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

const TASK_COLUMNS: [Column; 10] = [
    col("ID"),
    col("STATUS"),
    col("PRIORITY"),
    col("ASSIGNEE"),
    col("TITLE"),
    wide("BOARD"),
    wide("EPOCH"),
    wide("FAILURES"),
    wide("CREATED"),
    wide("BLOCK REASON"),
];

fn task_row(t: &Task) -> Vec<String> {
    vec![
        t.id.clone(),
        status_name(t.status).to_owned(),
        t.priority.to_string(),
        t.assignee.clone(),
        t.title.clone(),
        t.board.clone(),
        t.epoch.to_string(),
        t.consecutive_failures.to_string(),
        time_text(t.created_at.as_ref()),
        t.block_reason.clone(),
    ]
}

/// Tasks as a table.
pub fn tasks(tasks: &[Task], show_wide: bool) -> String {
    let rows: Vec<_> = tasks.iter().map(task_row).collect();
    table(&TASK_COLUMNS, &rows, show_wide)
}

/// Boards as a table.
pub fn boards(boards: &[Board], show_wide: bool) -> String {
    const COLUMNS: [Column; 7] = [
        col("SLUG"),
        col("NAME"),
        col("DEFAULT ASSIGNEE"),
        col("ARCHIVED"),
        wide("MAX RUNNING"),
        wide("MAX RETRIES"),
        wide("CREATED"),
    ];
    let rows: Vec<_> = boards
        .iter()
        .map(|b| {
            vec![
                b.slug.clone(),
                b.display_name.clone(),
                b.default_assignee.clone(),
                if b.archived { "yes" } else { "no" }.to_owned(),
                b.max_running.to_string(),
                b.max_retries.to_string(),
                time_text(b.created_at.as_ref()),
            ]
        })
        .collect();
    table(&COLUMNS, &rows, show_wide)
}

/// Attachments as a table.
pub fn attachments(attachments: &[Attachment], show_wide: bool) -> String {
    const COLUMNS: [Column; 8] = [
        col("ID"),
        col("SIZE"),
        col("MEDIA TYPE"),
        col("NAME"),
        wide("TASK"),
        wide("SHA256"),
        wide("UPLOADED BY"),
        wide("CREATED"),
    ];
    let rows: Vec<_> = attachments
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.size.to_string(),
                a.media_type.clone(),
                a.name.clone(),
                a.task_id.clone(),
                a.sha256.clone(),
                a.uploaded_by.clone(),
                time_text(a.created_at.as_ref()),
            ]
        })
        .collect();
    table(&COLUMNS, &rows, show_wide)
}

/// Tokens as a table (never a secret: kanband keeps only hashes).
pub fn tokens(tokens: &[TokenInfo], show_wide: bool) -> String {
    const COLUMNS: [Column; 8] = [
        col("ID"),
        col("NAME"),
        col("ROLE"),
        col("REVOKED"),
        col("EXPIRES"),
        wide("MACHINE"),
        wide("PROFILES"),
        wide("CREATED"),
    ];
    let rows: Vec<_> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.name.clone(),
                t.role.clone(),
                t.revoked_at
                    .as_ref()
                    .map_or_else(|| "no".to_owned(), |at| time_text(Some(at))),
                t.expires_at
                    .as_ref()
                    .map_or_else(|| "never".to_owned(), |at| time_text(Some(at))),
                t.machine_id.clone(),
                t.profiles.join(","),
                time_text(t.created_at.as_ref()),
            ]
        })
        .collect();
    table(&COLUMNS, &rows, show_wide)
}

/// Dispatch candidates as a table: `*` under GRANT marks the task that would be granted next.
pub fn candidates(candidates: &[Candidate], show_wide: bool) -> String {
    const COLUMNS: [Column; 7] = [
        col("GRANT"),
        col("ID"),
        col("STATUS"),
        col("TITLE"),
        col("WHY NOT"),
        wide("PRIORITY"),
        wide("ASSIGNEE"),
    ];
    let rows: Vec<_> = candidates
        .iter()
        .map(|c| {
            let t = c.task.clone().unwrap_or_default();
            vec![
                if c.would_grant { "*" } else { "" }.to_owned(),
                t.id,
                status_name(t.status).to_owned(),
                t.title,
                c.why_not.clone(),
                t.priority.to_string(),
                t.assignee,
            ]
        })
        .collect();
    table(&COLUMNS, &rows, show_wide)
}

#[cfg(test)]
mod tests {
    use kanband_proto::pb::TaskStatus;

    use super::*;

    #[test]
    fn tasks_show_lowercase_statuses_and_wide_adds_columns() {
        let t = Task {
            id: "t_1".into(),
            title: "say \"hi\"".into(),
            status: TaskStatus::Done.into(),
            assignee: "p".into(),
            epoch: 4,
            ..Task::default()
        };
        let narrow = tasks(std::slice::from_ref(&t), false);
        assert_eq!(
            narrow,
            "ID   STATUS  PRIORITY  ASSIGNEE  TITLE\n\
             t_1  done    0         p         say \"hi\"\n"
        );
        let wide = tasks(std::slice::from_ref(&t), true);
        assert!(wide.starts_with("ID   STATUS  PRIORITY  ASSIGNEE  TITLE     BOARD  EPOCH"));
        assert!(wide.lines().nth(1).unwrap().contains("  4  "));
        assert_eq!(task_line(&t), r#"t_1 done "say \"hi\"" @p"#);
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
        // JSON is the message's own proto3 JSON: the identity fields appear by themselves.
        let json = serde_json::to_value(e("gw-laptop", "supervisor", "alice")).unwrap();
        assert_eq!(json["identity"], "gw-laptop");
        assert_eq!(json["identityRole"], "supervisor");
    }
}
