//! Embedded, versioned schema migrations, tracked in `PRAGMA user_version` and applied at
//! start-up in one transaction.

use tokio_rusqlite::rusqlite::{Connection, TransactionBehavior};

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_leases.sql"),
    include_str!("../../migrations/0003_notifications.sql"),
    include_str!("../../migrations/0004_dispatch_index.sql"),
    include_str!("../../migrations/0005_lifecycle.sql"),
    include_str!("../../migrations/0006_settings.sql"),
    include_str!("../../migrations/0007_dispatch_by_assignee.sql"),
    include_str!("../../migrations/0008_attachments.sql"),
    include_str!("../../migrations/0009_imports.sql"),
    include_str!("../../migrations/0010_auth.sql"),
    include_str!("../../migrations/0011_event_identity.sql"),
    include_str!("../../migrations/0012_token_expiry.sql"),
    include_str!("../../migrations/0013_events_board_index.sql"),
    include_str!("../../migrations/0014_checks_without_in_lists.sql"),
    include_str!("../../migrations/0015_dispatch_indexes_partial.sql"),
];

/// The schema version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Why migration failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The file was written by a newer kanband.
    #[error(
        "the database has schema version {found}, newer than this kanband's {VERSION}; upgrade kanband"
    )]
    TooNew {
        /// The version found in the file.
        found: u32,
    },
    /// SQLite refused a statement.
    #[error("migration failed: {0}")]
    Sqlite(#[from] tokio_rusqlite::rusqlite::Error),
}

/// Brings the schema up to [`VERSION`] and returns the version found before. Writes nothing
/// when the schema is current, so a full disk does not stop start-up.
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, MigrationError> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found == VERSION {
        return Ok(found);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > VERSION {
        return Err(MigrationError::TooNew { found });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::Status;

    #[test]
    fn migrating_twice_is_a_no_op_and_newer_files_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), VERSION);
        let boards: i64 = conn
            .query_row("SELECT count(*) FROM boards", [], |r| r.get(0))
            .unwrap();
        assert_eq!(boards, 1, "the default board exists once");
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrationError::TooNew { .. })
        ));
    }

    #[test]
    fn events_from_before_identities_read_as_unknown() {
        let conn = migrated_from(
            |sql| sql.contains("ADD COLUMN identity "),
            |conn| {
                conn.execute(
                    "INSERT INTO events (board, kind, actor, created_at)
                     VALUES ('default', 'x', 'bob', 1)",
                    [],
                )
                .unwrap();
            },
        );
        let (identity, role, actor): (String, String, String) = conn
            .query_row(
                "SELECT identity, identity_role, actor FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((identity.as_str(), role.as_str()), ("unknown", "unknown"));
        assert_eq!(actor, "bob", "the old actor stays the note");
    }

    /// A database migrated in two steps, as a file written before a change would be: up to
    /// the first migration `is_the_change` picks, then (after `written`) by [`migrate`].
    fn migrated_from(
        is_the_change: impl Fn(&str) -> bool,
        written: impl FnOnce(&Connection),
    ) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|sql| is_the_change(sql))
            .expect("the migration");
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before as u32)
            .unwrap();
        written(&conn);
        assert_eq!(migrate(&mut conn).unwrap(), before as u32);
        conn
    }

    /// The opcodes SQLite compiles `sql` to.
    fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
        let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let mut rows = explain.raw_query();
        let mut ops = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            ops.push(row.get(1).unwrap());
        }
        ops
    }

    #[test]
    fn status_checks_build_no_temporary_btree_per_row_and_still_refuse() {
        // Migrated in two steps, as a file written before the change would be.
        let conn = migrated_from(
            |sql| sql.contains("CHECK constraints of tasks and claims"),
            |_| {},
        );
        // A row of each table whose status (or state) is the one value bound.
        const INSERT_TASK: &str = "INSERT INTO tasks (id, board, title, status, created_at,
                                                      updated_at)
                                   VALUES (?1, 'default', 't', ?1, 1, 1)";
        const INSERT_CLAIM: &str = "INSERT INTO claims (token, task_id, board, epoch, run_id,
                                                        session_id, profile, state, granted_at,
                                                        expires_at)
                                    VALUES (?1, ?1, 'default', 1, 'r', 's', 'p', ?1, 1, 1)";
        for sql in [
            "UPDATE tasks SET status = ?2 WHERE id = ?1",
            INSERT_TASK,
            "UPDATE claims SET state = ?2 WHERE token = ?1",
            INSERT_CLAIM,
        ] {
            let ops = opcodes(&conn, sql);
            assert!(
                !ops.iter().any(|op| op == "OpenEphemeral"),
                "{sql} builds a temporary b-tree: {ops:?}"
            );
        }
        let insert_task = |status: &str| conn.execute(INSERT_TASK, [status]);
        for status in Status::ALL {
            insert_task(status.as_str()).unwrap();
        }
        let refused = insert_task("bogus").unwrap_err().to_string();
        assert!(refused.contains("CHECK constraint failed"), "{refused}");
        conn.execute(
            "INSERT INTO sessions (id, machine_id, profiles, slots, ttl_ms, opened_at)
             VALUES ('s', 'm', '[]', 1, 1, 1)",
            [],
        )
        .unwrap();
        let insert_claim = |state: &str| conn.execute(INSERT_CLAIM, [state]);
        for state in ["live", "revoking", "ended"] {
            insert_claim(state).unwrap();
        }
        let refused = insert_claim("bogus").unwrap_err().to_string();
        assert!(refused.contains("CHECK constraint failed"), "{refused}");
    }

    #[test]
    fn the_dispatch_indexes_hold_only_the_two_lanes() {
        // A task in every status, written before the change.
        let conn = migrated_from(
            |sql| sql.contains("dispatch indexes hold only the tasks"),
            |conn| {
                for status in Status::ALL {
                    conn.execute(
                        "INSERT INTO tasks (id, board, title, assignee, status, created_at,
                                            updated_at)
                         VALUES (?1, 'default', 't', 'coder', ?1, 1, 1)",
                        [status.as_str()],
                    )
                    .unwrap();
                }
            },
        );
        let entries = |index: &str| -> i64 {
            conn.query_row(
                "SELECT sum(ncell) FROM dbstat WHERE name = ?1 AND pagetype = 'leaf'",
                [index],
                |r| r.get(0),
            )
            .unwrap()
        };
        let indexes = ["tasks_dispatch", "tasks_dispatch_by_assignee"];
        for index in indexes {
            assert_eq!(
                entries(index),
                2,
                "{index} holds the ready and the review task"
            );
        }
        // A claim takes the ready task out of its lane; its complete changes neither index.
        let set = |status: &str| {
            conn.execute("UPDATE tasks SET status = ?1 WHERE id = 'ready'", [status])
                .unwrap();
        };
        set("running");
        for index in indexes {
            assert_eq!(entries(index), 1, "{index} after the claim");
        }
        set("done");
        set("ready");
        for index in indexes {
            assert_eq!(entries(index), 2, "{index} after the task is ready again");
        }
        let in_tasks: i64 = conn
            .query_row(
                "SELECT sum(ncell) FROM dbstat WHERE name = 'tasks'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            in_tasks,
            Status::ALL.len() as i64,
            "every task is still there"
        );
    }
}
