//! `kanban.v1.Leases`.

use std::{collections::BTreeMap, pin::Pin, sync::Arc};

use kanband_proto::pb::{self, keep_alive_response::Event, leases_server::Leases};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self, capabilities};
use crate::{
    app::{App, session_lost},
    domain::{ids, limits, validate},
    error::Error,
    leases::{
        registry::{Push, SessionRecord},
        rules::{self, Ending, Exit, RevokeCause, Use},
    },
    store::claims::{Finish, Grant, SESSION, TOKEN},
};

/// The Leases service.
#[derive(Debug, Clone)]
pub struct LeasesService {
    app: Arc<App>,
}

impl LeasesService {
    /// Serves leases from the shared state.
    pub fn new(app: Arc<App>) -> Self {
        LeasesService { app }
    }

    async fn finish(
        &self,
        token: String,
        wanted: Use,
        finish: Finish,
    ) -> Result<Response<pb::Task>, Status> {
        let task = self.app.store.holder_finish(token, wanted, finish).await?;
        Ok(Response::new(task.into()))
    }
}

fn token(value: String) -> Result<String, Status> {
    ids::check("claim_token", TOKEN, &value)?;
    Ok(value)
}

fn session_id(value: String) -> Result<String, Status> {
    ids::check("session_id", SESSION, &value)?;
    Ok(value)
}

fn cause_to_pb(cause: RevokeCause) -> pb::RevokeCause {
    match cause {
        RevokeCause::Archived => pb::RevokeCause::Archived,
        RevokeCause::Reclaimed => pb::RevokeCause::Reclaimed,
        RevokeCause::Scheduled => pb::RevokeCause::Scheduled,
        RevokeCause::BoardReset => pb::RevokeCause::BoardReset,
        RevokeCause::MaxRuntime => pb::RevokeCause::MaxRuntime,
        RevokeCause::StaleProgress => pb::RevokeCause::StaleProgress,
    }
}

/// Validates an OpenSession request into a session record with a fresh id.
fn new_session(req: pb::OpenSessionRequest) -> Result<SessionRecord, Error> {
    validate::required_text("machine_id", &req.machine_id, limits::NAME_MAX)?;
    validate::text("hostname", &req.hostname, limits::OPTION_MAX)?;
    validate::profiles("profiles", &req.profiles)?;
    if !(1..=rules::SLOTS_MAX).contains(&req.slots) {
        return Err(Error::invalid(
            "slots",
            format!("{} is outside 1..={}", req.slots, rules::SLOTS_MAX),
        ));
    }
    if !(rules::TTL_MIN_MS..=rules::TTL_MAX_MS).contains(&req.ttl_ms) {
        return Err(Error::invalid(
            "ttl_ms",
            format!(
                "{} is outside {}..={} milliseconds",
                req.ttl_ms,
                rules::TTL_MIN_MS,
                rules::TTL_MAX_MS
            ),
        ));
    }
    let mut profiles = req.profiles;
    profiles.sort();
    profiles.dedup();
    Ok(SessionRecord {
        id: ids::fresh(SESSION),
        machine_id: req.machine_id,
        hostname: req.hostname,
        profiles,
        capabilities: capabilities("capabilities", req.capabilities)?,
        slots: req.slots,
        ttl_ms: req.ttl_ms,
        review_lane: req.review_lane,
    })
}

fn session_to_pb(s: SessionRecord) -> pb::Session {
    pb::Session {
        id: s.id,
        machine_id: s.machine_id,
        hostname: s.hostname,
        profiles: s.profiles,
        capabilities: s.capabilities,
        slots: s.slots,
        ttl_ms: s.ttl_ms,
        review_lane: s.review_lane,
    }
}

fn grant_to_pb(g: Grant) -> pb::Grant {
    pb::Grant {
        task: Some(g.task.into()),
        run_id: g.claim.run_id,
        claim_token: g.claim.token,
        epoch: g.claim.epoch,
        ttl_ms: g.ttl_ms,
        review: g.claim.review,
        profile: g.claim.profile,
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<pb::KeepAliveResponse, Status>> + Send>>;

fn event(event: Event) -> Result<pb::KeepAliveResponse, Status> {
    Ok(pb::KeepAliveResponse { event: Some(event) })
}

/// Serves one keep-alive stream: renews on every message, forwards pushes, and ends with
/// UNAVAILABLE when the service shuts down.
async fn keep_alive(
    app: Arc<App>,
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
                            Err(status) => {
                                let _ = out.send(Err(status)).await;
                                return;
                            }
                        };
                        pushes = app.registry.attach(&id);
                        if pushes.is_none() {
                            let _ = out.send(Err(session_lost(&id).into())).await;
                            return;
                        }
                        bound = Some(id);
                    }
                    let id = bound.as_deref().unwrap_or_default();
                    match app.registry.renew_session(id) {
                        Ok((ttl_ms, claim_tokens)) => {
                            event(Event::Renewed(pb::Renewed { ttl_ms, claim_tokens }))
                        }
                        Err(_) => Err(session_lost(id).into()),
                    }
                }
                Ok(None) | Err(_) => return,
            },
            push = async { pushes.as_mut().expect("bound").recv().await }, if pushes.is_some() => {
                match push {
                    Some(Push::Revoked { token, task_id, cause }) => event(Event::Revoked(pb::Revoked {
                        claim_token: token,
                        task_id,
                        cause: cause_to_pb(cause).into(),
                    })),
                    Some(Push::CancelRequested { token, task_id, grace }) => {
                        event(Event::CancelRequested(pb::CancelRequested {
                            claim_token: token,
                            task_id,
                            reason: format!(
                                "an operator reclaimed the task; stop within {} s or the claim is revoked",
                                grace.as_secs()
                            ),
                        }))
                    }
                    Some(Push::Drain) => event(Event::Drain(pb::Drain {})),
                    // The session closed or expired, or another stream took it over.
                    None => Err(session_lost(bound.as_deref().unwrap_or_default()).into()),
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
        let record = new_session(request.into_inner())?;
        let session = self.app.store.open_session(record).await?;
        Ok(Response::new(session_to_pb(session)))
    }

    type KeepAliveStream = KeepAliveStream;

    async fn keep_alive(
        &self,
        request: Request<Streaming<pb::KeepAliveRequest>>,
    ) -> Result<Response<Self::KeepAliveStream>, Status> {
        let (out, rx) = mpsc::channel(16);
        tokio::spawn(keep_alive(self.app.clone(), request.into_inner(), out));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn close_session(
        &self,
        request: Request<pb::CloseSessionRequest>,
    ) -> Result<Response<pb::CloseSessionResponse>, Status> {
        let id = session_id(request.into_inner().session_id)?;
        let released = self.app.store.close_session(id).await?;
        Ok(Response::new(pb::CloseSessionResponse { released }))
    }

    async fn acquire(
        &self,
        request: Request<pb::AcquireRequest>,
    ) -> Result<Response<pb::AcquireResponse>, Status> {
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
        let ttl_ms = self.app.renew(request.into_inner().claim_token).await?;
        Ok(Response::new(pb::RenewResponse { ttl_ms }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("note", &req.note, limits::SUMMARY_MAX)?;
        self.app.store.heartbeat(token, req.note).await?;
        Ok(Response::new(pb::HeartbeatResponse {}))
    }

    async fn complete(
        &self,
        request: Request<pb::CompleteRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("result", &req.result, limits::RESULT_MAX)?;
        validate::text("summary", &req.summary, limits::SUMMARY_MAX)?;
        let metadata: BTreeMap<String, String> = convert::metadata("metadata", req.metadata)?;
        self.finish(
            token,
            Use::Hold,
            Finish::Complete {
                result: req.result,
                summary: req.summary,
                metadata,
            },
        )
        .await
    }

    async fn block(
        &self,
        request: Request<pb::HolderBlockRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("reason", &req.reason, limits::SUMMARY_MAX)?;
        let kind = convert::block_kind("kind", req.kind)?;
        self.finish(
            token,
            Use::Hold,
            Finish::Block {
                kind,
                reason: req.reason,
            },
        )
        .await
    }

    async fn request_review(
        &self,
        request: Request<pb::RequestReviewRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("summary", &req.summary, limits::SUMMARY_MAX)?;
        self.finish(
            token,
            Use::Hold,
            Finish::RequestReview {
                summary: req.summary,
            },
        )
        .await
    }

    async fn request_changes(
        &self,
        request: Request<pb::RequestChangesRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::required_text("reason", &req.reason, limits::SUMMARY_MAX)?;
        self.finish(
            token,
            Use::Hold,
            Finish::RequestChanges { reason: req.reason },
        )
        .await
    }

    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("reason", &req.reason, limits::SUMMARY_MAX)?;
        self.finish(token, Use::Confirm, Finish::End(Ending::Released))
            .await
    }

    async fn report_exit(
        &self,
        request: Request<pb::ReportExitRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        use pb::report_exit_request::Exit as E;
        let req = request.into_inner();
        let token = token(req.claim_token)?;
        validate::text("output_tail", &req.output_tail, limits::SUMMARY_MAX)?;
        let exit = match req.exit {
            Some(E::Code(code)) => Exit::Code(code),
            Some(E::Signal(signal)) if signal > 0 => Exit::Signal(signal),
            Some(E::Signal(signal)) => {
                return Err(
                    Error::invalid("signal", format!("{signal} is not a signal number")).into(),
                );
            }
            Some(E::SpawnFailed(true)) => Exit::SpawnFailed,
            Some(E::SpawnFailed(false)) | None => {
                return Err(Error::invalid(
                    "exit",
                    "one of code, signal or spawn_failed (true) is required",
                )
                .into());
            }
        };
        let task = self
            .app
            .store
            .report_exit(token, exit, req.output_tail)
            .await?;
        Ok(Response::new(task.into()))
    }
}
