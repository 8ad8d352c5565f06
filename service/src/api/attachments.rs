//! `kanban.v1.Attachments`: the upload is read into a temporary file as it arrives (never held
//! in memory whole), and a download streams the blob in chunks.

use std::{pin::Pin, sync::Arc};

use kanband_proto::pb::{self, attachments_server::Attachments, upload_request::Part};
use tokio::io::AsyncReadExt as _;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::requests::{self, task_id};
use crate::{
    auth::{self, rules},
    coordinator::Coordinator,
    domain::limits,
    error::{Error, Result},
};

/// The Attachments service.
#[derive(Debug, Clone)]
pub struct AttachmentsService {
    app: Arc<Coordinator>,
}

impl AttachmentsService {
    /// Serves attachments from the shared state.
    pub fn new(app: Arc<Coordinator>) -> Self {
        AttachmentsService { app }
    }
}

/// Reads `file` in chunks of at most `chunk` bytes into a channel, until the end or until the
/// receiver is dropped; a read error is the last item.
pub(crate) fn read_chunks(
    mut file: tokio::fs::File,
    chunk: usize,
) -> tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let mut buf = vec![0; chunk];
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).await.is_err() {
                        break;
                    }
                }
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                    break;
                }
            }
        }
    });
    rx
}

fn first_header(first: Option<pb::UploadRequest>) -> Result<pb::UploadHeader> {
    match first.and_then(|m| m.part) {
        Some(Part::Header(header)) => Ok(header),
        Some(Part::Chunk(_)) => Err(Error::invalid(
            "header",
            "the first message of an upload must carry the header, not a chunk",
        )),
        None => Err(Error::invalid(
            "header",
            "the upload is empty: its first message must carry the header",
        )),
    }
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Attachments for AttachmentsService {
    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadRequest>>,
    ) -> Result<Response<pb::Attachment>, Status> {
        let caller = auth::caller(&request);
        let mut parts = request.into_inner();
        let mut new = requests::new_attachment(first_header(parts.message().await?)?)?;
        rules::may_attach(&caller, &new.task_id)?;
        if new.claim_token.is_none() {
            // A worker's upload is fenced by its own claim even when it names none.
            new.claim_token = caller.claim().map(|(token, _)| token.to_owned());
        }
        let store = self.app.store();
        store.check_attachable(new.clone()).await?;
        let mut upload = store.start_upload().await?;
        // A stream that breaks off drops the upload, which removes its temporary file.
        while let Some(message) = parts.message().await? {
            match message.part {
                Some(Part::Chunk(bytes)) => upload.write(&bytes).await?,
                Some(Part::Header(_)) => {
                    return Err(Error::invalid(
                        "header",
                        "only the first message of an upload may carry the header",
                    )
                    .into());
                }
                None => {}
            }
        }
        let by = caller.author(new.uploaded_by.as_str());
        Ok(Response::new(store.attach(new, upload, by).await?.into()))
    }

    async fn list(
        &self,
        request: Request<pb::ListAttachmentsRequest>,
    ) -> Result<Response<pb::ListAttachmentsResponse>, Status> {
        let id = task_id("task_id", request.into_inner().task_id)?;
        let attachments = self.app.store().list_attachments(id).await?;
        Ok(Response::new(pb::ListAttachmentsResponse {
            attachments: attachments.into_iter().map(Into::into).collect(),
        }))
    }

    type DownloadStream = DownloadStream;

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        let id = requests::attachment_id("id", request.into_inner().id)?;
        let (attachment, file) = self.app.store().open_attachment(id).await?;
        let id = attachment.id.clone();
        let mut first = Some(pb::Attachment::from(attachment));
        let mut chunks = read_chunks(file, limits::DOWNLOAD_CHUNK);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            // An empty file still sends its one message, with the attachment.
            loop {
                let message = match chunks.recv().await {
                    Some(Ok(chunk)) => Ok(pb::DownloadResponse {
                        attachment: first.take(),
                        chunk,
                    }),
                    Some(Err(err)) => {
                        tracing::error!(attachment = %id, error = %err, "reading an attachment's blob");
                        Err(Status::from(Error::Internal))
                    }
                    None => match first.take() {
                        Some(attachment) => Ok(pb::DownloadResponse {
                            attachment: Some(attachment),
                            chunk: Vec::new(),
                        }),
                        None => break,
                    },
                };
                let failed = message.is_err();
                if tx.send(message).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteAttachmentRequest>,
    ) -> Result<Response<pb::DeleteAttachmentResponse>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = requests::attachment_id("id", req.id)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        let deleted = self.app.store().delete_attachment(id, by).await?;
        Ok(Response::new(pb::DeleteAttachmentResponse {
            attachment: Some(deleted.into()),
        }))
    }
}
