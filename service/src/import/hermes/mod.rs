//! `kanband import hermes`: every board of a Hermes Agent 0.19 install (or the ones named),
//! into a stopped kanband's data directory, in one transaction.
//!
//! - [`layout`]: where the boards are under a Hermes root.
//! - [`snapshot`]: the private read-only copy of each board's database, by the backup API.
//! - [`source`]: the schema check (Hermes 0.19's exactly) and the rows read.
//! - [`plan`]: the mapping rules from Hermes's rows to kanband's.
//! - [`attachments`]: what becomes of the attachment rows and their blobs.
//!
//! Every board is read and checked before anything is written: a board that cannot be read
//! (corrupt, not a database, another schema) fails the whole import, which then changes
//! nothing. Problems in single rows (a dangling link, a missing blob) are listed and the
//! rest is imported.

pub mod attachments;
pub mod layout;
pub mod plan;
pub mod snapshot;
pub mod source;

use std::path::{Path, PathBuf};

use super::{
    ImportError, Scratch, open_offline,
    report::{BoardReport, Outcome, Report},
};
use crate::{
    clock::now_ms,
    store::{DB_FILE, import::BoardOutcome},
};

/// What to import, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Hermes root.
    pub root: PathBuf,
    /// Only these boards (all when empty).
    pub boards: Vec<String>,
    /// Read, map and write everything, then roll the transaction back.
    pub dry_run: bool,
    /// The kanband data directory (kanband must not be running on it).
    pub data_dir: PathBuf,
}

/// Imports the boards, or changes nothing and says why.
pub async fn import(options: &Options) -> Result<Report, ImportError> {
    let (boards, skipped_dirs) =
        layout::boards(&options.root, &options.boards).map_err(ImportError::Source)?;

    // Every board is read, checked and mapped before kanband's directory is touched, so a
    // refusal leaves it as it was (not even created). Snapshots go into a private scratch
    // directory, removed at the end.
    let scratch = Scratch::create(&std::env::temp_dir())?;
    let now = now_ms();
    let mut mapped = Vec::with_capacity(boards.len());
    for (n, board) in boards.iter().enumerate() {
        let path = canonical(&board.db);
        let conn = snapshot::take(&board.db, &scratch.path().join(format!("{n}.db")))
            .map_err(ImportError::Source)?;
        source::check_schema(&conn, &path).map_err(ImportError::Source)?;
        let rows = source::read(&conn, &path).map_err(ImportError::Source)?;
        drop(conn);
        let metadata = board_json(&board.metadata)?;
        let input = plan::BoardInput {
            slug: &board.slug,
            path: &path,
            metadata,
            now,
        };
        let mut board_map = plan::map(&input, &rows);
        attachments::decide(board, &rows, &mut board_map);
        board_map.plan.report = serde_json::json!({
            "tables": board_map.tables,
            "problems": board_map.problems,
        });
        mapped.push(board_map);
    }
    drop(scratch);

    // A dry run on a data directory that holds no board yet writes into a throwaway one, so
    // that it creates nothing where it was pointed.
    let throwaway = if options.dry_run && !options.data_dir.join(DB_FILE).exists() {
        Some(Scratch::create(&std::env::temp_dir())?)
    } else {
        None
    };
    let data_dir = throwaway
        .as_ref()
        .map_or(options.data_dir.as_path(), |t| t.path());
    // Taking the directory's lock refuses a running kanband (and keeps one from starting).
    let store = open_offline(data_dir).await?;
    let plan = crate::store::import::Plan {
        boards: mapped.iter().map(|m| m.plan.clone()).collect(),
    };
    let outcomes = store.import(plan, options.dry_run).await;
    let closed = store.close().await;
    let outcomes = outcomes?;
    closed?;

    let mut report = Report {
        dry_run: options.dry_run,
        boards: Vec::new(),
        skipped_dirs,
    };
    for ((board, mapped), outcome) in boards.iter().zip(mapped).zip(outcomes) {
        let mut problems = mapped.problems;
        let (outcome, task_ids) = match outcome {
            BoardOutcome::AlreadyImported { board, at } => {
                (Outcome::AlreadyImported { board, at }, Vec::new())
            }
            BoardOutcome::Imported(written) => {
                for (at, key) in written.displaced_keys {
                    problems.push(format!(
                        "task {}: idempotency key {key:?} is already a live kanband task's on board {}: imported without it (its source record keeps it)",
                        mapped.hermes_ids[at], board.slug
                    ));
                }
                let ids = mapped.hermes_ids.into_iter().zip(written.tasks).collect();
                (Outcome::Imported, ids)
            }
        };
        report.boards.push(BoardReport {
            slug: board.slug.clone(),
            path: canonical(&board.db),
            outcome,
            tables: mapped.tables,
            problems,
            task_ids,
        });
    }
    Ok(report)
}

fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// `board.json`, if the board has one; malformed, it is ignored as Hermes ignores it.
fn board_json(
    path: &Path,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ImportError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(serde_json::from_str(&text).ok()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ImportError::Io {
            what: format!("cannot read {}", path.display()),
            source,
        }),
    }
}
