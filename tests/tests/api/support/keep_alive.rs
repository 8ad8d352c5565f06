//! The client side of a session's keep-alive stream, read with a real-time bound so it works
//! under a paused clock.

use kanband_gateway::Client;
use kanband_proto::pb::{self, keep_alive_response::Event as Push};
use tokio::sync::mpsc;
use tonic::{Streaming, codegen::tokio_stream::wrappers::ReceiverStream};

use super::clock::REAL_LIMIT;

/// The client side of a keep-alive stream.
pub(crate) struct KeepAlive {
    session_id: String,
    tx: mpsc::Sender<pb::KeepAliveRequest>,
    rx: Streaming<pb::KeepAliveResponse>,
}

impl KeepAlive {
    /// Opens a keep-alive stream for a session and checks its first `renewed`.
    pub(crate) async fn open(client: &mut Client, session_id: &str) -> (KeepAlive, pb::Renewed) {
        let (tx, outbound) = mpsc::channel(8);
        let rx = client
            .leases
            .keep_alive(ReceiverStream::new(outbound))
            .await
            .expect("KeepAlive")
            .into_inner();
        let mut stream = KeepAlive {
            session_id: session_id.to_owned(),
            tx,
            rx,
        };
        let renewed = stream.renew().await;
        (stream, renewed)
    }

    /// Sends a keep-alive and returns the `renewed` answer.
    pub(crate) async fn renew(&mut self) -> pb::Renewed {
        self.tx
            .send(pb::KeepAliveRequest {
                session_id: self.session_id.clone(),
            })
            .await
            .expect("the stream is open");
        match self.next().await {
            Push::Renewed(renewed) => renewed,
            other => panic!("expected renewed, got {other:?}"),
        }
    }

    /// The next message the server sends (real-time bound; the paused clock does not move).
    pub(crate) async fn next(&mut self) -> Push {
        let deadline = async {
            let end = std::time::Instant::now() + REAL_LIMIT;
            while std::time::Instant::now() < end {
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            message = self.rx.message() => message
                .expect("the keep-alive stream does not fail")
                .expect("the keep-alive stream does not end")
                .event
                .expect("a keep-alive answer carries an event"),
            () = deadline => panic!("no keep-alive message within {REAL_LIMIT:?} of real time"),
        }
    }

    /// The next message, which must be a push of `revoked`.
    pub(crate) async fn revoked(&mut self) -> pb::Revoked {
        match self.next().await {
            Push::Revoked(revoked) => revoked,
            other => panic!("expected revoked, got {other:?}"),
        }
    }
}
