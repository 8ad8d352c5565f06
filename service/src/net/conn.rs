//! [`Conn`]: an accepted socket with the state kanband keeps for its connection.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpStream, UnixStream},
};
use tonic::transport::server::{Connected, TcpConnectInfo, UdsConnectInfo};

use crate::streams::ConnStreams;

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

/// One connection's state, shared by its socket and its requests.
#[derive(Debug, Default)]
pub(super) struct ConnState {
    /// The stream places this connection holds.
    pub(super) streams: Arc<ConnStreams>,
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
}

/// An accepted socket and its connection's state.
#[derive(Debug)]
pub struct Conn<T> {
    io: T,
    peer: Peer,
}

impl<T: Transport> Conn<T> {
    /// Wraps a freshly accepted socket.
    pub fn new(io: T) -> Self {
        let peer = Peer {
            state: Arc::default(),
            info: io.peer_info(),
        };
        Conn { io, peer }
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
        Pin::new(&mut self.io).poll_read(cx, buf)
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
