//! [`Conn`]: an accepted socket with the state kanband keeps for its connection, and the
//! timeouts that close connections doing nothing.
//!
//! Both timeouts act in the socket's read path: hyper always has a read pending on a live
//! connection, so when a deadline passes that read fails with `TimedOut` and hyper drops the
//! connection. A socket that sends nothing within the handshake timeout of being accepted is
//! closed; so is a connection that has had no request or stream open for the idle timeout
//! (clients reconnect on their next call). HTTP/2 keep-alive pings, set on the server, find
//! peers that vanished without closing.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpStream, UnixStream},
    time::{Instant, Sleep},
};
use tonic::transport::server::{Connected, TcpConnectInfo, UdsConnectInfo};

use crate::{domain::limits, streams::ConnStreams};

/// A socket kanband serves: TCP or a Unix socket.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// What tonic tells handlers about the peer, kept for them as before.
    fn peer_info(&self) -> PeerInfo;
}

impl Transport for TcpStream {
    fn peer_info(&self) -> PeerInfo {
        PeerInfo::Tcp(self.connect_info())
    }
}

impl Transport for UnixStream {
    fn peer_info(&self) -> PeerInfo {
        PeerInfo::Unix(self.connect_info())
    }
}

/// The transport's own peer information.
#[derive(Debug, Clone)]
pub enum PeerInfo {
    /// Local and remote addresses.
    Tcp(TcpConnectInfo),
    /// The peer's address and credentials.
    Unix(UdsConnectInfo),
}

/// When kanband closes connections on its own (documented in README's limits table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A socket that sends nothing for this long after it is accepted is closed.
    pub handshake: Duration,
    /// A connection with no request or stream open for this long is closed; `None` never.
    pub idle: Option<Duration>,
    /// HTTP/2 keep-alive: ping a connection this often...
    pub keepalive_interval: Duration,
    /// ...and close it if the ping is not answered within this.
    pub keepalive_timeout: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: limits::HANDSHAKE_TIMEOUT,
            idle: Some(limits::IDLE_TIMEOUT),
            keepalive_interval: limits::KEEPALIVE_INTERVAL,
            keepalive_timeout: limits::KEEPALIVE_TIMEOUT,
        }
    }
}

/// One connection's state, shared by its socket and its requests.
#[derive(Debug)]
pub(super) struct ConnState {
    /// The stream places this connection holds.
    pub(super) streams: Arc<ConnStreams>,
    /// Requests and streams open on it (a response counts until its body is dropped).
    open: AtomicUsize,
    /// Since when nothing has been open.
    idle_since: Mutex<Instant>,
}

impl ConnState {
    fn new() -> Self {
        ConnState {
            streams: Arc::default(),
            open: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        }
    }

    /// Counts a request as open until the guard is dropped.
    pub(super) fn opened(self: &Arc<Self>) -> OpenRequest {
        self.open.fetch_add(1, Ordering::SeqCst);
        OpenRequest(self.clone())
    }

    /// When the connection has been idle long enough to close, if it is idle now.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        let since = self.idle_since.lock().expect("idle_since");
        (self.open.load(Ordering::SeqCst) == 0).then(|| *since + idle)
    }
}

/// One open request or stream on a connection.
#[derive(Debug)]
pub(crate) struct OpenRequest(Arc<ConnState>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        // Updated under the lock, so a reader never sees "nothing open" with a stale start.
        let mut since = self.0.idle_since.lock().expect("idle_since");
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            *since = Instant::now();
        }
    }
}

/// What each request learns about the connection it came over (a request extension).
#[derive(Debug, Clone)]
pub struct Peer {
    pub(super) state: Arc<ConnState>,
    pub(super) info: PeerInfo,
}

impl Peer {
    /// The stream places this connection holds.
    pub fn streams(&self) -> &Arc<ConnStreams> {
        &self.state.streams
    }

    /// The uid of the process at the other end of a Unix socket (SO_PEERCRED); `None` over
    /// TCP.
    pub fn unix_uid(&self) -> Option<u32> {
        match &self.info {
            PeerInfo::Unix(info) => info.peer_cred.map(|cred| cred.uid()),
            PeerInfo::Tcp(_) => None,
        }
    }
}

/// An accepted socket and its connection's state.
#[derive(Debug)]
pub struct Conn<T> {
    io: T,
    peer: Peer,
    timeouts: Timeouts,
    accepted: Instant,
    /// Whether the peer has sent anything yet.
    heard: bool,
    /// Wakes the read path at the next deadline.
    timer: Pin<Box<Sleep>>,
}

impl<T: Transport> Conn<T> {
    /// Wraps a freshly accepted socket.
    pub fn new(io: T, timeouts: Timeouts) -> Self {
        let peer = Peer {
            state: Arc::new(ConnState::new()),
            info: io.peer_info(),
        };
        let accepted = Instant::now();
        Conn {
            io,
            peer,
            timeouts,
            accepted,
            heard: false,
            timer: Box::pin(tokio::time::sleep_until(accepted + timeouts.handshake)),
        }
    }

    /// The next deadline to check and why it would close the connection, or `None`.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        if !self.heard {
            return Some((
                self.accepted + self.timeouts.handshake,
                "sent nothing within the handshake timeout",
            ));
        }
        let idle = self.timeouts.idle?;
        match self.peer.state.idle_deadline(idle) {
            Some(at) => Some((at, "idle (nothing open) for the idle timeout")),
            // Something is open: look again in a while (requests do not wake the socket when
            // they end, the timer does).
            None => {
                let now = Instant::now();
                let armed = self.timer.deadline();
                Some((if armed > now { armed } else { now + idle }, ""))
            }
        }
    }

    /// Fails the read if a deadline has passed; otherwise arms the timer for the next one.
    fn poll_deadlines(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some((at, why)) = self.deadline() else {
                return Poll::Pending;
            };
            if at <= Instant::now() && !why.is_empty() {
                tracing::debug!(reason = why, "closing a connection");
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
            }
            if self.timer.deadline() != at {
                self.timer.as_mut().reset(at);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: Transport> Connected for Conn<T> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl<T: Transport> AsyncRead for Conn<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.heard |= buf.filled().len() > before;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.poll_deadlines(cx),
        }
    }
}

impl<T: Transport> AsyncWrite for Conn<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
