//! A task's attachments on the board: the list (`GET /api/tasks/{id}/attachments`, the
//! `ListAttachmentsResponse`) and the download (`GET /api/attachments/{id}`), both through the
//! same `kanban.v1.Attachments` calls as the API, for any signed-in role.
//!
//! A download is always a download: `Content-Disposition: attachment` with the name quoted
//! safely, a content type from a short list of types browsers do not execute (anything else,
//! HTML and SVG included, is `application/octet-stream`), and `X-Content-Type-Options: nosniff`
//! with the board's CSP (from [`super::assets::secure`]), so an uploaded file never runs as the
//! board's page.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use kanband_proto::pb::{self, attachments_server::Attachments};
use tokio_stream::StreamExt as _;
use tonic::Request;

use super::{
    Ctx,
    guard::Viewer,
    reply::{ApiError, ApiResult},
};

/// Media types served as themselves; every other type is served as octet-stream.
const INERT_TYPES: &[&str] = &[
    "application/json",
    "application/pdf",
    "image/gif",
    "image/jpeg",
    "image/png",
    "image/webp",
    "text/csv",
    "text/plain",
];

/// The content type a download is served with.
pub fn safe_content_type(media_type: &str) -> &'static str {
    INERT_TYPES
        .iter()
        .find(|inert| **inert == media_type)
        .copied()
        .unwrap_or("application/octet-stream")
}

/// `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266): an ASCII fallback with
/// quotes, backslashes and anything unprintable replaced, and the exact name percent-encoded.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// `GET /api/tasks/{id}/attachments`: `ListAttachmentsResponse`.
pub async fn list(
    _: Viewer,
    State(ctx): State<Arc<Ctx>>,
    Path(task_id): Path<String>,
) -> ApiResult<Json<pb::ListAttachmentsResponse>> {
    let request = pb::ListAttachmentsRequest { task_id };
    Ok(Json(
        ctx.attachments
            .list(Request::new(request))
            .await?
            .into_inner(),
    ))
}

/// `GET /api/attachments/{id}`: the file, streamed.
pub async fn download(
    _: Viewer,
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let mut stream = ctx
        .attachments
        .download(Request::new(pb::DownloadRequest { id }))
        .await?
        .into_inner();
    let first = match stream.next().await {
        Some(first) => first?,
        None => return Err(ApiError::from(tonic::Status::internal("empty download"))),
    };
    let attachment = first.attachment.unwrap_or_default();
    let head = futures_once(first.chunk);
    let rest = stream.map(|message| message.map(|m| m.chunk));
    let body = Body::from_stream(head.chain(rest));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(safe_content_type(&attachment.media_type)),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(attachment.size));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(&attachment.name))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// A stream of one chunk, as the download stream's items.
fn futures_once(
    chunk: Vec<u8>,
) -> impl tokio_stream::Stream<Item = Result<Vec<u8>, tonic::Status>> + Send {
    tokio_stream::once(Ok(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_safely() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let tricky = content_disposition("a\"b\\c\r\nX-Evil: 1 é.txt");
        assert!(!tricky.contains('\r') && !tricky.contains('\n'), "{tricky}");
        assert!(
            tricky.starts_with("attachment; filename=\"a_b_c__X-Evil: 1 _.txt\""),
            "{tricky}"
        );
        assert!(
            tricky.ends_with("UTF-8''a%22b%5Cc%0D%0AX-Evil%3A%201%20%C3%A9.txt"),
            "{tricky}"
        );
    }

    #[test]
    fn only_inert_types_are_served_as_themselves() {
        assert_eq!(safe_content_type("image/png"), "image/png");
        for active in [
            "text/html",
            "image/svg+xml",
            "application/javascript",
            "text/xml",
            "",
        ] {
            assert_eq!(
                safe_content_type(active),
                "application/octet-stream",
                "{active}"
            );
        }
    }
}
