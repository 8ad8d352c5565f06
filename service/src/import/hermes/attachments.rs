//! What becomes of a Hermes board's attachment rows (`task_attachments`, blobs under the
//! board's attachments directory, `<dir>/<task id>/<name>`).
//!
//! This kanband keeps no attachments, so every row is skipped with its reason, and a row
//! whose blob is gone says so; the blobs stay where Hermes put them.

use super::{
    layout::BoardFiles,
    plan::Mapped,
    source::{Source, text},
};

/// Counts each attachment row skipped, with its reason.
pub fn decide(board: &BoardFiles, source: &Source, mapped: &mut Mapped) {
    let Some(table) = mapped
        .tables
        .iter_mut()
        .find(|t| t.table == "task_attachments")
    else {
        return;
    };
    for row in &source.attachments {
        let blob = blob_path(board, row);
        if !blob.is_file() {
            table.skip(format!("blob missing ({} is not a file)", blob.display()));
        } else {
            table.skip(
                "this kanband keeps no attachments: the blob stays in the Hermes attachments directory",
            );
        }
    }
}

/// Where a row's blob is: its `stored_path` when set, else `<dir>/<task id>/<filename>`.
pub fn blob_path(board: &BoardFiles, row: &super::source::Row) -> std::path::PathBuf {
    match text(row, "stored_path").filter(|p| !p.is_empty()) {
        Some(path) => path.into(),
        None => board
            .attachments
            .join(text(row, "task_id").unwrap_or_default())
            .join(text(row, "filename").unwrap_or_default()),
    }
}
