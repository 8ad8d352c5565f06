//! What becomes of a Hermes board's attachment rows (`task_attachments`, each blob at its
//! `stored_path`, which Hermes writes under the board's attachments directory as
//! `<dir>/<task id>/<name>`).
//!
//! A row whose task is on the board and whose blob is there becomes a kanband attachment: the
//! store copies the bytes into its attachment directory by content (sha256) before the row
//! commits. A row whose blob is gone, or whose task is not on the board, is skipped with that
//! reason; a blob whose size differs from its row's is imported as it is, and listed.

use super::{
    layout::BoardFiles,
    plan::Mapped,
    source::{Row, Source, int, text, time_ms},
};
use crate::store::import::AttachmentPlan;

/// The media type of an attachment Hermes recorded none for.
const UNKNOWN_MEDIA_TYPE: &str = "application/octet-stream";

/// Plans each attachment row, or counts it skipped with its reason.
pub fn decide(board: &BoardFiles, source: &Source, mapped: &mut Mapped) {
    let mut planned = Vec::new();
    let mut problems = Vec::new();
    let Some(table) = mapped
        .tables
        .iter_mut()
        .find(|t| t.table == "task_attachments")
    else {
        return;
    };
    for row in &source.attachments {
        let Some(task) = text(row, "task_id").and_then(|id| mapped.positions.get(&id).copied())
        else {
            table.skip("names a task that is not on the board");
            continue;
        };
        let blob = blob_path(board, row);
        let Ok(meta) = std::fs::metadata(&blob).map(|m| (m.is_file(), m.len())) else {
            table.skip(format!("blob missing ({} is not a file)", blob.display()));
            continue;
        };
        if !meta.0 {
            table.skip(format!("blob missing ({} is not a file)", blob.display()));
            continue;
        }
        if let Some(size) = int(row, "size")
            && size != meta.1 as i64
        {
            problems.push(format!(
                "attachment {} of task {}: its row says {size} bytes, {} holds {}; imported as it is",
                int(row, "id").unwrap_or_default(),
                text(row, "task_id").unwrap_or_default(),
                blob.display(),
                meta.1
            ));
        }
        planned.push(AttachmentPlan {
            task,
            blob,
            name: text(row, "filename").unwrap_or_default(),
            media_type: text(row, "content_type")
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| UNKNOWN_MEDIA_TYPE.into()),
            uploaded_by: text(row, "uploaded_by").unwrap_or_default(),
            created_at: time_ms(row, "created_at").unwrap_or_default(),
        });
    }
    table.imported = planned.len();
    mapped.plan.attachments = planned;
    mapped.problems.extend(problems);
}

/// Where a row's blob is: its `stored_path` when set, else `<dir>/<task id>/<filename>`.
pub fn blob_path(board: &BoardFiles, row: &Row) -> std::path::PathBuf {
    match text(row, "stored_path").filter(|p| !p.is_empty()) {
        Some(path) => path.into(),
        None => board
            .attachments
            .join(text(row, "task_id").unwrap_or_default())
            .join(text(row, "filename").unwrap_or_default()),
    }
}
