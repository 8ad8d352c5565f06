//! The notification watcher a gateway embeds: a stream of (subscription, event) deliveries for
//! the subscriptions its profiles own, each acknowledged by the gateway once it has delivered it.
//!
//! Delivery is at least once. The service keeps a cursor per subscription that only moves on
//! [`Delivery::ack`]; if the stream breaks (kanband restarting, a network blip) the watcher
//! reconnects with backoff and the service sends every unacknowledged notification again, so a
//! gateway may see a notification twice but never misses one.

use kanband_proto::pb;
use tokio_stream::StreamExt as _;
use tonic::{Status, Streaming};

use crate::{
    Client, ConnectError, Target,
    reconnect::{Backoff, CALL_TIMEOUT, call, connect_with_backoff, is_transient},
};

/// One notification to deliver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subscription it is for (platform, chat, thread, owner).
    pub subscription: pb::Subscription,
    /// The terminal event.
    pub event: pb::Event,
    client: Client,
}

impl Delivery {
    /// Acknowledges this delivery (and every earlier one of its subscription).
    pub async fn ack(&self) -> Result<pb::AckResponse, Status> {
        let mut client = self.client.notifications.clone();
        let message = pb::AckRequest {
            subscription_id: self.subscription.id.clone(),
            event_id: self.event.id,
        };
        call(CALL_TIMEOUT, message, |request| client.ack(request)).await
    }
}

/// A reconnecting watcher of notifications for a set of profiles.
#[derive(Debug)]
pub struct Notifier {
    target: Target,
    profiles: Vec<String>,
    backoff: Backoff,
    stream: Option<(Client, Streaming<pb::Notification>)>,
}

impl Notifier {
    /// A watcher of the subscriptions `profiles` own at `target`; connects on first use.
    pub fn new(target: impl Into<Target>, profiles: Vec<String>) -> Notifier {
        Notifier {
            target: target.into(),
            profiles,
            backoff: Backoff::default(),
            stream: None,
        }
    }

    /// The next delivery. Disconnects and transient refusals are retried with backoff; only a
    /// refusal that retrying cannot fix (bad address, invalid profiles) is returned.
    pub async fn next(&mut self) -> Result<Delivery, NotifierError> {
        loop {
            let (client, stream) = match &mut self.stream {
                Some(open) => open,
                None => {
                    let client = connect_with_backoff(&self.target, &mut self.backoff).await?;
                    let request = pb::DeliverRequest {
                        profiles: self.profiles.clone(),
                    };
                    match client.notifications.clone().deliver(request).await {
                        Ok(stream) => self.stream.insert((client, stream.into_inner())),
                        Err(status) if is_transient(&status) => {
                            tokio::time::sleep(self.backoff.next_delay()).await;
                            continue;
                        }
                        Err(status) => return Err(NotifierError::Refused(status)),
                    }
                }
            };
            match stream.next().await {
                Some(Ok(note)) => {
                    self.backoff.reset();
                    let (Some(subscription), Some(event)) = (note.subscription, note.event) else {
                        continue;
                    };
                    return Ok(Delivery {
                        subscription,
                        event,
                        client: client.clone(),
                    });
                }
                Some(Err(status)) if !is_transient(&status) && !is_cut_off(&status) => {
                    self.stream = None;
                    return Err(NotifierError::Refused(status));
                }
                // The stream ended or broke: reconnect; unacknowledged notifications come again.
                Some(Err(_)) | None => {
                    self.stream = None;
                    tokio::time::sleep(self.backoff.next_delay()).await;
                }
            }
        }
    }
}

/// A stream cut off because its reader fell behind: reconnecting is the remedy.
fn is_cut_off(status: &Status) -> bool {
    status.code() == tonic::Code::ResourceExhausted
}

/// Why the watcher stopped.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The address is unusable.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The service refused the watcher in a way retrying cannot fix.
    #[error("kanband refused the notification stream: {}", .0.message())]
    Refused(Status),
}
