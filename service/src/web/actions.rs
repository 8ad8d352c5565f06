//! Sign-in and every mutation. Each action is one call of the `kanban.v1` service the API
//! runs, with the signed-in identity as its actor, so it obeys the same rules and a refusal
//! carries the same message.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use kanband_proto::pb::{self, TaskStatus, tasks_server::Tasks};
use serde::Deserialize;
use serde_json::json;
use tonic::Request;

use super::{
    Ctx,
    guard::{Actor, Viewer, host_ok, same_origin, session_cookie},
    moves::{MoveOp, plan},
    reads::status,
    reply::{ApiError, ApiResult, body},
    sessions::{COOKIE, Signed},
};

/// The `Set-Cookie` value of a new session.
fn cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"))
        .expect("hex is a valid header value")
}

/// Query of the sign-in link.
#[derive(Debug, Deserialize)]
pub struct SigninQuery {
    token: Option<String>,
}

/// `GET /signin?token=...`: the link kanband prints; signs in and goes to the board.
pub async fn signin_link(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Query(query): Query<SigninQuery>,
) -> Response {
    if !host_ok(&ctx, &headers) {
        return ApiError::denied("Host: not an address of this kanband").into_response();
    }
    match ctx.sessions.sign_in(query.token.as_deref().unwrap_or("")) {
        Some((id, _)) => {
            let mut response = Redirect::to("/").into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie(&id));
            response
        }
        None => (
            StatusCode::UNAUTHORIZED,
            Html(
                "<!doctype html><title>kanband: sign-in</title><p>This sign-in link is unknown, \
                 used or expired. Each link signs in once; <a href=\"/\">open the board</a> to \
                 sign in with a new token.</p>",
            ),
        )
            .into_response(),
    }
}

/// Body of `POST /api/signin`.
#[derive(Debug, Default, Deserialize)]
pub struct SigninBody {
    token: String,
}

/// `POST /api/signin {"token": ...}`: exchanges a token for a session cookie: a one-time
/// sign-in token (used up), or a named bearer token, whose role the session has until the
/// token is revoked or expires.
pub async fn signin(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    if !host_ok(&ctx, &headers) || !same_origin(&headers) {
        return Err(ApiError::denied("Origin: sign in from kanband's own page"));
    }
    let SigninBody { token } = body(&bytes)?;
    let token = token.trim();
    let (id, signed) = ctx
        .sessions
        .sign_in(token)
        .or_else(|| {
            let (identity, state) = ctx.app.tokens().authenticate(token).ok()?;
            Some(ctx.sessions.open(identity, state))
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "token: unknown, used, expired or revoked",
            )
        })?;
    let mut response = Json(json!({
        "name": signed.identity.name,
        "role": signed.identity.role.as_str(),
        "canAct": signed.identity.role.can_act(),
        "csrf": signed.csrf,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&id));
    Ok(response)
}

/// `POST /api/signout`: ends the session (any role; needs the CSRF secret).
pub async fn signout(
    Viewer(signed): Viewer,
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let given = headers
        .get(super::guard::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same_origin(&headers) || !super::sessions::Sessions::csrf_ok(&signed, given) {
        return Err(ApiError::denied("sign out from kanband's own page"));
    }
    if let Some(id) = session_cookie(&headers) {
        ctx.sessions.sign_out(id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kanband_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(response)
}

/// The actor name recorded for what `signed` does.
fn actor(signed: &Signed) -> String {
    signed.identity.name.clone()
}

/// Wraps a request message for an in-process call, carrying the identity for the services.
fn request<T>(signed: &Signed, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(signed.identity.clone());
    request
}

/// `POST /api/tasks`: `CreateTaskRequest` -> `CreateTaskResponse`; `created_by` is the signed-in
/// identity.
pub async fn create(
    Actor(signed): Actor,
    State(ctx): State<Arc<Ctx>>,
    bytes: Bytes,
) -> ApiResult<Json<pb::CreateTaskResponse>> {
    let mut message: pb::CreateTaskRequest = body(&bytes)?;
    message.created_by = actor(&signed);
    Ok(Json(
        ctx.tasks
            .create_task(request(&signed, message))
            .await?
            .into_inner(),
    ))
}

/// Body of a move.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoveBody {
    /// The status the page showed; a task that moved on since is refused, not overwritten.
    from: Option<String>,
    /// The column it was dropped on.
    to: String,
    /// Reason recorded for a block.
    reason: Option<String>,
}

/// `POST /api/tasks/{id}/{action}`: `action` is `comment` (AddCommentRequest), `assign`
/// (AssignTaskRequest), `update` (UpdateTaskRequest), `block`, `unblock`, `promote`,
/// `schedule`, `reopen-review`, `archive`, `reclaim` (their requests) or `move`
/// (`{"from", "to", "reason"}`). The id and actor come from the path and the session. Answers
/// with the task (a comment with the `Comment`).
pub async fn act(
    Actor(signed): Actor,
    State(ctx): State<Arc<Ctx>>,
    Path((id, action)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let tasks = &ctx.tasks;
    let who = actor(&signed);
    let task = match action.as_str() {
        "comment" => {
            let mut m: pb::AddCommentRequest = body(&bytes)?;
            (m.task_id, m.author) = (id, who);
            let comment = tasks.add_comment(request(&signed, m)).await?.into_inner();
            return Ok(Json(comment).into_response());
        }
        "assign" => {
            let mut m: pb::AssignTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.assign_task(request(&signed, m)).await?
        }
        "update" => {
            let mut m: pb::UpdateTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.update_task(request(&signed, m)).await?
        }
        "block" => {
            let mut m: pb::BlockTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.block_task(request(&signed, m)).await?
        }
        "unblock" => {
            let mut m: pb::UnblockTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.unblock_task(request(&signed, m)).await?
        }
        "promote" => {
            let mut m: pb::PromoteTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.promote_task(request(&signed, m)).await?
        }
        "schedule" => {
            let mut m: pb::ScheduleTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.schedule_task(request(&signed, m)).await?
        }
        "reopen-review" => {
            let mut m: pb::ReopenReviewRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.reopen_review(request(&signed, m)).await?
        }
        "archive" => {
            let mut m: pb::ArchiveTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.archive_task(request(&signed, m)).await?
        }
        "reclaim" => {
            let mut m: pb::ReclaimTaskRequest = body(&bytes)?;
            (m.id, m.actor) = (id, who);
            tasks.reclaim_task(request(&signed, m)).await?
        }
        "move" => return Ok(Json(moved(&ctx, &signed, id, body(&bytes)?).await?).into_response()),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("no action {action:?}"),
            ));
        }
    };
    Ok(Json(task.into_inner()).into_response())
}

/// Performs the operation a card's move means, after checking the task is still where the page
/// showed it.
async fn moved(ctx: &Ctx, signed: &Signed, id: String, m: MoveBody) -> ApiResult<pb::Task> {
    let to = status(&m.to)?;
    let current = ctx
        .tasks
        .get_task(request(
            signed,
            pb::GetTaskRequest {
                id: id.clone(),
                recent_events: 1,
            },
        ))
        .await?
        .into_inner()
        .task
        .unwrap_or_default();
    let now = TaskStatus::try_from(current.status).unwrap_or(TaskStatus::Unspecified);
    let name = |s: TaskStatus| {
        s.as_str_name()
            .trim_start_matches("TASK_STATUS_")
            .to_lowercase()
    };
    if let Some(from) = m.from.as_deref().filter(|f| !f.is_empty()) {
        let shown = status(from)?;
        if shown != now {
            return Err(ApiError::precondition(format!(
                "the task moved on: it is {} now, not {}; nothing was changed",
                name(now),
                name(shown)
            )));
        }
    }
    let op = plan(now, to).map_err(|why| {
        ApiError::precondition(format!(
            "cannot move a {} task to {}: {why}",
            name(now),
            name(to)
        ))
    })?;
    let actor = actor(signed);
    let tasks = &ctx.tasks;
    let task = match op {
        MoveOp::Promote => {
            tasks
                .promote_task(request(signed, pb::PromoteTaskRequest { id, actor }))
                .await?
        }
        MoveOp::Unblock => {
            tasks
                .unblock_task(request(signed, pb::UnblockTaskRequest { id, actor }))
                .await?
        }
        MoveOp::Block(kind) => {
            let reason = m
                .reason
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| "moved to blocked on the board".to_owned());
            tasks
                .block_task(request(
                    signed,
                    pb::BlockTaskRequest {
                        id,
                        reason,
                        kind: kind as i32,
                        actor,
                    },
                ))
                .await?
        }
        MoveOp::Schedule => {
            tasks
                .schedule_task(request(
                    signed,
                    pb::ScheduleTaskRequest {
                        id,
                        delay_seconds: 0,
                        actor,
                    },
                ))
                .await?
        }
        MoveOp::ReopenReview => {
            tasks
                .reopen_review(request(signed, pb::ReopenReviewRequest { id, actor }))
                .await?
        }
        MoveOp::Reclaim => {
            tasks
                .reclaim_task(request(
                    signed,
                    pb::ReclaimTaskRequest {
                        id,
                        actor,
                        grace_seconds: 0,
                        reason: String::new(),
                    },
                ))
                .await?
        }
        MoveOp::Archive => {
            tasks
                .archive_task(request(
                    signed,
                    pb::ArchiveTaskRequest {
                        id,
                        actor,
                        reason: String::new(),
                    },
                ))
                .await?
        }
    };
    Ok(task.into_inner())
}
