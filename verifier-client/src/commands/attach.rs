//! `attach`, `attachments` and `attachment get|delete`. An upload is read whole before it is
//! sent (a file that cannot be read is refused before anything reaches kanband, and a read
//! error can never end an upload early and store a truncated file); the service caps its size
//! (`--attachment-max-bytes`, 25 MiB by default). A download is checked against its SHA-256
//! before it is written.

use std::{
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
};

use kanband_proto::pb::{
    Attachment, DeleteAttachmentRequest, DownloadRequest, ListAttachmentsRequest, UploadHeader,
    UploadRequest, upload_request::Part,
};
use sha2::{Digest as _, Sha256};

use super::Ctx;
use crate::{Error, Result, cli::AttachArgs, render};

/// Bytes per upload message (the service accepts messages up to 4 MiB).
const CHUNK: usize = 1024 * 1024;

/// Media types by file extension, for the common cases; anything else is sent as
/// application/octet-stream.
const MEDIA_TYPES: &[(&str, &str)] = &[
    ("txt", "text/plain"),
    ("log", "text/plain"),
    ("md", "text/markdown"),
    ("csv", "text/csv"),
    ("html", "text/html"),
    ("json", "application/json"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("svg", "image/svg+xml"),
];

/// The media type a name's extension suggests, if it is a common one.
pub(crate) fn guess_media_type(name: &str) -> Option<&'static str> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    MEDIA_TYPES
        .iter()
        .find(|(known, _)| *known == ext)
        .map(|(_, media)| *media)
}

fn print_attachment(ctx: &Ctx, attachment: &Attachment) -> Result<()> {
    ctx.out.message(attachment, |wide| {
        render::attachments(std::slice::from_ref(attachment), wide)
    })?;
    Ok(())
}

/// `attach TASK FILE`.
pub(crate) async fn attach(ctx: &Ctx, args: AttachArgs) -> Result<()> {
    let stdin = args.file.as_os_str() == "-";
    let name = match (&args.name, stdin) {
        (Some(name), _) => name.clone(),
        (None, true) => return Err(Error::usage("attach - (standard input) needs --name")),
        (None, false) => args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::usage(format!("{} has no file name", args.file.display())))?,
    };
    let bytes = if stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|err| Error::usage(format!("cannot read standard input: {err}")))?;
        bytes
    } else {
        std::fs::read(&args.file)
            .map_err(|err| Error::usage(format!("cannot read {}: {err}", args.file.display())))?
    };
    // The worker's own token goes only with an upload to its own task.
    let current = std::env::var("KANBAN_TASK").unwrap_or_default();
    let own_task = current.is_empty() || current == args.task;
    let claim_token = match args.claim_token.filter(|t| !t.is_empty()) {
        Some(token) if own_task => token,
        _ => String::new(),
    };
    let media_type = args
        .media_type
        .or_else(|| guess_media_type(&name).map(str::to_owned))
        .unwrap_or_default();
    let mut messages = vec![UploadRequest {
        part: Some(Part::Header(UploadHeader {
            task_id: args.task,
            name,
            media_type,
            claim_token,
            uploaded_by: ctx.actor(),
        })),
    }];
    messages.extend(bytes.chunks(CHUNK).map(|chunk| UploadRequest {
        part: Some(Part::Chunk(chunk.to_vec())),
    }));
    let mut client = ctx.connect().await?;
    let attachment = client
        .attachments
        .upload(tonic::codegen::tokio_stream::iter(messages))
        .await?
        .into_inner();
    print_attachment(ctx, &attachment)
}

/// `attachments TASK`.
pub(crate) async fn list(ctx: &Ctx, task_id: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let listed = client
        .attachments
        .list(ListAttachmentsRequest { task_id })
        .await?
        .into_inner();
    ctx.out.message(&listed, |wide| {
        render::attachments(&listed.attachments, wide)
    })?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `attachment get ID [-O FILE]`: with -O the file is written (then renamed into place) and
/// the attachment printed; without, the bytes go to stdout.
pub(crate) async fn get(ctx: &Ctx, id: String, output: Option<PathBuf>) -> Result<()> {
    if output.is_none() && ctx.out.is_json() {
        return Err(Error::usage(
            "attachment get -o json needs -O FILE (the bytes would go to stdout)",
        ));
    }
    let mut client = ctx.connect().await?;
    let mut stream = client
        .attachments
        .download(DownloadRequest { id })
        .await?
        .into_inner();
    let mut attachment = None;
    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await? {
        if attachment.is_none() {
            attachment = message.attachment;
        }
        bytes.extend_from_slice(&message.chunk);
    }
    let attachment = attachment.ok_or_else(|| {
        Error::from(tonic::Status::internal(
            "the download did not say which attachment it is",
        ))
    })?;
    let sha256 = hex(&Sha256::digest(&bytes));
    if bytes.len() as u64 != attachment.size || sha256 != attachment.sha256 {
        return Err(Error::from(tonic::Status::data_loss(format!(
            "the download of {} does not match: {} bytes with SHA-256 {sha256}, expected {} \
             bytes with {}",
            attachment.id,
            bytes.len(),
            attachment.size,
            attachment.sha256
        ))));
    }
    match output {
        Some(path) => {
            let mut partial = path.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            std::fs::write(&partial, &bytes)
                .and_then(|()| std::fs::rename(&partial, &path))
                .map_err(|err| {
                    let _ = std::fs::remove_file(&partial);
                    Error::usage(format!("cannot write {}: {err}", path.display()))
                })?;
            print_attachment(ctx, &attachment)
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// `attachment delete ID`.
pub(crate) async fn delete(ctx: &Ctx, id: String) -> Result<()> {
    ctx.confirm(&format!("delete attachment {id}"))?;
    let mut client = ctx.connect().await?;
    let deleted = client
        .attachments
        .delete(DeleteAttachmentRequest {
            id,
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    let shown = deleted.attachment.clone().unwrap_or_default();
    ctx.out.message(&deleted, |wide| {
        render::attachments(std::slice::from_ref(&shown), wide)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_guessed_from_common_extensions_only() {
        assert_eq!(guess_media_type("out.LOG"), Some("text/plain"));
        assert_eq!(guess_media_type("a/b/report.pdf"), Some("application/pdf"));
        assert_eq!(guess_media_type("archive.tar.gz"), Some("application/gzip"));
        assert_eq!(guess_media_type("noext"), None);
        assert_eq!(guess_media_type("x.weird"), None);
    }
}
