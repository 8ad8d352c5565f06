//! Log lines stay small: an error's text can carry what the request sent (SQLite quotes the
//! whole statement of a failing prepare, and a statement can be as large as the request that
//! built it), so errors are logged through [`loggable`], which keeps the start and says how
//! much was left out.

use std::fmt::Display;

/// Longest error text a log line carries, in bytes.
pub(crate) const LOGGED_MAX: usize = 512;

/// `err`'s text, cut to [`LOGGED_MAX`] bytes (at a character boundary) with a note of the
/// length it had.
pub(crate) fn loggable(err: &dyn Display) -> String {
    let mut text = err.to_string();
    if text.len() > LOGGED_MAX {
        let full = text.len();
        let mut cut = LOGGED_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("... ({full} bytes in all)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use tokio_rusqlite::rusqlite;

    use super::*;

    #[test]
    fn a_statement_the_size_of_a_request_is_not_logged_whole() {
        let sql = format!(
            "SELECT * FROM tasks WHERE status IN ({})",
            vec!["?"; 300_000].join(", ")
        );
        let err = rusqlite::Error::SqlInputError {
            error: rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            msg: "too many SQL variables".into(),
            sql,
            offset: 0,
        };
        let text = loggable(&err);
        assert!(
            text.starts_with("too many SQL variables in SELECT"),
            "{text}"
        );
        assert!(text.len() < LOGGED_MAX + 40, "{} bytes", text.len());
        assert!(text.ends_with("bytes in all)"), "{text}");
        assert_eq!(loggable(&"short"), "short");
    }
}
