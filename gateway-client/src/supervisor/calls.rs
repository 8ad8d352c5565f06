//! The calls the event loop makes, as futures it can poll beside everything else: opening a
//! session, attaching its keep-alive stream, the Acquire long poll, and closing the session at
//! the end of a drain. Each carries its deadline (see [`reconnect`]).

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use kanband_proto::pb;
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

use super::{Settings, SupervisorError};
use crate::{
    Client, Target,
    reconnect::{self, Backoff, CALL_TIMEOUT},
};

/// A future the event loop polls in place.
pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Keep-alives that may wait on a stalled stream (a stall ends in jeopardy anyway).
const RENEW_QUEUE: usize = 4;

/// A session kanband just opened.
pub(super) struct Opened {
    pub(super) client: Client,
    pub(super) session: pb::Session,
    pub(super) sent: Instant,
}

/// A keep-alive stream just established.
pub(super) struct Attached {
    pub(super) client: Client,
    pub(super) outbound: mpsc::Sender<pb::KeepAliveRequest>,
    pub(super) inbound: Streaming<pb::KeepAliveResponse>,
    pub(super) sent: Instant,
}

/// Connects and opens a session, retrying with backoff until kanband answers; fails only
/// for what retrying cannot fix (a bad address, a session refused as invalid).
pub(super) fn open(cfg: Arc<Settings>) -> BoxFuture<Result<Opened, SupervisorError>> {
    Box::pin(async move {
        let mut backoff = Backoff::default();
        loop {
            let mut client = reconnect::connect_with_backoff(cfg.config.target(), &mut backoff)
                .await
                .map_err(|err| SupervisorError::Config(err.to_string()))?;
            let c = &cfg.config;
            let message = pb::OpenSessionRequest {
                machine_id: cfg.machine_id.clone(),
                hostname: cfg.hostname.clone(),
                profiles: c.profiles.clone(),
                capabilities: c.capabilities.clone(),
                slots: c.slots,
                ttl_ms: c.ttl.as_millis() as u32,
                review_lane: c.review_lane,
            };
            let sent = Instant::now();
            match reconnect::call(CALL_TIMEOUT, message, |r| client.leases.open_session(r)).await {
                Ok(session) => {
                    return Ok(Opened {
                        client,
                        session,
                        sent,
                    });
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    return Err(SupervisorError::Refused(status.message().to_owned()));
                }
                Err(status) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(code = ?status.code(), error = %status.message(), ?delay, "cannot open a session; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    })
}

/// Connects (unless a client is given) and opens the keep-alive stream for `session_id`, its
/// first message already sent.
pub(super) fn attach(
    target: Target,
    client: Option<Client>,
    session_id: String,
) -> BoxFuture<Result<Attached, Status>> {
    Box::pin(async move {
        let mut client = match client {
            Some(client) => client,
            None => Client::connect(target)
                .await
                .map_err(|err| Status::unavailable(err.to_string()))?,
        };
        let (outbound, rx) = mpsc::channel(RENEW_QUEUE);
        let sent = Instant::now();
        outbound
            .try_send(pb::KeepAliveRequest { session_id })
            .map_err(|_| Status::internal("a fresh channel is full"))?;
        // No grpc-timeout on the stream itself: it lives as long as the session.
        let response = tokio::time::timeout(
            CALL_TIMEOUT,
            client.leases.keep_alive(ReceiverStream::new(rx)),
        )
        .await
        .map_err(|_| Status::deadline_exceeded("no answer to KeepAlive"))??;
        Ok(Attached {
            client,
            outbound,
            inbound: response.into_inner(),
            sent,
        })
    })
}

/// One Acquire long poll of `wait`, with a deadline a little past it.
pub(super) fn acquire(
    mut client: Client,
    session_id: String,
    wait: Duration,
) -> BoxFuture<Result<Option<pb::Grant>, Status>> {
    let message = pb::AcquireRequest {
        session_id,
        wait_ms: wait.as_millis() as i64,
    };
    Box::pin(async move {
        reconnect::call(wait + CALL_TIMEOUT, message, |r| client.leases.acquire(r))
            .await
            .map(|answer| answer.grant)
    })
}

/// Closes the session (its remaining claims are released without counting failures), over
/// `client` or a fresh connection. Failure is only logged: the session then expires.
pub(super) async fn close(target: Target, client: Option<Client>, session_id: String) {
    let client = match client {
        Some(client) => Ok(client),
        None => Client::connect(target).await,
    };
    let message = pb::CloseSessionRequest {
        session_id: session_id.clone(),
    };
    let closed = match client {
        Ok(mut client) => {
            reconnect::call(CALL_TIMEOUT, message, |r| client.leases.close_session(r)).await
        }
        Err(err) => Err(Status::unavailable(err.to_string())),
    };
    match closed {
        Ok(answer) => {
            tracing::info!(session = %session_id, released = answer.released, "session closed")
        }
        Err(status) => {
            tracing::warn!(session = %session_id, error = %status.message(), "cannot close the session; it will expire")
        }
    }
}
