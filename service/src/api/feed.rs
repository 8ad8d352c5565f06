//! The pipe from a stream's feeding task to its gRPC response, with a last word that never
//! waits on the client.
//!
//! A task feeds events into a bounded buffer that the response stream drains. A client that
//! keeps its connection but stops reading leaves the buffer full, so an error sent through the
//! buffer would wait for ever and the task (and its stream place) would stay. Instead the final
//! status is set aside beside the buffer and the task ends at once: the response stream yields
//! whatever is buffered, then that status, if the client ever reads again.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tonic::Status;

/// Opens a feed with `buffer` items of room.
pub(crate) fn channel<T>(buffer: usize) -> (Feed<T>, FeedStream<T>) {
    let (out, rx) = mpsc::channel(buffer);
    let (last, last_rx) = oneshot::channel();
    (
        Feed { out, last },
        FeedStream {
            rx,
            last: Some(last_rx),
        },
    )
}

/// The feeding task's end.
#[derive(Debug)]
pub(crate) struct Feed<T> {
    out: mpsc::Sender<Result<T, Status>>,
    last: oneshot::Sender<Status>,
}

/// Why a feed could not take an item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Gone {
    /// The client went away.
    Left,
    /// The client stopped reading for the stall limit; the feed is closed with the cut-off
    /// status.
    Cut,
}

impl<T> Feed<T> {
    /// Sends `item` unless the client stops reading for `stall`. On a stall the feed ends with
    /// RESOURCE_EXHAUSTED naming `last_id` (the resume point) without waiting any longer.
    pub(crate) async fn send_or_cut(
        self,
        stall: Duration,
        item: T,
        last_id: i64,
    ) -> Result<Self, Gone> {
        match tokio::time::timeout(stall, self.out.send(Ok(item))).await {
            Ok(Ok(())) => Ok(self),
            Ok(Err(_)) => Err(Gone::Left),
            Err(_) => {
                self.finish(Status::resource_exhausted(format!(
                    "this stream fell behind (nothing read for {} s); resume after event id {last_id}",
                    stall.as_secs_f64()
                )));
                Err(Gone::Cut)
            }
        }
    }

    /// Ends the feed with `status`, delivered after what is buffered. Never waits.
    pub(crate) fn finish(self, status: Status) {
        let _ = self.last.send(status);
    }

    /// Resolves when the client has gone away.
    pub(crate) async fn closed(&self) {
        self.out.closed().await;
    }
}

/// The response's end: the buffered items, then the final status if one was set.
#[derive(Debug)]
pub(crate) struct FeedStream<T> {
    rx: mpsc::Receiver<Result<T, Status>>,
    last: Option<oneshot::Receiver<Status>>,
}

impl<T> Stream for FeedStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => Poll::Pending,
            // Both halves of the feed are dropped together, so the final status (or its absence)
            // is known by now.
            Poll::Ready(None) => match self.last.take() {
                Some(mut last) => Poll::Ready(last.try_recv().ok().map(Err)),
                None => Poll::Ready(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_feed_ends_at_once_and_its_status_follows_the_buffer() {
        let (feed, mut stream) = channel::<u32>(1);
        let feed = feed
            .send_or_cut(Duration::from_secs(1), 1, 0)
            .await
            .unwrap();
        // The buffer is full and nobody reads: the send gives up after the stall, and the feed
        // is gone (its task can end and give its place back).
        let gone = feed.send_or_cut(Duration::from_secs(1), 2, 1).await;
        assert_eq!(gone.unwrap_err(), Gone::Cut);
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        let status = stream.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("resume after event id 1"));
        assert!(stream.next().await.is_none());
    }
}
