//! `kanban.v1.Tasks`.

use std::sync::Arc;

use kanband_proto::pb::{self, tasks_server::Tasks};
use tonic::{Request, Response, Status};

use super::{
    requests::{self, task_id},
    responses::next_page_token,
};
use crate::{
    auth::{self, rules},
    clock::now_ms,
    coordinator::Coordinator,
    domain::{limits, validate},
    store::model::{EventFilter, Task, TaskFilter},
};

/// The Tasks service.
#[derive(Debug, Clone)]
pub struct TasksService {
    app: Arc<Coordinator>,
}

impl TasksService {
    /// Serves tasks from the shared state.
    pub fn new(app: Arc<Coordinator>) -> Self {
        TasksService { app }
    }

    /// Answers with a changed task.
    fn changed(&self, task: Task) -> Result<Response<pb::Task>, Status> {
        Ok(Response::new(task.into()))
    }
}

#[tonic::async_trait]
impl Tasks for TasksService {
    async fn create_task(
        &self,
        request: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::CreateTaskResponse>, Status> {
        let caller = auth::caller(&request);
        rules::may_create(&caller, &request.get_ref().parents)?;
        let new = requests::new_task(request.into_inner())?;
        let by = caller.author(new.created_by.as_str());
        let (task, created) = self.app.store().create_task(new, by).await?;
        Ok(Response::new(pb::CreateTaskResponse {
            task: Some(task.into()),
            created,
        }))
    }

    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::TaskDetail>, Status> {
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        let recent = validate::page_size(
            "recent_events",
            req.recent_events,
            limits::RECENT_EVENTS_DEFAULT,
        )?;
        let detail = self
            .app
            .store()
            .task_detail(id, recent, limits::DETAIL_ROWS_MAX)
            .await?;
        Ok(Response::new(detail.into()))
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let req = request.into_inner();
        let board = requests::board_or_default("board", req.board)?;
        validate::list_len("statuses", &req.statuses)?;
        let statuses = req
            .statuses
            .into_iter()
            .map(|s| requests::status("statuses", s))
            .collect::<Result<Vec<_>, _>>()?;
        validate::profile("assignee", &req.assignee)?;
        validate::text("tenant", &req.tenant, limits::NAME_MAX)?;
        let filter = TaskFilter {
            board,
            statuses,
            assignee: Some(req.assignee).filter(|a| !a.is_empty()),
            tenant: Some(req.tenant).filter(|t| !t.is_empty()),
            limit: validate::page_size("page_size", req.page_size, limits::PAGE_SIZE_DEFAULT)?,
            after: requests::page_token("page_token", &req.page_token)?,
        };
        let (tasks, next) = self.app.store().list_tasks(filter).await?;
        Ok(Response::new(pb::ListTasksResponse {
            tasks: tasks.into_iter().map(Into::into).collect(),
            next_page_token: next_page_token(next),
        }))
    }

    async fn update_task(
        &self,
        request: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let (id, note, changes) = requests::task_changes(request.into_inner())?;
        let by = caller.author(note);
        self.changed(self.app.store().update_task(id, changes, by).await?)
    }

    async fn assign_task(
        &self,
        request: Request<pb::AssignTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        validate::profile("assignee", &req.assignee)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        self.changed(self.app.store().assign(id, req.assignee, by).await?)
    }

    async fn link_tasks(
        &self,
        request: Request<pb::LinkTasksRequest>,
    ) -> Result<Response<pb::LinkTasksResponse>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let parent = task_id("parent_id", req.parent_id)?;
        let child = task_id("child_id", req.child_id)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        let (parent, child) = self.app.store().link(parent, child, by).await?;
        Ok(Response::new(pb::LinkTasksResponse {
            parent: Some(parent.into()),
            child: Some(child.into()),
        }))
    }

    async fn unlink_tasks(
        &self,
        request: Request<pb::UnlinkTasksRequest>,
    ) -> Result<Response<pb::LinkTasksResponse>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let parent = task_id("parent_id", req.parent_id)?;
        let child = task_id("child_id", req.child_id)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        let (parent, child) = self.app.store().unlink(parent, child, by).await?;
        Ok(Response::new(pb::LinkTasksResponse {
            parent: Some(parent.into()),
            child: Some(child.into()),
        }))
    }

    async fn add_comment(
        &self,
        request: Request<pb::AddCommentRequest>,
    ) -> Result<Response<pb::Comment>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("task_id", req.task_id)?;
        rules::may_comment(&caller, &id)?;
        let by = requests::author(&caller, "author", req.author)?;
        validate::required_text("body", &req.body, limits::COMMENT_MAX)?;
        let token = if req.claim_token.is_empty() {
            // A worker's comment is fenced by its own claim even when it names none.
            caller.claim().map(|(token, _)| token.to_owned())
        } else {
            Some(requests::token(req.claim_token)?)
        };
        Ok(Response::new(
            self.app
                .store()
                .add_comment(id, req.body, token, by)
                .await?
                .into(),
        ))
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let req = request.into_inner();
        let id = task_id("task_id", req.task_id)?;
        let limit = validate::page_size("page_size", req.page_size, limits::PAGE_SIZE_DEFAULT)?;
        let after = requests::page_token("page_token", &req.page_token)?.unwrap_or(0);
        let (comments, next) = self.app.store().list_comments(id, after, limit).await?;
        Ok(Response::new(pb::ListCommentsResponse {
            comments: comments.into_iter().map(Into::into).collect(),
            next_page_token: next_page_token(next),
        }))
    }

    async fn block_task(
        &self,
        request: Request<pb::BlockTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        validate::reason("reason", &req.reason)?;
        let kind = requests::block_kind("kind", req.kind)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        self.changed(self.app.store().block(id, kind, req.reason, by).await?)
    }

    async fn unblock_task(
        &self,
        request: Request<pb::UnblockTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        self.changed(self.app.store().unblock(id, by).await?)
    }

    async fn schedule_task(
        &self,
        request: Request<pb::ScheduleTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        validate::at_most(
            "delay_seconds",
            req.delay_seconds,
            limits::SCHEDULE_DELAY_MAX,
        )?;
        let by = requests::author(&caller, "actor", req.actor)?;
        let until = (req.delay_seconds > 0).then(|| now_ms() + req.delay_seconds as i64 * 1000);
        self.changed(self.app.store().schedule(id, until, by).await?)
    }

    async fn promote_task(
        &self,
        request: Request<pb::PromoteTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        self.changed(self.app.store().promote(id, by).await?)
    }

    async fn archive_task(
        &self,
        request: Request<pb::ArchiveTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        validate::reason("reason", &req.reason)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        self.changed(self.app.store().archive(id, req.reason, by).await?)
    }

    async fn reclaim_task(
        &self,
        request: Request<pb::ReclaimTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        validate::at_most(
            "grace_seconds",
            req.grace_seconds,
            limits::RECLAIM_GRACE_MAX,
        )?;
        validate::reason("reason", &req.reason)?;
        let grace = std::time::Duration::from_secs(req.grace_seconds.into());
        self.changed(self.app.store().reclaim(id, grace, req.reason, by).await?)
    }

    async fn reopen_review(
        &self,
        request: Request<pb::ReopenReviewRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let id = task_id("id", req.id)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        self.changed(self.app.store().reopen_review(id, by).await?)
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let req = request.into_inner();
        let board = if req.board.is_empty() {
            None
        } else {
            validate::slug("board", &req.board)?;
            Some(req.board)
        };
        let task = if req.task_id.is_empty() {
            None
        } else {
            Some(task_id("task_id", req.task_id)?)
        };
        let after_id = i64::try_from(req.after_id)
            .map_err(|_| crate::error::Error::invalid("after_id", "is out of range"))?;
        let filter = EventFilter {
            board,
            task_id: task,
            after_id,
            limit: validate::page_size("page_size", req.page_size, limits::PAGE_SIZE_DEFAULT)?,
        };
        let events = self.app.store().list_events(filter).await?;
        let next_after_id = events.last().map_or(req.after_id, |e| e.id as u64);
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(Into::into).collect(),
            next_after_id,
        }))
    }
}
