//! `watch`: follows `Events.Watch` across disconnects.
//!
//! Event ids are global and gap-free, and the service streams every event after the id it is
//! given, so resuming with the last id *printed* gives no gap and no duplicate. The id only
//! advances after an event is written to stdout; an event lost in a broken connection is
//! therefore asked for again.
//!
//! What ends the stream decides what happens next:
//! - UNAVAILABLE (kanband shutting down or unreachable), CANCELLED, a transport failure
//!   (UNKNOWN or INTERNAL produced by the client's own connection, recognisable by its error
//!   source), RESOURCE_EXHAUSTED (the service cut off a watcher that fell behind, or has no
//!   watcher slot free) and a stream that simply ends: reconnect with exponential backoff
//!   (100 ms doubling to 5 s, reset by the next event received), resuming after the last id.
//! - Any other status (UNIMPLEMENTED, INVALID_ARGUMENT, ...): the command fails with it.
//! - SIGINT (Ctrl-C) or SIGTERM: exit 0. A closed stdout (`kanbanctl watch | head`): exit 0.
//!
//! Only the first connection must succeed (exit 5 otherwise): a watcher that has started
//! keeps trying, since an operator following the board wants it back after a restart.

use std::{error::Error as _, io, time::Duration};

use kanband_gateway::{Client, ConnectError};
use kanband_proto::pb::{Event, WatchRequest};
use tonic::{Code, Status};

use super::Ctx;
use crate::{Error, Result, cli::WatchArgs, output::note, render};

/// The first wait before reconnecting.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `watch [--from-start | --after ID] [--task ID] [--kind K]... [--assignee P] [--all-boards]`:
/// from the newest event on unless told otherwise (the service resolves "newest" and says
/// which id that was, see [`stream`]).
pub(crate) async fn watch(ctx: &Ctx, args: WatchArgs) -> Result<()> {
    let request = WatchRequest {
        after_id: args.after.unwrap_or(0),
        from_newest: args.after.is_none() && !args.from_start,
        board: if args.all_boards {
            String::new()
        } else {
            ctx.board.clone()
        },
        task_id: args.task.unwrap_or_default(),
        kinds: args.kinds,
        assignee: args.assignee.unwrap_or_default(),
    };
    let client = ctx.connect().await?;
    tokio::select! {
        result = follow(ctx, client, request) => result,
        () = stop_requested() => Ok(()),
    }
}

/// Resolves on SIGINT or SIGTERM; never if the handlers cannot be installed.
async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Whether a status ending the stream is worth resuming after (see the module docs).
fn resumable(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::Cancelled | Code::ResourceExhausted => true,
        // A status the service sent carries no source; one made from a broken connection does.
        Code::Unknown | Code::Internal => status.source().is_some(),
        _ => false,
    }
}

/// Streams events until a fatal error; returns `Ok` only when stdout is closed.
async fn follow(ctx: &Ctx, first: Client, mut request: WatchRequest) -> Result<()> {
    let mut client = Some(first);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let lost = match client.take() {
            Some(client) => match stream(ctx, client, &mut request, &mut backoff).await? {
                Some(lost) => lost,
                None => return Ok(()),
            },
            None => match ctx.connect().await {
                Ok(reconnected) => {
                    client = Some(reconnected);
                    continue;
                }
                Err(Error::Connect(err @ ConnectError::Unreachable { .. })) => err.to_string(),
                Err(err) => return Err(err),
            },
        };
        note(&format!(
            "watch: {lost}; reconnecting in {} ms, resuming after event #{}",
            backoff.as_millis(),
            request.after_id
        ));
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One Watch call: prints events and advances `request.after_id` past each. Returns why the
/// stream was lost (to resume), `None` when stdout is closed, or a fatal error.
async fn stream(
    ctx: &Ctx,
    mut client: Client,
    request: &mut WatchRequest,
    backoff: &mut Duration,
) -> Result<Option<String>> {
    let mut events = match client.events.watch(request.clone()).await {
        Ok(response) => {
            // Started at the newest event: resume after the id it was, even if no event comes
            // before the next reconnect.
            if request.from_newest {
                let after = response
                    .metadata()
                    .get(kanband_proto::WATCH_AFTER_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        Error::from(Status::internal(format!(
                            "the watch did not say where it started ({})",
                            kanband_proto::WATCH_AFTER_HEADER
                        )))
                    })?;
                request.after_id = after;
                request.from_newest = false;
            }
            response.into_inner()
        }
        Err(status) if resumable(&status) => return Ok(Some(Error::from(status).to_string())),
        Err(status) => return Err(status.into()),
    };
    loop {
        match events.message().await {
            Ok(Some(event)) => {
                // Defensive: never print an id twice, whatever a server sends.
                if event.id <= request.after_id {
                    continue;
                }
                if !emit(ctx, &event)? {
                    return Ok(None);
                }
                request.after_id = event.id;
                *backoff = FIRST_BACKOFF;
            }
            Ok(None) => return Ok(Some("the event stream ended".to_owned())),
            Err(status) if resumable(&status) => {
                return Ok(Some(Error::from(status).to_string()));
            }
            Err(status) => return Err(status.into()),
        }
    }
}

/// Prints one event; `false` when stdout is closed.
fn emit(ctx: &Ctx, event: &Event) -> Result<bool> {
    match ctx.out.message(event, |_| render::event_line(event)) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_resumed() {
        assert!(resumable(&Status::unavailable("shutting down")));
        assert!(resumable(&Status::resource_exhausted("stalled")));
        assert!(!resumable(&Status::unimplemented("no")));
        assert!(!resumable(&Status::invalid_argument("kinds")));
        // An INTERNAL the service sent is final; one from a broken connection is not.
        assert!(!resumable(&Status::internal("bug")));
        let broken = Status::from_error(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert_eq!(broken.code(), Code::Unknown);
        assert!(resumable(&broken));
    }
}
