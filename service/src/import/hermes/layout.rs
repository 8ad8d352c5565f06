//! Where a Hermes Agent 0.19 install keeps its boards (`hermes_cli/kanban_db.py`): the root is
//! `HERMES_KANBAN_HOME`, else the Hermes home; the `default` board's database is
//! `<root>/kanban.db` with its files under `<root>/kanban/`, every other board is
//! `<root>/kanban/boards/<slug>/` with its `kanban.db`, `board.json` and files.

use std::path::{Path, PathBuf};

use crate::domain::{ids::DEFAULT_BOARD, validate};

/// One board's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardFiles {
    /// Its slug (the directory name; `default` for the root's own database).
    pub slug: String,
    /// Its database.
    pub db: PathBuf,
    /// Its `board.json` (display metadata), which may be absent.
    pub metadata: PathBuf,
    /// Where its attachment blobs live (`<dir>/<task id>/<name>`).
    pub attachments: PathBuf,
}

/// The Hermes root to read when none is given: `HERMES_KANBAN_HOME`, else the root of
/// `HERMES_HOME` (its parent's parent for a profile home `<root>/profiles/<name>`), else
/// `~/.hermes`, as Hermes resolves it.
pub fn default_root() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(root) = var("HERMES_KANBAN_HOME") {
        return Some(root);
    }
    if let Some(home) = var("HERMES_HOME") {
        let profile_home = home
            .parent()
            .is_some_and(|p| p.file_name().is_some_and(|n| n == "profiles"));
        return Some(if profile_home {
            home.parent()?.parent()?.to_owned()
        } else {
            home
        });
    }
    var("HOME").map(|home| home.join(".hermes"))
}

/// The boards under `root` (all of them, or the ones named in `only`), `default` first, the
/// others in slug order; and the directories skipped, with why.
pub fn boards(root: &Path, only: &[String]) -> Result<(Vec<BoardFiles>, Vec<String>), String> {
    if !root.is_dir() {
        return Err(format!(
            "{} is not a Hermes root: it is not a directory",
            root.display()
        ));
    }
    let kanban = root.join("kanban");
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let default_db = root.join("kanban.db");
    if default_db.is_file() {
        found.push(BoardFiles {
            slug: DEFAULT_BOARD.into(),
            db: default_db,
            metadata: kanban.join("boards").join(DEFAULT_BOARD).join("board.json"),
            attachments: kanban.join("attachments"),
        });
    }
    if let Ok(entries) = std::fs::read_dir(kanban.join("boards")) {
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let slug = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if slug == DEFAULT_BOARD || slug == "_archived" {
                continue;
            }
            if validate::slug("board", &slug).is_err() {
                skipped.push(format!(
                    "{}: not a board slug, skipped (Hermes does not list it either)",
                    dir.display()
                ));
                continue;
            }
            let db = dir.join("kanban.db");
            if !db.is_file() {
                skipped.push(format!(
                    "{}: no kanban.db, skipped (a board Hermes never opened holds no tasks)",
                    dir.display()
                ));
                continue;
            }
            found.push(BoardFiles {
                slug,
                db,
                metadata: dir.join("board.json"),
                attachments: dir.join("attachments"),
            });
        }
    }
    if found.is_empty() {
        return Err(format!(
            "{} is not a Hermes root: it has no kanban.db and no kanban/boards/<slug>/kanban.db \
             (Hermes keeps its boards in HERMES_KANBAN_HOME, else its home, ~/.hermes)",
            root.display()
        ));
    }
    if only.is_empty() {
        return Ok((found, skipped));
    }
    let mut chosen = Vec::new();
    for slug in only {
        match found.iter().find(|b| &b.slug == slug) {
            Some(board) if !chosen.contains(board) => chosen.push(board.clone()),
            Some(_) => {}
            None => {
                let names: Vec<&str> = found.iter().map(|b| b.slug.as_str()).collect();
                return Err(format!(
                    "--board {slug}: no such board under {} (its boards: {})",
                    root.display(),
                    names.join(", ")
                ));
            }
        }
    }
    Ok((chosen, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn finds_the_default_board_and_named_boards_in_order() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("kanban.db"));
        touch(&root.path().join("kanban/boards/zeta/kanban.db"));
        touch(&root.path().join("kanban/boards/alpha/kanban.db"));
        touch(&root.path().join("kanban/boards/empty/board.json"));
        touch(&root.path().join("kanban/boards/_archived/old-1/kanban.db"));
        let (found, skipped) = boards(root.path(), &[]).unwrap();
        let slugs: Vec<&str> = found.iter().map(|b| b.slug.as_str()).collect();
        assert_eq!(slugs, ["default", "alpha", "zeta"]);
        assert_eq!(found[0].attachments, root.path().join("kanban/attachments"));
        assert_eq!(
            found[1].attachments,
            root.path().join("kanban/boards/alpha/attachments")
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("empty: no kanban.db"), "{skipped:?}");

        let (only, _) = boards(root.path(), &["zeta".into()]).unwrap();
        assert_eq!(only.len(), 1);
        let err = boards(root.path(), &["nope".into()]).unwrap_err();
        assert!(
            err.contains("--board nope") && err.contains("default, alpha, zeta"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_without_boards_is_not_a_root() {
        let root = tempfile::tempdir().unwrap();
        let err = boards(root.path(), &[]).unwrap_err();
        assert!(err.contains("is not a Hermes root"), "{err}");
        let err = boards(&root.path().join("missing"), &[]).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
    }
}
