//! `kanban.v1.Events`.

use std::{pin::Pin, sync::Arc};

use kanband_proto::pb::{self, events_server::Events};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{
    feed::{self, Feed},
    requests::{self, task_id},
};
use crate::{
    coordinator::Coordinator,
    domain::{limits, validate},
    error::Error,
    net,
    store::model::WatchFilter,
    streams::{Pool, Slot},
};

/// Events buffered per watcher (and read from the database per query).
const WATCH_BUFFER: usize = 256;

/// The Events service.
#[derive(Debug, Clone)]
pub struct EventsService {
    app: Arc<Coordinator>,
}

impl EventsService {
    /// Serves events from the shared state.
    pub fn new(app: Arc<Coordinator>) -> Self {
        EventsService { app }
    }
}

type Out = Feed<pb::Event>;

/// Feeds one watcher: pages from the database, then waits for newer commits.
async fn watch(
    app: Arc<Coordinator>,
    _slot: Slot,
    filter: WatchFilter,
    mut cursor: i64,
    mut out: Out,
) {
    let mut latest = app.event_ids();
    let stop = app.stopped();
    tokio::pin!(stop);
    loop {
        // Read the newest committed id before querying: every event up to it is visible to the
        // query, so a short page means nothing matching is left up to it.
        let upto = *latest.borrow_and_update();
        let page = match app
            .store()
            .watch_page(filter.clone(), cursor, WATCH_BUFFER as u32)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                out.finish(err.into());
                return;
            }
        };
        let full = page.len() == WATCH_BUFFER;
        for event in page {
            let id = event.id;
            out = match out
                .send_or_cut(app.watcher_stall(), event.into(), cursor)
                .await
            {
                Ok(out) => out,
                Err(_) => return,
            };
            cursor = id;
        }
        if full {
            continue;
        }
        cursor = cursor.max(upto);
        tokio::select! {
            changed = latest.changed() => if changed.is_err() { return },
            () = &mut stop => {
                let status = Status::unavailable(format!(
                    "kanband is shutting down; resume after event id {cursor}"
                ));
                out.finish(status);
                return;
            }
            () = out.closed() => return,
        }
    }
}

#[tonic::async_trait]
impl Events for EventsService {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let conn = net::conn_streams(&request);
        let req = request.into_inner();
        let board = if req.board.is_empty() {
            None
        } else {
            Some(requests::board_or_default("board", req.board)?)
        };
        let task = if req.task_id.is_empty() {
            None
        } else {
            Some(task_id("task_id", req.task_id)?)
        };
        validate::list_len("kinds", &req.kinds)?;
        for kind in &req.kinds {
            validate::required_text("kinds", kind, limits::NAME_MAX)?;
        }
        validate::profile("assignee", &req.assignee)?;
        let after = if req.from_newest {
            if req.after_id != 0 {
                return Err(Error::invalid("after_id", "must be 0 with from_newest").into());
            }
            // Every event up to the newest committed id is visible to the watcher's queries.
            *self.app.event_ids().borrow()
        } else {
            i64::try_from(req.after_id)
                .map_err(|_| Error::invalid("after_id", "is out of range"))?
        };
        let filter = WatchFilter {
            board,
            task_id: task,
            kinds: req.kinds,
            assignee: Some(req.assignee).filter(|a| !a.is_empty()),
        };
        self.app.store().check_watch(filter.clone()).await?;
        let slot = self.app.stream_slot(Pool::Watch, conn.as_deref())?;
        let (out, rx) = feed::channel(WATCH_BUFFER);
        tokio::spawn(watch(self.app.clone(), slot, filter, after, out));
        let mut response = Response::new(Box::pin(rx) as Self::WatchStream);
        if req.from_newest {
            response.metadata_mut().insert(
                kanband_proto::WATCH_AFTER_HEADER,
                after
                    .to_string()
                    .parse()
                    .expect("digits are a header value"),
            );
        }
        Ok(response)
    }
}
