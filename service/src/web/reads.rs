//! The API's reads: who am I, boards, a column page, a task, why a task is not running, and
//! the machines view. Any signed-in role may read.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::{Path, Query, State},
};
use kanband_proto::{
    Timestamp,
    pb::{self, TaskStatus, admin_server::Admin, boards_server::Boards, tasks_server::Tasks},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Request;

use crate::{api::responses::session_to_pb, domain::lease::ClaimState};

use super::{
    Ctx,
    guard::Viewer,
    reply::{ApiError, ApiResult},
};

/// Most candidates asked of the dispatch preview per session ("why not running").
const PREVIEW_PAGE: u32 = 1000;

/// Most claims whose last progress heartbeat the machines view looks up.
const HEARTBEAT_LOOKUPS: usize = 50;

/// Parses a status name (`TASK_STATUS_READY` or `ready`).
pub fn status(name: &str) -> ApiResult<TaskStatus> {
    let upper = name.to_ascii_uppercase();
    TaskStatus::from_str_name(&upper)
        .or_else(|| TaskStatus::from_str_name(&format!("TASK_STATUS_{upper}")))
        .filter(|s| *s != TaskStatus::Unspecified)
        .ok_or_else(|| ApiError::invalid(format!("status: {name:?} is not a task status")))
}

/// `GET /api/me`: the signed-in identity, its CSRF secret, and whether it may act.
pub async fn me(Viewer(signed): Viewer) -> Json<Value> {
    Json(json!({
        "name": signed.identity.name,
        "role": signed.identity.role.as_str(),
        "canAct": signed.identity.role.can_act(),
        "csrf": signed.csrf,
    }))
}

/// Query of `GET /api/boards`.
#[derive(Debug, Deserialize)]
pub struct BoardsQuery {
    archived: Option<String>,
}

/// `GET /api/boards`: `ListBoardsResponse`.
pub async fn boards(
    _: Viewer,
    State(ctx): State<Arc<Ctx>>,
    Query(query): Query<BoardsQuery>,
) -> ApiResult<Json<pb::ListBoardsResponse>> {
    let request = pb::ListBoardsRequest {
        include_archived: query.archived.is_some_and(|a| !a.is_empty() && a != "0"),
    };
    Ok(Json(
        ctx.boards
            .list_boards(Request::new(request))
            .await?
            .into_inner(),
    ))
}

/// Query of a column page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksQuery {
    /// Comma-separated statuses; empty means all but archived.
    status: Option<String>,
    assignee: Option<String>,
    tenant: Option<String>,
    /// Text that the title or id must contain (case-insensitive).
    q: Option<String>,
    page_size: Option<u32>,
    page_token: Option<String>,
}

/// `GET /api/boards/{slug}/tasks`: one page of a column, as `ListTasksResponse`. With `q`,
/// pages of the board are read until enough match (each answer then holds every match of the
/// pages it read, so a page may be longer than asked).
pub async fn tasks(
    _: Viewer,
    State(ctx): State<Arc<Ctx>>,
    Path(slug): Path<String>,
    Query(query): Query<TasksQuery>,
) -> ApiResult<Json<pb::ListTasksResponse>> {
    let statuses = query
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| status(s).map(|s| s as i32))
        .collect::<ApiResult<Vec<_>>>()?;
    let wanted = query.page_size.unwrap_or(0);
    let text = query.q.unwrap_or_default().trim().to_lowercase();
    let mut request = pb::ListTasksRequest {
        board: slug,
        statuses,
        assignee: query.assignee.unwrap_or_default(),
        tenant: query.tenant.unwrap_or_default(),
        page_size: wanted,
        page_token: query.page_token.unwrap_or_default(),
    };
    if text.is_empty() {
        return Ok(Json(
            ctx.tasks
                .list_tasks(Request::new(request))
                .await?
                .into_inner(),
        ));
    }
    let wanted = if wanted == 0 { 100 } else { wanted } as usize;
    request.page_size = 1000;
    let mut found = pb::ListTasksResponse::default();
    loop {
        let page = ctx
            .tasks
            .list_tasks(Request::new(request.clone()))
            .await?
            .into_inner();
        found.tasks.extend(
            page.tasks.into_iter().filter(|task| {
                task.title.to_lowercase().contains(&text) || task.id.contains(&text)
            }),
        );
        found.next_page_token = page.next_page_token;
        if found.next_page_token.is_empty() || found.tasks.len() >= wanted {
            return Ok(Json(found));
        }
        request.page_token = found.next_page_token.clone();
    }
}

/// Query of `GET /api/tasks/{id}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskQuery {
    recent_events: Option<u32>,
}

/// `GET /api/tasks/{id}`: `TaskDetail`.
pub async fn task(
    _: Viewer,
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    Query(query): Query<TaskQuery>,
) -> ApiResult<Json<pb::TaskDetail>> {
    let request = pb::GetTaskRequest {
        id,
        recent_events: query.recent_events.unwrap_or(0),
    };
    Ok(Json(
        ctx.tasks
            .get_task(Request::new(request))
            .await?
            .into_inner(),
    ))
}

/// Why a task in `status` is not waiting to be claimed; `None` for ready and review tasks.
fn status_reason(task: &pb::Task, parents: &[String]) -> Option<String> {
    let status = TaskStatus::try_from(task.status).unwrap_or(TaskStatus::Unspecified);
    Some(match status {
        TaskStatus::Ready | TaskStatus::Review => return None,
        TaskStatus::Running => "It is running.".to_owned(),
        TaskStatus::Todo if parents.is_empty() => {
            "It is in todo: promote it to make it ready.".to_owned()
        }
        TaskStatus::Todo => format!(
            "It waits for its parents to finish: {}.",
            parents.join(", ")
        ),
        TaskStatus::Triage => "It is in triage: a person must promote it.".to_owned(),
        TaskStatus::Blocked if task.block_reason.is_empty() => {
            "It is blocked: unblock it to make it ready.".to_owned()
        }
        TaskStatus::Blocked => format!("It is blocked: {}", task.block_reason),
        TaskStatus::Scheduled => match &task.scheduled_until {
            Some(until) => format!("It is scheduled: it becomes ready at {}.", time(until)),
            None => "It is scheduled with no wake-up time: promote it to make it ready.".to_owned(),
        },
        TaskStatus::Done | TaskStatus::Archived => "It is finished.".to_owned(),
        TaskStatus::Unspecified => "Its status is unknown.".to_owned(),
    })
}

/// A timestamp in its proto3 JSON form (RFC 3339).
fn time(ts: &Timestamp) -> String {
    serde_json::to_value(ts)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `GET /api/tasks/{id}/why`: "why is this not running?", answered from the task's status and,
/// for a ready or review task, by the dispatch preview of every open session.
pub async fn why(
    _: Viewer,
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let detail = ctx
        .tasks
        .get_task(Request::new(pb::GetTaskRequest {
            id: id.clone(),
            recent_events: 1,
        }))
        .await?
        .into_inner();
    let task = detail.task.unwrap_or_default();
    if let Some(summary) = status_reason(&task, &detail.parents) {
        return Ok(Json(json!({ "summary": summary, "sessions": [] })));
    }
    let mut summary = String::new();
    if let Some(until) = &task.cooldown_until {
        summary = format!(
            "It cools down after a rate-limited run until {}. ",
            time(until)
        );
    }
    let sessions = ctx.app.live_sessions();
    if sessions.is_empty() {
        summary.push_str("No supervisor has a session open, so nothing can claim it.");
        return Ok(Json(json!({ "summary": summary, "sessions": [] })));
    }
    summary.push_str("It is waiting to be claimed. What each open session says:");
    let mut answers = Vec::new();
    for live in sessions {
        let preview = ctx
            .admin
            .dispatch_preview(Request::new(pb::DispatchPreviewRequest {
                session_id: live.record.id.clone(),
                board: task.board.clone(),
                page_size: PREVIEW_PAGE,
                ..Default::default()
            }))
            .await;
        let (would_grant, why_not) = match preview {
            Ok(preview) => match preview
                .into_inner()
                .candidates
                .into_iter()
                .find(|c| c.task.as_ref().is_some_and(|t| t.id == id))
            {
                Some(candidate) => (candidate.would_grant, candidate.why_not),
                None => (
                    false,
                    format!("not among the first {PREVIEW_PAGE} tasks in dispatch order"),
                ),
            },
            Err(status) => (false, status.message().to_owned()),
        };
        answers.push(json!({
            "sessionId": live.record.id,
            "machineId": live.record.machine_id,
            "wouldGrant": would_grant,
            "whyNot": why_not,
        }));
    }
    Ok(Json(json!({ "summary": summary, "sessions": answers })))
}

/// `GET /api/machines`: open sessions with their claims and last renewal, waiting pollers, and
/// `StatsResponse`.
pub async fn machines(_: Viewer, State(ctx): State<Arc<Ctx>>) -> ApiResult<Json<Value>> {
    let stats = ctx
        .admin
        .stats(Request::new(pb::StatsRequest {}))
        .await?
        .into_inner();
    let sessions = ctx.app.live_sessions();
    // The last progress heartbeat is a run's, in the database: looked up for the first claims.
    let mut heartbeats = HashMap::new();
    for claim in sessions
        .iter()
        .flat_map(|s| s.claims.iter())
        .take(HEARTBEAT_LOOKUPS)
    {
        let detail = ctx
            .tasks
            .get_task(Request::new(pb::GetTaskRequest {
                id: claim.task_id.clone(),
                recent_events: 1,
            }))
            .await;
        if let Ok(detail) = detail {
            let run = detail
                .into_inner()
                .runs
                .into_iter()
                .find(|r| r.id == claim.run_id);
            if let Some(at) = run.and_then(|r| r.last_heartbeat_at) {
                heartbeats.insert(claim.run_id.clone(), time(&at));
            }
        }
    }
    let now = std::time::SystemTime::now();
    let renewed = |ago: std::time::Duration| {
        let at = now - ago;
        let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        time(&Timestamp {
            seconds: since.as_secs() as i64,
            nanos: since.subsec_nanos() as i32,
        })
    };
    let sessions: Vec<Value> = sessions
        .into_iter()
        .map(|live| {
            let last = renewed(live.renewed_ago);
            json!({
                "session": session_to_pb(live.record.clone()),
                "lastRenewedAt": last,
                "claims": live.claims.iter().map(|c| json!({
                    "taskId": c.task_id,
                    "runId": c.run_id,
                    "epoch": c.epoch.to_string(),
                    "profile": c.profile,
                    "review": c.review,
                    "revoking": matches!(c.state, ClaimState::Revoking(_)),
                    "lastRenewedAt": last,
                    "lastHeartbeatAt": heartbeats.get(&c.run_id),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "sessions": sessions,
        "waitingPollers": stats.waiting_pollers,
        "stats": stats,
    })))
}
