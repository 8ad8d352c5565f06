//! What an import read, imported and skipped: per board and per table, with the problems
//! found and the id each task got, printed for the operator and kept (as JSON) in the
//! `imports` row of each board.

use std::{collections::BTreeMap, fmt};

/// The counts of one source table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    /// The source table.
    pub table: &'static str,
    /// Rows read.
    pub read: usize,
    /// Rows imported.
    pub imported: usize,
    /// Rows skipped, counted by reason.
    pub skipped: BTreeMap<String, usize>,
}

impl TableCount {
    /// A table with `read` rows, none imported yet.
    pub fn new(table: &'static str, read: usize) -> Self {
        TableCount {
            table,
            read,
            imported: 0,
            skipped: BTreeMap::new(),
        }
    }

    /// Counts a row skipped for `reason`.
    pub fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }
}

/// What became of one board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Imported (or, in a dry run, would be).
    Imported,
    /// Imported before: nothing was written.
    AlreadyImported {
        /// The kanband board it went into.
        board: String,
        /// When (Unix ms).
        at: i64,
    },
}

/// One board's report.
#[derive(Debug, Clone)]
pub struct BoardReport {
    /// The source board's slug.
    pub slug: String,
    /// The database read.
    pub path: String,
    /// What became of it.
    pub outcome: Outcome,
    /// Per table.
    pub tables: Vec<TableCount>,
    /// Problems found in rows that were imported anyway, or skipped.
    pub problems: Vec<String>,
    /// Source task id -> kanband task id.
    pub task_ids: Vec<(String, String)>,
}

/// The whole import's report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Whether nothing was written on purpose.
    pub dry_run: bool,
    /// The boards, in import order.
    pub boards: Vec<BoardReport>,
    /// Directories under the root that were not boards, with why.
    pub skipped_dirs: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for dir in &self.skipped_dirs {
            writeln!(f, "skipped {dir}")?;
        }
        for board in &self.boards {
            write!(f, "board {} ({}): ", board.slug, board.path)?;
            match &board.outcome {
                Outcome::AlreadyImported { board: into, at } => {
                    writeln!(
                        f,
                        "already imported into kanband board {into} (at {at} Unix ms); nothing written"
                    )?;
                    continue;
                }
                Outcome::Imported if self.dry_run => {
                    writeln!(f, "would be imported into kanband board {}", board.slug)?
                }
                Outcome::Imported => writeln!(f, "imported into kanband board {}", board.slug)?,
            }
            writeln!(
                f,
                "  {:<20} {:>8} {:>8} {:>8}",
                "table", "read", "imported", "skipped"
            )?;
            for t in &board.tables {
                let skipped: usize = t.skipped.values().sum();
                writeln!(
                    f,
                    "  {:<20} {:>8} {:>8} {:>8}",
                    t.table, t.read, t.imported, skipped
                )?;
                for (reason, n) in &t.skipped {
                    writeln!(f, "    skipped {n}: {reason}")?;
                }
            }
            for problem in &board.problems {
                writeln!(f, "  problem: {problem}")?;
            }
            for (from, to) in &board.task_ids {
                writeln!(f, "  task {from} -> {to}")?;
            }
        }
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        Ok(())
    }
}
