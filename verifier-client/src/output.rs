//! Where results go: stdout, as a table for people or as JSON for programs (`-o`).
//!
//! Every command hands its response message and its text form to [`Output::message`], so the
//! choice is made in one place and `-o json` cannot be forgotten by a new command.
//!
//! - `json`: the proto3 JSON of the response message, serialised by the serde impls that
//!   pbjson generates for `kanband-proto` (camelCase names, enums by their proto names, 64-bit
//!   integers as strings, default values left out): the same shape grpcurl prints for the same
//!   call, never a field-by-field rendering of our own. One value per command on one line.
//! - `table` (the default) and `wide`: a header row, then one row per resource, columns
//!   aligned; `wide` adds columns. Commands whose answer is not a list of resources (a task's
//!   detail, stats, an id) print the same text for both.
//!
//! Messages about the command itself (reconnects, warnings) go to stderr so stdout stays
//! parseable.

use std::io::{self, Write as _};

use serde::Serialize;

/// `-o`: how results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns under a header row.
    #[default]
    Table,
    /// The table with more columns.
    Wide,
    /// The response message as proto3 JSON, as grpcurl prints it.
    Json,
}

/// How to print, chosen once from `-o` / `--json`.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// The chosen format.
    pub format: Format,
}

impl Output {
    /// Whether results are JSON.
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints one response: `message` as proto3 JSON with `-o json`, else `text(wide)` (a
    /// trailing newline is added if missing; nothing is printed for an empty text).
    pub fn message<M: Serialize>(
        &self,
        message: &M,
        text: impl FnOnce(bool) -> String,
    ) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut stdout, message).map_err(io::Error::other)?;
                stdout.write_all(b"\n")?;
            }
            Format::Table | Format::Wide => {
                let human = text(self.format == Format::Wide);
                if !human.is_empty() {
                    stdout.write_all(human.as_bytes())?;
                    if !human.ends_with('\n') {
                        stdout.write_all(b"\n")?;
                    }
                }
            }
        }
        stdout.flush()
    }
}

/// One column of a table: its header, and whether only `-o wide` shows it.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The header, upper case by convention (`ID`, `STATUS`).
    pub header: &'static str,
    /// Shown only with `-o wide`.
    pub wide: bool,
}

/// A column every table format shows.
pub const fn col(header: &'static str) -> Column {
    Column {
        header,
        wide: false,
    }
}

/// A column only `-o wide` shows.
pub const fn wide(header: &'static str) -> Column {
    Column { header, wide: true }
}

/// Renders `rows` (one cell per column of `columns`) under a header row, columns padded to
/// their widest cell and separated by two spaces; `-o wide` columns only when `show_wide`.
/// An empty cell is shown as `-`, so every row has every column.
pub fn table(columns: &[Column], rows: &[Vec<String>], show_wide: bool) -> String {
    let shown: Vec<usize> = (0..columns.len())
        .filter(|&i| show_wide || !columns[i].wide)
        .collect();
    let cell = |row: &Vec<String>, i: usize| -> String {
        match row.get(i).map(String::as_str) {
            None | Some("") => "-".to_owned(),
            Some(text) => text.replace(['\n', '\t'], " "),
        }
    };
    let mut widths: Vec<usize> = shown
        .iter()
        .map(|&i| columns[i].header.chars().count())
        .collect();
    for row in rows {
        for (w, &i) in widths.iter_mut().zip(&shown) {
            *w = (*w).max(cell(row, i).chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (n, (text, width)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(text);
            if n < last {
                let pad = width - text.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(
        shown
            .iter()
            .map(|&i| columns[i].header.to_owned())
            .collect(),
    );
    for row in rows {
        out.push_str(&line(shown.iter().map(|&i| cell(row, i)).collect()));
    }
    out
}

/// A note for the person at the terminal, on stderr, prefixed like errors.
pub fn note(message: &str) {
    eprintln!("kanbanctl: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_has_a_header_aligned_columns_and_wide_ones_on_request() {
        let columns = [col("ID"), col("STATUS"), wide("EPOCH"), col("TITLE")];
        let rows = vec![
            vec!["t_1".into(), "ready".into(), "3".into(), "say hi".into()],
            vec!["t_22".into(), "".into(), "12".into(), "two\nlines".into()],
        ];
        assert_eq!(
            table(&columns, &rows, false),
            "ID    STATUS  TITLE\n\
             t_1   ready   say hi\n\
             t_22  -       two lines\n"
        );
        assert_eq!(
            table(&columns, &rows, true),
            "ID    STATUS  EPOCH  TITLE\n\
             t_1   ready   3      say hi\n\
             t_22  -       12     two lines\n"
        );
        assert_eq!(table(&columns, &[], false), "ID  STATUS  TITLE\n");
    }
}
