//! Reading a snapshot of a Hermes board: the schema check, then every row of every table.
//!
//! Hermes has no schema version number; its schema is what `hermes_cli/kanban_db.py` creates
//! and migrates to on open. The importer supports exactly Hermes Agent 0.19's: the seven
//! tables below with exactly these columns. A board with a column missing (an older Hermes
//! that never opened it since) or one more (a newer Hermes) is refused, naming the
//! difference, rather than imported with something silently dropped.

use tokio_rusqlite::rusqlite::{Connection, types::ValueRef};

/// A row as the source stored it: column name to value.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// The Hermes version whose schema is supported.
pub const SUPPORTED: &str = "Hermes Agent 0.19 (hermes-agent 0.19.0)";

/// Every table read, with the columns Hermes 0.19 gives it.
pub const TABLES: &[(&str, &[&str])] = &[
    (
        "tasks",
        &[
            "id",
            "title",
            "body",
            "assignee",
            "status",
            "priority",
            "created_by",
            "created_at",
            "started_at",
            "completed_at",
            "workspace_kind",
            "workspace_path",
            "branch_name",
            "project_id",
            "claim_lock",
            "claim_expires",
            "tenant",
            "result",
            "idempotency_key",
            "consecutive_failures",
            "worker_pid",
            "last_failure_error",
            "max_runtime_seconds",
            "last_heartbeat_at",
            "current_run_id",
            "workflow_template_id",
            "current_step_key",
            "skills",
            "model_override",
            "max_retries",
            "goal_mode",
            "goal_max_turns",
            "session_id",
            "block_kind",
            "block_recurrences",
        ],
    ),
    ("task_links", &["parent_id", "child_id"]),
    (
        "task_comments",
        &["id", "task_id", "author", "body", "created_at"],
    ),
    (
        "task_events",
        &["id", "task_id", "run_id", "kind", "payload", "created_at"],
    ),
    (
        "task_runs",
        &[
            "id",
            "task_id",
            "profile",
            "step_key",
            "status",
            "claim_lock",
            "claim_expires",
            "worker_pid",
            "max_runtime_seconds",
            "last_heartbeat_at",
            "started_at",
            "ended_at",
            "outcome",
            "summary",
            "metadata",
            "error",
        ],
    ),
    (
        "task_attachments",
        &[
            "id",
            "task_id",
            "filename",
            "stored_path",
            "content_type",
            "size",
            "uploaded_by",
            "created_at",
        ],
    ),
    (
        "kanban_notify_subs",
        &[
            "task_id",
            "platform",
            "chat_id",
            "thread_id",
            "user_id",
            "notifier_profile",
            "created_at",
            "last_event_id",
        ],
    ),
];

/// Every row of a board, per table, in the order Hermes wrote them.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `tasks`.
    pub tasks: Vec<Row>,
    /// `task_links`.
    pub links: Vec<Row>,
    /// `task_comments`.
    pub comments: Vec<Row>,
    /// `task_events`.
    pub events: Vec<Row>,
    /// `task_runs`.
    pub runs: Vec<Row>,
    /// `task_attachments`.
    pub attachments: Vec<Row>,
    /// `kanban_notify_subs`.
    pub subscriptions: Vec<Row>,
}

/// Refuses a schema other than Hermes 0.19's, naming every difference.
pub fn check_schema(conn: &Connection, shown: &str) -> Result<(), String> {
    let mut differences = Vec::new();
    for (table, expected) in TABLES {
        let columns = columns(conn, table).map_err(|err| format!("{shown}: {err}"))?;
        if columns.is_empty() {
            differences.push(format!("table {table} is missing"));
            continue;
        }
        for col in *expected {
            if !columns.iter().any(|c| c == col) {
                differences.push(format!("{table}.{col} is missing"));
            }
        }
        for col in &columns {
            if !expected.contains(&col.as_str()) {
                differences.push(format!("{table}.{col} is unknown"));
            }
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{shown}: not the kanban schema of {SUPPORTED}, the only one this import reads ({}); \
         nothing was imported. A board from an older Hermes is brought up to date by opening \
         it once with Hermes 0.19 (e.g. `hermes kanban list`)",
        differences.join(", ")
    ))
}

fn columns(conn: &Connection, table: &str) -> tokio_rusqlite::rusqlite::Result<Vec<String>> {
    conn.prepare(&format!("PRAGMA table_info({table})"))?
        .query_map([], |row| row.get::<_, String>(1))?
        .collect()
}

/// Reads every table (after [`check_schema`]).
pub fn read(conn: &Connection, shown: &str) -> Result<Source, String> {
    let all = |table: &str| rows(conn, table).map_err(|err| format!("{shown}: {table}: {err}"));
    Ok(Source {
        tasks: all("tasks")?,
        links: all("task_links")?,
        comments: all("task_comments")?,
        events: all("task_events")?,
        runs: all("task_runs")?,
        attachments: all("task_attachments")?,
        subscriptions: all("kanban_notify_subs")?,
    })
}

fn rows(conn: &Connection, table: &str) -> tokio_rusqlite::rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))?;
    let names: Vec<String> = stmt
        .column_names()
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    stmt.query_map([], |row| {
        let mut out = Row::new();
        for (i, name) in names.iter().enumerate() {
            out.insert(name.clone(), value(row.get_ref(i)?));
        }
        Ok(out)
    })?
    .collect()
}

fn value(v: ValueRef<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Array(b.iter().map(|&x| Value::from(x)).collect()),
    }
}

/// A column's text (numbers as their digits); `None` for NULL or a missing column.
pub fn text(row: &Row, col: &str) -> Option<String> {
    match row.get(col)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A column's integer (text holding one is read too); `None` for NULL or anything else.
pub fn int(row: &Row, col: &str) -> Option<i64> {
    match row.get(col)? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A Unix-seconds column as Unix milliseconds.
pub fn time_ms(row: &Row, col: &str) -> Option<i64> {
    int(row, col).map(|s| s.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hermes_like(conn: &Connection) {
        for (table, cols) in TABLES {
            conn.execute_batch(&format!("CREATE TABLE {table} ({});", cols.join(", ")))
                .unwrap();
        }
    }

    #[test]
    fn the_0_19_schema_passes_and_any_difference_is_named() {
        let conn = Connection::open_in_memory().unwrap();
        hermes_like(&conn);
        check_schema(&conn, "x.db").unwrap();
        conn.execute_batch("ALTER TABLE tasks ADD COLUMN colour TEXT; DROP TABLE task_links;")
            .unwrap();
        let err = check_schema(&conn, "x.db").unwrap_err();
        assert!(err.contains("tasks.colour is unknown"), "{err}");
        assert!(err.contains("table task_links is missing"), "{err}");
        assert!(err.contains("Hermes Agent 0.19"), "{err}");
    }

    #[test]
    fn rows_keep_every_value_and_read_leniently() {
        let conn = Connection::open_in_memory().unwrap();
        hermes_like(&conn);
        conn.execute_batch(
            "INSERT INTO tasks (id, title, priority, created_at) VALUES ('t_1', 'a', '7', 12);",
        )
        .unwrap();
        let source = read(&conn, "x.db").unwrap();
        let row = &source.tasks[0];
        assert_eq!(text(row, "id").as_deref(), Some("t_1"));
        assert_eq!(int(row, "priority"), Some(7));
        assert_eq!(time_ms(row, "created_at"), Some(12_000));
        assert_eq!(text(row, "body"), None);
        assert_eq!(row.len(), TABLES[0].1.len(), "every column is kept");
    }
}
