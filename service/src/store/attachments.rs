//! Attachment operations: upload (the blob in place first, then its row), list, read for a
//! download, delete. The bytes are kept by [`super::blobs`]; a blob no row names any more is
//! removed once the change that freed it has committed.

use tokio_rusqlite::rusqlite::{OptionalExtension as _, params};

use super::{
    Store,
    blobs::{Stored, Upload},
    model::{Attachment, NewAttachment},
    rows::{self, ATTACHMENT_COLUMNS},
    tx::{
        claims,
        events::{self, NewEvent},
        read,
    },
};
use crate::domain::Author;
use crate::{
    clock::now_ms,
    domain::{EventKind, ids},
    error::{Error, Result},
};

fn attachment_in(conn: &tokio_rusqlite::rusqlite::Connection, id: &str) -> Result<Attachment> {
    conn.prepare_cached(&format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?1"
    ))?
    .query_row([id], rows::attachment)
    .optional()?
    .ok_or_else(|| Error::not_found("attachment", id))
}

impl Store {
    /// The largest attachment accepted, in bytes.
    pub fn attachment_max_bytes(&self) -> u64 {
        self.blobs.max_bytes()
    }

    /// Refuses an upload before its bytes arrive: the task must exist and a claim token must be
    /// its live claim. [`Store::attach`] checks both again when it writes the row.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn check_attachable(&self, new: NewAttachment) -> Result<()> {
        let leases = self.leases.clone();
        self.call(move |conn| {
            let task = read::task(conn, &new.task_id)?;
            if let Some(token) = &new.claim_token {
                claims::fenced_on(conn, &*leases, token, &task)?;
            }
            Ok(())
        })
        .await
    }

    /// Starts writing an upload's bytes to a temporary file in the blob directory.
    pub(crate) async fn start_upload(&self) -> Result<Upload> {
        self.blobs.upload().await
    }

    /// Puts the upload's blob in place (synced, renamed, directory synced), then commits its
    /// row and the `attached` event. A refused row (task gone, claim lost) stores nothing: the
    /// blob is removed again unless another row names the same bytes.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn attach(
        &self,
        new: NewAttachment,
        upload: Upload,
        by: Author,
    ) -> Result<Attachment> {
        let stored = upload.finish(&self.blobs).await?;
        let sha256 = stored.sha256.clone();
        let written = self.insert_attachment(new, &stored, by).await;
        drop(stored);
        if written.is_err() {
            self.release_blobs(vec![sha256]).await;
        }
        written
    }

    async fn insert_attachment(
        &self,
        new: NewAttachment,
        stored: &Stored,
        by: Author,
    ) -> Result<Attachment> {
        let leases = self.leases.clone();
        let (sha256, size) = (stored.sha256.clone(), stored.size);
        self.write(move |tx, _| {
            let task = read::task(tx, &new.task_id)?;
            if let Some(token) = &new.claim_token {
                claims::fenced_on(tx, &*leases, token, &task)?;
            }
            let id = ids::ordered(ids::ATTACHMENT);
            tx.prepare_cached(
                "INSERT INTO attachments
                     (id, task_id, name, media_type, size, sha256, uploaded_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id,
                task.id,
                new.name,
                new.media_type,
                size as i64,
                sha256,
                new.uploaded_by,
                now_ms()
            ])?;
            events::append(
                tx,
                NewEvent {
                    board: &task.board,
                    task_id: &task.id,
                    kind: EventKind::Attached,
                    by: &by,
                    details: &[
                        ("attachment_id", id.clone()),
                        ("name", new.name.clone()),
                        ("size", size.to_string()),
                        ("sha256", sha256.clone()),
                    ],
                },
            )?;
            attachment_in(tx, &id)
        })
        .await
    }

    /// A task's attachments, oldest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_attachments(&self, task_id: String) -> Result<Vec<Attachment>> {
        self.call(move |conn| {
            read::task(conn, &task_id)?;
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE task_id = ?1 ORDER BY id"
                ))?
                .query_map([&task_id], rows::attachment)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// An attachment and its blob, opened for reading. The open file stays readable even if
    /// the attachment is deleted meanwhile.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn open_attachment(&self, id: String) -> Result<(Attachment, tokio::fs::File)> {
        let attachment = self.call(move |conn| attachment_in(conn, &id)).await?;
        let path = self.blobs.path(&attachment.sha256);
        let file = tokio::fs::File::open(&path).await.map_err(|err| {
            tracing::error!(
                path = %path.display(),
                attachment = %attachment.id,
                error = %err,
                "an attachment's blob cannot be opened"
            );
            Error::Internal
        })?;
        Ok((attachment, file))
    }

    /// Deletes an attachment and records `attachment_deleted`; its blob is removed once no row
    /// names it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_attachment(&self, id: String, by: Author) -> Result<Attachment> {
        let deleted = self
            .write(move |tx, _| {
                let attachment = attachment_in(tx, &id)?;
                let task = read::task(tx, &attachment.task_id)?;
                tx.execute("DELETE FROM attachments WHERE id = ?1", [&id])?;
                events::append(
                    tx,
                    NewEvent {
                        board: &task.board,
                        task_id: &task.id,
                        kind: EventKind::AttachmentDeleted,
                        by: &by,
                        details: &[
                            ("attachment_id", attachment.id.clone()),
                            ("name", attachment.name.clone()),
                        ],
                    },
                )?;
                Ok(attachment)
            })
            .await?;
        self.release_blobs(vec![deleted.sha256.clone()]).await;
        Ok(deleted)
    }

    /// Removes those of `shas` that no committed row names (after the change that freed them
    /// committed). A failure is logged: the start-up sweep removes what is left.
    pub(super) async fn release_blobs(&self, shas: Vec<String>) {
        let blobs = self.blobs.clone();
        if let Err(err) = self
            .call(move |conn| blobs.remove_unnamed(conn, shas))
            .await
        {
            tracing::warn!(error = %err, "cannot remove unused attachment blobs; the next start-up sweep will");
        }
    }
}
