//! Server TLS: the certificate, key and optional client CA read from PEM files
//! ([`ServerTls::load`]), and [`TlsIncoming`], the TCP accept loop's connections after their
//! TLS handshakes.
//!
//! The handshakes run in kanband's own accept loop rather than tonic's: tonic's TLS handshakes
//! have no deadline, so a client that sends half a ClientHello would hold its socket until the
//! idle timeout. Here each handshake must finish within the handshake timeout (counted from the
//! accept), and the handshakes run concurrently, so a stalled one delays no other client.

use std::{
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    task::JoinSet,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, RootCertStore, ServerConfig, server::WebPkiClientVerifier},
    server::TlsStream,
};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use super::{
    conn::{Conn, Peer},
    incoming::Incoming,
};

/// Why the TLS files cannot be used; each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Unreadable {
        /// Which file (`TLS certificate`, ...).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A file was read but holds nothing usable.
    #[error("the {what} {} {problem}", path.display())]
    Unusable {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong, as a phrase (`holds no PEM certificate`).
        problem: String,
    },
}

/// A TLS server configuration ready to accept with.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    mutual: bool,
}

impl ServerTls {
    /// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private key matching the leaf);
    /// with `client_ca`, every client must present a certificate that chains to one of its PEM
    /// certificates.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTls, TlsError> {
        let chain = read_certs(cert, "TLS certificate")?;
        let key_der = read_key(key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for der in read_certs(ca, "TLS client CA")? {
                    roots.add(der).map_err(|err| TlsError::Unusable {
                        what: "TLS client CA",
                        path: ca.to_owned(),
                        problem: format!("holds a certificate that is no CA: {err}"),
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|err| TlsError::Unusable {
                        what: "TLS client CA",
                        path: ca.to_owned(),
                        problem: format!("cannot verify clients: {err}"),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config =
            builder
                .with_single_cert(chain, key_der)
                .map_err(|err| TlsError::Unusable {
                    what: "TLS key",
                    path: key.to_owned(),
                    problem: match err {
                        rustls::Error::InconsistentKeys(_) => format!(
                            "does not match the certificate {} (its public key is another's)",
                            cert.display()
                        ),
                        other => format!("cannot be used with {}: {other}", cert.display()),
                    },
                })?;
        // gRPC is HTTP/2 only.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            mutual: client_ca.is_some(),
        })
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.mutual
    }
}

fn unreadable(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TlsError {
    move |source| TlsError::Unreadable {
        what,
        path: path.to_owned(),
        source,
    }
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(unreadable(what, path))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Unusable {
            what,
            path: path.to_owned(),
            problem: format!("is not valid PEM: {err}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Unusable {
            what,
            path: path.to_owned(),
            problem: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "TLS key";
    let pem = std::fs::read(path).map_err(unreadable(what, path))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| TlsError::Unusable {
        what,
        path: path.to_owned(),
        problem: match err {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "holds no PEM private key (-----BEGIN PRIVATE KEY-----)".to_owned()
            }
            other => format!("is not a valid PEM private key: {other}"),
        },
    })
}

/// A TCP connection after its TLS handshake: what tonic serves.
#[derive(Debug)]
pub struct TlsConn(TlsStream<Conn<TcpStream>>);

impl Connected for TlsConn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Accepted TCP connections whose TLS handshake finished within `handshake` of the accept.
pub struct TlsIncoming {
    tcp: Incoming<tokio::net::TcpListener>,
    acceptor: TlsAcceptor,
    handshake: Duration,
    handshakes: JoinSet<io::Result<TlsConn>>,
    /// The listener has ended (it never does while serving).
    tcp_done: bool,
}

impl std::fmt::Debug for TlsIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIncoming")
            .field("handshake", &self.handshake)
            .field("handshaking", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl TlsIncoming {
    /// Handshakes on each connection `tcp` accepts, giving each `handshake` to finish.
    pub fn new(
        tcp: Incoming<tokio::net::TcpListener>,
        tls: &ServerTls,
        handshake: Duration,
    ) -> TlsIncoming {
        TlsIncoming {
            tcp,
            acceptor: TlsAcceptor::from(tls.config.clone()),
            handshake,
            handshakes: JoinSet::new(),
            tcp_done: false,
        }
    }

    fn start_handshake(&mut self, conn: Conn<TcpStream>) {
        let acceptor = self.acceptor.clone();
        let limit = self.handshake;
        self.handshakes.spawn(async move {
            match tokio::time::timeout(limit, acceptor.accept(conn)).await {
                Ok(done) => done.map(TlsConn),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the TLS handshake did not finish within the handshake timeout",
                )),
            }
        });
    }
}

impl Stream for TlsIncoming {
    type Item = io::Result<TlsConn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = &mut *self;
        loop {
            while !me.tcp_done {
                match Pin::new(&mut me.tcp).poll_next(cx) {
                    Poll::Ready(Some(Ok(conn))) => me.start_handshake(conn),
                    Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                    Poll::Ready(None) => me.tcp_done = true,
                    Poll::Pending => break,
                }
            }
            match me.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Ok(conn)))) => return Poll::Ready(Some(Ok(conn))),
                // One client's failed handshake (wrong CA, no certificate, plain HTTP/2,
                // stalled): that client's problem, logged for whoever debugs it.
                Poll::Ready(Some(Ok(Err(err)))) => {
                    tracing::debug!(error = %err, "a TLS handshake failed; connection closed");
                }
                Poll::Ready(Some(Err(join))) => {
                    tracing::debug!(error = %join, "a TLS handshake task ended abnormally");
                }
                Poll::Ready(None) if me.tcp_done => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
