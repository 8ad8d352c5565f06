//! `kanban.v1.Notifications`.

use std::{pin::Pin, sync::Arc};

use kanband_proto::pb::{self, notifications_server::Notifications};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{
    feed::{self, Feed},
    requests::{self, task_id},
    responses::subscription_to_pb,
};
use crate::{
    auth::{self, rules},
    coordinator::Coordinator,
    domain::{limits, validate},
    error::Error,
    net,
    store::model::Subscription,
    streams::{Pool, Slot},
};

/// Notifications read from the database per query.
const DELIVERY_PAGE: u32 = 256;

/// The Notifications service.
#[derive(Debug, Clone)]
pub struct NotificationsService {
    app: Arc<Coordinator>,
}

impl NotificationsService {
    /// Serves notifications from the shared state.
    pub fn new(app: Arc<Coordinator>) -> Self {
        NotificationsService { app }
    }
}

type Out = Feed<pb::Notification>;

/// Feeds one notifier: every unacknowledged notification of its profiles, then new ones.
async fn deliver(app: Arc<Coordinator>, _slot: Slot, profiles: Vec<String>, mut out: Out) {
    let mut latest = app.event_ids();
    let stop = app.stopped();
    tokio::pin!(stop);
    // Highest event id sent on this stream: events are delivered in id order, so everything
    // at or below it has been sent (acknowledged or not) and is not sent twice here.
    let mut sent = 0;
    loop {
        let upto = *latest.borrow_and_update();
        let page = match app
            .store()
            .pending_notifications(profiles.clone(), sent, DELIVERY_PAGE)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                out.finish(err.into());
                return;
            }
        };
        let full = page.len() == DELIVERY_PAGE as usize;
        for (subscription, event) in page {
            let id = event.id;
            let item = pb::Notification {
                subscription: Some(subscription_to_pb(subscription)),
                event: Some(event.into()),
            };
            out = match out.send_or_cut(app.watcher_stall(), item, sent).await {
                Ok(out) => out,
                Err(_) => return,
            };
            sent = id;
        }
        if full {
            continue;
        }
        sent = sent.max(upto);
        tokio::select! {
            changed = latest.changed() => if changed.is_err() { return },
            () = &mut stop => {
                let status = Status::unavailable("kanband is shutting down; reconnect to get undelivered notifications");
                out.finish(status);
                return;
            }
            () = out.closed() => return,
        }
    }
}

#[tonic::async_trait]
impl Notifications for NotificationsService {
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        rules::may_be_notified(&caller, std::slice::from_ref(&req.owner_profile))?;
        let task = task_id("task_id", req.task_id)?;
        validate::text("platform", &req.platform, limits::NAME_MAX)?;
        validate::text("chat_id", &req.chat_id, limits::OPTION_MAX)?;
        validate::text("thread_id", &req.thread_id, limits::OPTION_MAX)?;
        if req.owner_profile.is_empty() {
            return Err(Error::invalid("owner_profile", "must not be empty").into());
        }
        validate::profile("owner_profile", &req.owner_profile)?;
        let mode = requests::mode("mode", req.mode)?;
        let subscription = self
            .app
            .store()
            .subscribe(Subscription {
                id: String::new(),
                task_id: task,
                platform: req.platform,
                chat_id: req.chat_id,
                thread_id: req.thread_id,
                owner_profile: req.owner_profile,
                mode,
                cursor: 0,
                created_at: 0,
            })
            .await?;
        Ok(Response::new(subscription_to_pb(subscription)))
    }

    async fn unsubscribe(
        &self,
        request: Request<pb::UnsubscribeRequest>,
    ) -> Result<Response<pb::UnsubscribeResponse>, Status> {
        let id = requests::subscription_id("id", request.into_inner().id)?;
        self.app.store().unsubscribe(id).await?;
        Ok(Response::new(pb::UnsubscribeResponse {}))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let owner = request.into_inner().owner_profile;
        validate::profiles("owner_profile", std::slice::from_ref(&owner))?;
        let list = self.app.store().subscriptions(owner).await?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: list.into_iter().map(subscription_to_pb).collect(),
        }))
    }

    type DeliverStream = Pin<Box<dyn Stream<Item = Result<pb::Notification, Status>> + Send>>;

    async fn deliver(
        &self,
        request: Request<pb::DeliverRequest>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let conn = net::conn_streams(&request);
        let caller = auth::caller(&request);
        let profiles = request.into_inner().profiles;
        validate::profiles("profiles", &profiles)?;
        rules::may_be_notified(&caller, &profiles)?;
        let slot = self.app.stream_slot(Pool::Deliver, conn.as_deref())?;
        let (out, rx) = feed::channel(DELIVERY_PAGE as usize);
        tokio::spawn(deliver(self.app.clone(), slot, profiles, out));
        Ok(Response::new(Box::pin(rx)))
    }

    async fn ack(
        &self,
        request: Request<pb::AckRequest>,
    ) -> Result<Response<pb::AckResponse>, Status> {
        let req = request.into_inner();
        let id = requests::subscription_id("subscription_id", req.subscription_id)?;
        let event_id = i64::try_from(req.event_id)
            .map_err(|_| Error::invalid("event_id", "is out of range"))?;
        let (cursor, removed) = self.app.store().ack(id, event_id).await?;
        Ok(Response::new(pb::AckResponse {
            cursor: cursor as u64,
            removed,
        }))
    }
}
