//! The accept loop's stream of connections.
//!
//! tonic retries a failed accept at once, so a process out of descriptors (EMFILE, ENFILE)
//! spins on a listener that stays readable. [`Incoming`] instead pauses accepting, 100 ms
//! doubling to 1 s, logging at warn each time, and wraps each accepted socket in a [`Conn`]
//! with the connection timeouts.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    time::Sleep,
};
use tokio_stream::Stream;

use super::conn::{Conn, Timeouts, Transport};

/// First pause after running out of descriptors.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// A listening socket.
pub trait Listener: Send + Unpin + 'static {
    /// What it accepts.
    type Io: Transport;
    /// Accepts one connection.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>>;
}

impl Listener for TcpListener {
    type Io = TcpStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let (stream, _) = ready!(TcpListener::poll_accept(self, cx))?;
        // Replies are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        Poll::Ready(Ok(stream))
    }
}

impl Listener for UnixListener {
    type Io = UnixStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<UnixStream>> {
        let (stream, _) = ready!(UnixListener::poll_accept(self, cx))?;
        Poll::Ready(Ok(stream))
    }
}

/// Accepted connections, for `serve_with_incoming_shutdown`.
#[derive(Debug)]
pub struct Incoming<L> {
    listener: L,
    timeouts: Timeouts,
    /// Set while accepting is paused.
    pause: Option<Pin<Box<Sleep>>>,
    /// The next pause, should the next accept fail for want of resources.
    next_pause: Duration,
}

impl<L: Listener> Incoming<L> {
    /// Accepts on `listener`, giving each connection `timeouts`.
    pub fn new(listener: L, timeouts: Timeouts) -> Self {
        Incoming {
            listener,
            timeouts,
            pause: None,
            next_pause: FIRST_PAUSE,
        }
    }
}

/// Whether an accept error means the process or system ran out of something, so that trying
/// again at once would fail again.
fn out_of_resources(err: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        err.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

impl<L: Listener> Stream for Incoming<L> {
    type Item = io::Result<Conn<L::Io>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = &mut *self;
        loop {
            if let Some(pause) = &mut me.pause {
                ready!(pause.as_mut().poll(cx));
                me.pause = None;
            }
            match ready!(me.listener.poll_accept(cx)) {
                Ok(io) => {
                    me.next_pause = FIRST_PAUSE;
                    return Poll::Ready(Some(Ok(Conn::new(io, me.timeouts))));
                }
                Err(err) if out_of_resources(&err) => {
                    tracing::warn!(
                        error = %err,
                        pause_ms = me.next_pause.as_millis() as u64,
                        "cannot accept a connection; pausing accepts (pending clients wait)"
                    );
                    me.pause = Some(Box::pin(tokio::time::sleep(me.next_pause)));
                    me.next_pause = (me.next_pause * 2).min(LONGEST_PAUSE);
                }
                // One connection's own failure (reset before it was accepted, ...): the next
                // one may well succeed.
                Err(err) => tracing::debug!(error = %err, "accepting a connection failed"),
            }
        }
    }
}
