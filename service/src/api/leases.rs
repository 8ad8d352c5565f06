//! `kanban.v1.Leases`: every call goes through the [`Coordinator`]'s lease methods.

use std::{pin::Pin, sync::Arc};

use kanband_proto::pb::{self, keep_alive_response::Event, leases_server::Leases};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::{
    requests::{self, session_id, token},
    responses::{grant_to_pb, push_to_pb, session_to_pb},
};
use crate::{
    auth::{self, Identity, rules},
    coordinator::{Coordinator, Push},
    domain::{Author, limits, validate},
    error::{ALREADY_RECORDED_HEADER, Error},
    net,
    store::model::Ended,
};

/// The Leases service.
#[derive(Debug, Clone)]
pub struct LeasesService {
    app: Arc<Coordinator>,
}

impl LeasesService {
    /// Serves leases through the coordinator.
    pub fn new(app: Arc<Coordinator>) -> Self {
        LeasesService { app }
    }

    /// Refuses a holder verb on `token` by a caller the claim does not belong to.
    fn hold<T>(&self, request: &Request<T>, token: &str) -> Result<(), Status> {
        let owner = self.app.claim_owner(token);
        Ok(rules::may_hold(
            &auth::caller(request),
            token,
            owner.as_deref(),
        )?)
    }

    /// A complete's arguments checked (token, result, summary, metadata), then the complete.
    async fn complete_checked(
        &self,
        req: pb::CompleteRequest,
        by: Author,
    ) -> Result<Ended, Status> {
        let token = token(req.claim_token)?;
        validate::text("result", &req.result, limits::RESULT_MAX)?;
        validate::text("summary", &req.summary, limits::SUMMARY_MAX)?;
        let metadata = requests::metadata("metadata", req.metadata)?;
        Ok(self
            .app
            .complete(token, req.result, req.summary, metadata, by)
            .await?)
    }

    /// Refuses the use of a session by a caller that did not open it.
    fn use_session<T>(&self, request: &Request<T>, session_id: &str) -> Result<(), Status> {
        let owner = self.app.session_owner(session_id);
        Ok(rules::may_use_session(
            &auth::caller(request),
            session_id,
            owner.as_deref(),
        )?)
    }
}

/// The answer to a holder call that ended (or had already ended) a claim: the task, with the
/// already-recorded header on a retry.
fn ended(ended: Ended) -> Response<pb::Task> {
    let mut response = Response::new(ended.task.into());
    if ended.already_recorded {
        response
            .metadata_mut()
            .insert(ALREADY_RECORDED_HEADER, "true".parse().expect("ASCII"));
    }
    response
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<pb::KeepAliveResponse, Status>> + Send>>;

fn event(event: Event) -> Result<pb::KeepAliveResponse, Status> {
    Ok(pb::KeepAliveResponse { event: Some(event) })
}

/// Serves one keep-alive stream: renews on every message, forwards pushes, and ends with
/// UNAVAILABLE when the service shuts down.
async fn keep_alive(
    app: Arc<Coordinator>,
    caller: Identity,
    mut inbound: Streaming<pb::KeepAliveRequest>,
    out: mpsc::Sender<Result<pb::KeepAliveResponse, Status>>,
) {
    let stop = app.stopped();
    tokio::pin!(stop);
    let mut bound: Option<String> = None;
    let mut pushes: Option<mpsc::Receiver<Push>> = None;
    loop {
        let reply = tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(request)) => {
                    if let Some(id) = &bound {
                        if *id != request.session_id {
                            let _ = out.send(Err(Error::invalid(
                                "session_id",
                                format!("this stream keeps {id} alive, not {:?}", request.session_id),
                            ).into())).await;
                            return;
                        }
                    } else {
                        let id = match session_id(request.session_id) {
                            Ok(id) => id,
                            Err(err) => {
                                let _ = out.send(Err(err.into())).await;
                                return;
                            }
                        };
                        let owner = app.session_owner(&id);
                        if let Err(err) = rules::may_use_session(&caller, &id, owner.as_deref()) {
                            let _ = out.send(Err(err.into())).await;
                            return;
                        }
                        match app.keep_alive(&id) {
                            Ok(rx) => pushes = Some(rx),
                            Err(err) => {
                                let _ = out.send(Err(err.into())).await;
                                return;
                            }
                        }
                        bound = Some(id);
                    }
                    let id = bound.as_deref().unwrap_or_default();
                    match app.renew_session(id) {
                        Ok((ttl_ms, claim_tokens)) => {
                            event(Event::Renewed(pb::Renewed { ttl_ms, claim_tokens }))
                        }
                        Err(err) => Err(err.into()),
                    }
                }
                Ok(None) => return,
                Err(status) => Err(net::status::inbound(status)),
            },
            push = async { pushes.as_mut().expect("bound").recv().await }, if pushes.is_some() => {
                match push {
                    Some(push) => event(push_to_pb(push)),
                    // The session closed or expired, or another stream took it over.
                    None => Err(Error::session_lost(bound.as_deref().unwrap_or_default()).into()),
                }
            }
            () = &mut stop => {
                Err(Status::unavailable("kanband is shutting down; keep the session and reconnect"))
            }
        };
        let end = reply.is_err();
        if out.send(reply).await.is_err() || end {
            return;
        }
    }
}

#[tonic::async_trait]
impl Leases for LeasesService {
    async fn open_session(
        &self,
        request: Request<pb::OpenSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = auth::caller(&request);
        let mut record = requests::new_session(request.into_inner())?;
        rules::may_open(&caller, &record.machine_id, &record.profiles)?;
        record.owner = caller.key;
        let session = self.app.open_session(record).await?;
        Ok(Response::new(session_to_pb(session)))
    }

    type KeepAliveStream = KeepAliveStream;

    async fn keep_alive(
        &self,
        request: Request<Streaming<pb::KeepAliveRequest>>,
    ) -> Result<Response<Self::KeepAliveStream>, Status> {
        let (out, rx) = mpsc::channel(16);
        let caller = auth::caller(&request);
        tokio::spawn(keep_alive(
            self.app.clone(),
            caller,
            request.into_inner(),
            out,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn close_session(
        &self,
        request: Request<pb::CloseSessionRequest>,
    ) -> Result<Response<pb::CloseSessionResponse>, Status> {
        self.use_session(&request, &request.get_ref().session_id)?;
        let by = auth::caller(&request).author("");
        let id = session_id(request.into_inner().session_id)?;
        let released = self.app.close_session(id, by).await?;
        Ok(Response::new(pb::CloseSessionResponse { released }))
    }

    async fn acquire(
        &self,
        request: Request<pb::AcquireRequest>,
    ) -> Result<Response<pb::AcquireResponse>, Status> {
        self.use_session(&request, &request.get_ref().session_id)?;
        let req = request.into_inner();
        let grant = self.app.acquire(req.session_id, req.wait_ms).await?;
        Ok(Response::new(pb::AcquireResponse {
            grant: grant.map(grant_to_pb),
        }))
    }

    async fn renew(
        &self,
        request: Request<pb::RenewRequest>,
    ) -> Result<Response<pb::RenewResponse>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let ttl_ms = self.app.renew(request.into_inner().claim_token).await?;
        Ok(Response::new(pb::RenewResponse { ttl_ms }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("note", &req.note, limits::SUMMARY_MAX)?;
        self.app.heartbeat(token, req.note).await?;
        Ok(Response::new(pb::HeartbeatResponse {}))
    }

    async fn complete(
        &self,
        request: Request<pb::CompleteRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let by = auth::caller(&request).author("");
        let task = self.complete_checked(request.into_inner(), by).await?;
        Ok(ended(task))
    }

    async fn complete_and_acquire(
        &self,
        request: Request<pb::CompleteAndAcquireRequest>,
    ) -> Result<Response<pb::CompleteAndAcquireResponse>, Status> {
        let (complete, acquire) = match request.get_ref() {
            pb::CompleteAndAcquireRequest {
                complete: Some(complete),
                acquire: Some(acquire),
            } => (complete, acquire),
            pb::CompleteAndAcquireRequest { complete: None, .. } => {
                return Err(Error::invalid("complete", "must be set").into());
            }
            pb::CompleteAndAcquireRequest { acquire: None, .. } => {
                return Err(Error::invalid("acquire", "must be set").into());
            }
        };
        // Everything that can refuse either half is asked before the complete commits.
        self.hold(&request, &complete.claim_token)?;
        self.use_session(&request, &acquire.session_id)?;
        self.app
            .check_acquire(&acquire.session_id, acquire.wait_ms)?;
        let by = auth::caller(&request).author("");
        let pb::CompleteAndAcquireRequest { complete, acquire } = request.into_inner();
        let (complete, acquire) = (complete.unwrap_or_default(), acquire.unwrap_or_default());
        let completed = self.complete_checked(complete, by).await?;
        let grant = self
            .app
            .acquire(acquire.session_id, acquire.wait_ms)
            .await?;
        let (metadata, task, _) = ended(completed).into_parts();
        Ok(Response::from_parts(
            metadata,
            pb::CompleteAndAcquireResponse {
                completed: Some(task),
                grant: grant.map(grant_to_pb),
            },
            Default::default(),
        ))
    }

    async fn block(
        &self,
        request: Request<pb::HolderBlockRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let by = auth::caller(&request).author("");
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("reason", &req.reason, limits::SUMMARY_MAX)?;
        let kind = requests::block_kind("kind", req.kind)?;
        let task = self.app.block(token, kind, req.reason, by).await?;
        Ok(ended(task))
    }

    async fn request_review(
        &self,
        request: Request<pb::RequestReviewRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let by = auth::caller(&request).author("");
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("summary", &req.summary, limits::SUMMARY_MAX)?;
        let task = self.app.request_review(token, req.summary, by).await?;
        Ok(ended(task))
    }

    async fn request_changes(
        &self,
        request: Request<pb::RequestChangesRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let by = auth::caller(&request).author("");
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::required_text("reason", &req.reason, limits::SUMMARY_MAX)?;
        let task = self.app.request_changes(token, req.reason, by).await?;
        Ok(ended(task))
    }

    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let by = auth::caller(&request).author("");
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("reason", &req.reason, limits::SUMMARY_MAX)?;
        let task = self.app.release(token, req.reason, by).await?;
        Ok(ended(task))
    }

    async fn report_exit(
        &self,
        request: Request<pb::ReportExitRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.hold(&request, &request.get_ref().claim_token)?;
        let by = auth::caller(&request).author("");
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("output_tail", &req.output_tail, limits::SUMMARY_MAX)?;
        let exit = requests::exit(req.exit)?;
        let task = self
            .app
            .report_exit(token, exit, req.output_tail, by)
            .await?;
        Ok(ended(task))
    }
}
