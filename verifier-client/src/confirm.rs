//! Confirmation of destructive verbs (`board reset`, `board archive`, `token revoke`,
//! `attachment delete`): on a terminal kanbanctl asks and goes on only on `y` or `yes`;
//! without a terminal (a script, a pipe) it needs `--yes`, and without it stops with a usage
//! error (exit 2) before connecting, so a script cannot destroy something by accident.

use std::io::{self, BufRead as _, IsTerminal as _, Write as _};

use crate::{Error, Result};

/// Goes on when `yes` was given, or the person at the terminal answers yes to "`what`?".
pub(crate) fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = io::stdin();
    if !stdin.is_terminal() || !io::stderr().is_terminal() {
        return Err(Error::usage(format!(
            "{what}: not confirmed; pass --yes to do it without a terminal"
        )));
    }
    eprint!("kanbanctl: {what}? [y/N] ");
    io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if accepted(&answer) {
        Ok(())
    } else {
        Err(Error::usage(format!("{what}: not confirmed")))
    }
}

/// Whether a typed answer means yes.
fn accepted(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::accepted;

    #[test]
    fn only_y_or_yes_goes_on() {
        for yes in ["y\n", "Y", " yes ", "YES\n"] {
            assert!(accepted(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "sure"] {
            assert!(!accepted(no), "{no:?}");
        }
    }
}
