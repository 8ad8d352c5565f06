//! Where results go: stdout, as text for people or as JSON for programs.
//!
//! Every command computes both shapes and hands them to [`Output::print`], so the choice is
//! made in one place and `--json` cannot be forgotten by a new command. Messages about the
//! command itself (reconnects, warnings) go to stderr so stdout stays parseable.

use std::io::{self, Write as _};

use serde_json::Value;

/// Whether to print JSON or text.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json` was given.
    pub json: bool,
}

impl Output {
    /// Prints one result: `json` on one line with `--json`, else `human` (a trailing newline is
    /// added if missing; nothing is printed for an empty text).
    pub fn print(&self, human: &str, json: &Value) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        if self.json {
            writeln!(stdout, "{json}")?;
        } else if !human.is_empty() {
            stdout.write_all(human.as_bytes())?;
            if !human.ends_with('\n') {
                stdout.write_all(b"\n")?;
            }
        }
        stdout.flush()
    }

    /// Prints a list: a JSON array with `--json`, else one `line` per item.
    pub fn print_list<T>(
        &self,
        items: &[T],
        json: impl Fn(&T) -> Value,
        line: impl Fn(&T) -> String,
    ) -> io::Result<()> {
        let values = Value::Array(items.iter().map(json).collect());
        let text: String = items.iter().map(|item| line(item) + "\n").collect();
        self.print(&text, &values)
    }
}

/// A note for the person at the terminal, on stderr, prefixed like errors.
pub fn note(message: &str) {
    eprintln!("kanbanctl: {message}");
}
