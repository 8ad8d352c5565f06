//! `kanban.v1.Admin`.

use std::{sync::Arc, time::Duration};

use kanband_proto::pb::{self, admin_server::Admin};
use tonic::{Request, Response, Status};

use super::{requests::capabilities, responses::timestamp};
use crate::{
    auth::{NewToken, Role},
    clock::now_ms,
    coordinator::Coordinator,
    domain::{dispatch::SessionView, limits, validate},
    error::Error,
    store::model::TokenRecord,
};

fn token_to_pb(record: TokenRecord) -> pb::TokenInfo {
    pb::TokenInfo {
        id: record.id,
        name: record.name,
        role: record.role.as_str().to_owned(),
        machine_id: record.machine_id,
        profiles: record.profiles,
        created_at: Some(timestamp(record.created_at)),
        revoked_at: record.revoked_at.map(timestamp),
        expires_at: record.expires_at.map(timestamp),
    }
}

/// The Admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    app: Arc<Coordinator>,
}

impl AdminService {
    /// Serves admin questions through the coordinator.
    pub fn new(app: Arc<Coordinator>) -> Self {
        AdminService { app }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn dispatch_preview(
        &self,
        request: Request<pb::DispatchPreviewRequest>,
    ) -> Result<Response<pb::DispatchPreviewResponse>, Status> {
        let req = request.into_inner();
        let session = if req.session_id.is_empty() {
            validate::profiles("profiles", &req.profiles)?;
            validate::text("machine_id", &req.machine_id, limits::NAME_MAX)?;
            SessionView {
                id: String::new(),
                profiles: req.profiles,
                capabilities: capabilities("capabilities", req.capabilities)?,
                machine_id: req.machine_id,
                review_lane: req.review_lane,
                free_slots: 1,
            }
        } else {
            self.app.session_view(&req.session_id)?
        };
        let board = if req.board.is_empty() {
            None
        } else {
            validate::slug("board", &req.board)?;
            Some(req.board)
        };
        let limit = validate::page_size("page_size", req.page_size, limits::PAGE_SIZE_DEFAULT)?;
        let candidates = self
            .app
            .dispatch_preview(session, board, limit)
            .await?
            .into_iter()
            .map(|row| pb::Candidate {
                task: Some(row.task.into()),
                would_grant: row.would_grant,
                why_not: row.why_not.map(|w| w.to_string()).unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::DispatchPreviewResponse { candidates }))
    }

    async fn check_invariants(
        &self,
        _request: Request<pb::CheckInvariantsRequest>,
    ) -> Result<Response<pb::CheckInvariantsResponse>, Status> {
        let report = self.app.store().check_invariants().await?;
        Ok(Response::new(pb::CheckInvariantsResponse {
            ok: report.violations.is_empty(),
            violations: report
                .violations
                .into_iter()
                .map(|v| pb::Violation {
                    invariant: v.invariant.to_owned(),
                    detail: v.detail,
                })
                .collect(),
            tasks: report.tasks,
            claims: report.claims,
            events: report.events,
        }))
    }

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Result<Response<pb::BackupResponse>, Status> {
        let name = request.into_inner().path;
        validate::required_text("path", &name, limits::PATH_MAX)?;
        let report = self.app.backup(name).await?;
        Ok(Response::new(pb::BackupResponse {
            bytes: report.bytes,
            path: report.path.display().to_string(),
            attachments_path: report.attachments_dir.display().to_string(),
            attachments: report.blobs,
            attachment_bytes: report.blob_bytes,
        }))
    }

    async fn set_storage_limit(
        &self,
        request: Request<pb::SetStorageLimitRequest>,
    ) -> Result<Response<pb::SetStorageLimitResponse>, Status> {
        let (max_bytes, used_bytes) = self
            .app
            .store()
            .set_storage_limit(request.into_inner().max_bytes)
            .await?;
        Ok(Response::new(pb::SetStorageLimitResponse {
            max_bytes,
            used_bytes,
        }))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let req = request.into_inner();
        let role = Role::parse(&req.role).ok_or_else(|| {
            Error::invalid(
                "role",
                format!(
                    "{:?} is not admin, operator, supervisor or reader",
                    req.role
                ),
            )
        })?;
        let new = NewToken {
            name: req.name,
            role,
            machine_id: req.machine_id,
            profiles: req.profiles,
            expires_in: (req.expires_in_ms > 0).then(|| Duration::from_millis(req.expires_in_ms)),
        };
        let (secret, record) = self.app.tokens().create(self.app.store(), new).await?;
        tracing::info!(id = %record.id, name = %record.name, role = %record.role, "token created");
        Ok(Response::new(pb::CreateTokenResponse {
            token: Some(token_to_pb(record)),
            secret,
        }))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let tokens = self.app.store().tokens().await?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens
                .into_iter()
                .map(|(record, _hash)| token_to_pb(record))
                .collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::TokenInfo>, Status> {
        let id = request.into_inner().id;
        let record = self.app.tokens().revoke(self.app.store(), id).await?;
        tracing::info!(id = %record.id, name = %record.name, "token revoked");
        Ok(Response::new(token_to_pb(record)))
    }

    async fn stats(
        &self,
        _request: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsResponse>, Status> {
        let (by_status, oldest_ready_ms) = self.app.store().task_stats().await?;
        let leases = self.app.lease_stats();
        let (count, p50_us, p99_us, max_us) = leases.expiry_lag_us;
        Ok(Response::new(pb::StatsResponse {
            tasks_by_status: by_status.into_iter().collect(),
            live_sessions: leases.live_sessions as u64,
            live_claims: leases.live_claims as u64,
            oldest_ready_age_ms: oldest_ready_ms
                .map(|at| now_ms().saturating_sub(at).max(0) as u64)
                .unwrap_or(0),
            expiry_lag: Some(pb::Percentiles {
                count,
                p50_us,
                p99_us,
                max_us,
            }),
            waiting_pollers: leases.waiting_pollers as u64,
            deadlines_retrying: leases.deadlines_retrying as u64,
        }))
    }
}
