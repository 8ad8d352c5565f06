//! Who this supervisor is: a machine id that survives restarts (tasks may target a machine)
//! and the host name shown to people.

use std::{
    io,
    path::{Path, PathBuf},
};

/// Where the machine id is kept, under the workspaces root.
pub(crate) fn state_file(workspaces_root: &Path) -> PathBuf {
    workspaces_root.join(".kanband-gateway").join("machine-id")
}

/// Reads the machine id from `path`, or creates it (`m_` and 32 random hex digits) if the file
/// is missing or empty. The file is written to a temporary name and renamed, so a crash never
/// leaves half an id.
pub(crate) fn load_or_create(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| io::Error::other(err.to_string()))?;
    let id: String = std::iter::once("m_".to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, path)?;
    Ok(id)
}

/// The host name, or `unknown`.
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_created_once_and_kept() {
        let root = tempfile::tempdir().unwrap();
        let path = state_file(root.path());
        let first = load_or_create(&path).unwrap();
        assert!(first.starts_with("m_") && first.len() == 34, "{first}");
        assert_eq!(load_or_create(&path).unwrap(), first);
        std::fs::write(&path, "  given-id \n").unwrap();
        assert_eq!(load_or_create(&path).unwrap(), "given-id");
        assert!(!hostname().is_empty());
    }
}
