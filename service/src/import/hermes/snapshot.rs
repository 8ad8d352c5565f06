//! A private, read-only copy of a Hermes board's database, taken with SQLite's online backup
//! API.
//!
//! The source is opened read-only and copied in one backup step, which is one read
//! transaction: in WAL mode (Hermes's) it never blocks Hermes's writers, and what is copied is
//! one consistent state of the board, whatever Hermes commits meanwhile. Nothing is ever
//! written to the source, its WAL or its lock files. Every later read is of the copy, opened
//! read-only after an integrity check, so a corrupt or half-written source is refused before
//! anything is mapped.

use std::{path::Path, time::Duration};

use tokio_rusqlite::rusqlite::{
    Connection, OpenFlags,
    backup::{Backup, StepResult},
};

/// How long the copy waits for a writer's lock on a source in rollback-journal mode.
const SOURCE_BUSY: Duration = Duration::from_secs(10);

/// Copies `source` into `target` (a new file) and opens the copy read-only.
pub fn take(source: &Path, target: &Path) -> Result<Connection, String> {
    let shown = source.display();
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| format!("{shown}: cannot open it read-only: {err}"))?;
    src.busy_timeout(SOURCE_BUSY)
        .map_err(|err| format!("{shown}: {err}"))?;
    {
        let mut dst = Connection::open(target)
            .map_err(|err| format!("{}: cannot create the snapshot: {err}", target.display()))?;
        let backup = Backup::new(&src, &mut dst)
            .map_err(|err| format!("{shown}: cannot start copying it: {err}"))?;
        // All pages in one step: one read transaction, so one consistent state of the board.
        let give_up = std::time::Instant::now() + SOURCE_BUSY;
        loop {
            match backup.step(-1) {
                Ok(StepResult::Done) => break,
                Ok(StepResult::More) => {}
                Ok(StepResult::Busy | StepResult::Locked)
                    if std::time::Instant::now() < give_up =>
                {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(_) => {
                    return Err(format!(
                        "{shown}: a writer kept it locked for {SOURCE_BUSY:?}; try again"
                    ));
                }
                Err(err) => return Err(unreadable(source, &err.to_string())),
            }
        }
    }
    drop(src);
    let copy = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| format!("{}: cannot open the snapshot: {err}", target.display()))?;
    let problems: Vec<String> = copy
        .prepare("PRAGMA integrity_check(20)")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|err| unreadable(source, &err.to_string()))?;
    if problems != ["ok"] {
        return Err(unreadable(source, &problems.join("; ")));
    }
    Ok(copy)
}

fn unreadable(source: &Path, why: &str) -> String {
    format!(
        "{}: corrupt, half-written or not a SQLite database ({why}); nothing was imported. \
         Check it with `sqlite3 {} 'PRAGMA integrity_check'`",
        source.display(),
        source.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_database_and_refuses_one_that_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("kanban.db");
        let conn = Connection::open(&source).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        let copy = take(&source, &dir.path().join("copy.db")).unwrap();
        let x: i64 = copy.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 1);
        assert!(
            copy.execute("INSERT INTO t VALUES (2)", []).is_err(),
            "read-only"
        );
        drop(conn);

        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
        let err = take(&junk, &dir.path().join("copy2.db")).unwrap_err();
        assert!(err.contains("not a SQLite database"), "{err}");
    }
}
