//! The live event stream of the board: Server-Sent Events fed by the same `Events.Watch`
//! the gRPC API serves, so event ids are the log's own (gap-free, strictly increasing). Each
//! SSE message carries its event id, and a browser that reconnects sends the last one it saw
//! in `Last-Event-ID`: the stream resumes right after it, with no gap and no duplicate.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
    response::sse::{Event as Sse, KeepAlive},
};
use kanband_proto::pb::{self, events_server::Events};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::{Stream, StreamExt as _};
use tonic::Request;

use super::{
    Ctx,
    guard::Viewer,
    reply::{ApiError, ApiResult},
};

/// How soon a browser reconnects after the stream ends (it then resumes from its last id).
const RETRY: Duration = Duration::from_millis(500);

/// `GET /api/events/head`: the newest event id now, where a page that has just read the board
/// starts its stream.
pub async fn head(_: Viewer, State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    Json(json!({ "id": ctx.app.event_ids().borrow().to_string() }))
}

/// Query of `GET /api/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Only this board's events; empty means every board.
    board: Option<String>,
    /// Start after this event id (when no `Last-Event-ID` is sent); default: the newest.
    after: Option<u64>,
}

/// `GET /api/events?board=B&after=N`: SSE messages named `kanban` whose data is an `Event` in
/// proto3 JSON and whose id is the event id. A stream the service ends (shutdown, or a reader
/// too slow) sends an `end` message with the reason; the browser then reconnects and resumes.
pub async fn events(
    _: Viewer,
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> ApiResult<axum::response::Sse<impl Stream<Item = Result<Sse, Infallible>>>> {
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID: not an event id"))?,
        ),
        None => None,
    };
    let after_id = resume
        .or(query.after)
        .unwrap_or_else(|| u64::try_from(*ctx.app.event_ids().borrow()).unwrap_or(0));
    let watch = ctx
        .events
        .watch(Request::new(pb::WatchRequest {
            after_id,
            board: query.board.unwrap_or_default(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let first = tokio_stream::once(Ok(Sse::default().retry(RETRY).comment("kanband events")));
    let events = watch.map(|item| {
        Ok(match item {
            Ok(event) => Sse::default()
                .id(event.id.to_string())
                .event("kanban")
                .json_data(&event)
                .unwrap_or_else(|_| Sse::default().comment("unencodable event")),
            Err(status) => Sse::default().event("end").data(status.message()),
        })
    });
    Ok(axum::response::Sse::new(first.chain(events)).keep_alive(KeepAlive::default()))
}
