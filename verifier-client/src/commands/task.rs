//! Task commands: the operator's `task ...` group, and the orchestrating worker's `create`,
//! `link`, `unblock`, `list` and `comment`, which are the same calls.

use kanband_proto::pb::{
    AddCommentRequest, ArchiveTaskRequest, AssignTaskRequest, BlockKind, BlockTaskRequest,
    CreateTaskRequest, GetTaskRequest, LinkTasksRequest, ListTasksRequest, ListTasksResponse,
    PromoteTaskRequest, ReclaimTaskRequest, ScheduleTaskRequest, Task, UnblockTaskRequest,
};

use std::time::Duration;

use super::Ctx;
use crate::{
    Result,
    cli::{CreateArgs, LinkArgs, ListArgs},
    output::note,
    render,
    retry::{self, Safety},
};

/// The largest page the service serves; `list` follows pages until the last.
const PAGE_SIZE: u32 = 1000;

/// Prints a task as a one-row table, or as JSON.
pub(super) fn print_task(ctx: &Ctx, task: &Task) -> Result<()> {
    ctx.out
        .message(task, |wide| render::tasks(std::slice::from_ref(task), wide))?;
    Ok(())
}

/// `create` / `task create`: prints only the id, so `id=$(kanbanctl task create ...)` works;
/// with `-o json` the `CreateTaskResponse` (`created` is left out, being false, when an
/// idempotency key found an earlier task).
pub(crate) async fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let mut client = ctx.connect().await?;
    let response = client
        .tasks
        .create_task(CreateTaskRequest {
            board: ctx.board.clone(),
            title: args.title,
            body: args.body,
            assignee: args.assignee.unwrap_or_default(),
            priority: args.priority,
            created_by: ctx.actor(),
            idempotency_key: args.idempotency_key.unwrap_or_default(),
            parents: args.parents,
            required_capabilities: args.capabilities,
            ..CreateTaskRequest::default()
        })
        .await?
        .into_inner();
    let id = response
        .task
        .as_ref()
        .map(|t| t.id.clone())
        .unwrap_or_default();
    if !response.created {
        note(&format!(
            "task {id} already existed with this idempotency key; nothing was created"
        ));
    }
    ctx.out.message(&response, |_| id)?;
    Ok(())
}

/// `task show ID`.
pub(crate) async fn show(ctx: &Ctx, id: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let detail = client
        .tasks
        .get_task(GetTaskRequest {
            id,
            recent_events: 0,
        })
        .await?
        .into_inner();
    ctx.out.message(&detail, |_| render::detail_text(&detail))?;
    Ok(())
}

/// `list` / `task list`: every page, in creation order.
pub(crate) async fn list(ctx: &Ctx, args: ListArgs) -> Result<()> {
    let mut client = ctx.connect().await?;
    let mut tasks = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .tasks
            .list_tasks(ListTasksRequest {
                board: ctx.board.clone(),
                statuses: args.statuses.iter().map(|&s| s.into()).collect(),
                assignee: args.assignee.clone().unwrap_or_default(),
                tenant: String::new(),
                page_size: PAGE_SIZE,
                page_token,
            })
            .await?
            .into_inner();
        tasks.extend(page.tasks);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    // Every page in one message, as if the service had answered with one page.
    let listed = ListTasksResponse {
        tasks,
        next_page_token: String::new(),
    };
    ctx.out
        .message(&listed, |wide| render::tasks(&listed.tasks, wide))?;
    Ok(())
}

/// `link PARENT CHILD`.
pub(crate) async fn link(ctx: &Ctx, args: LinkArgs) -> Result<()> {
    let mut client = ctx.connect().await?;
    let linked = client
        .tasks
        .link_tasks(LinkTasksRequest {
            parent_id: args.parent,
            child_id: args.child,
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    let parent = linked.parent.clone().unwrap_or_default();
    let child = linked.child.clone().unwrap_or_default();
    let text = format!(
        "{}\n  waits for {}",
        render::task_line(&child),
        render::task_line(&parent)
    );
    ctx.out.message(&linked, |_| text)?;
    Ok(())
}

/// `unblock ID` / `task unblock ID`.
pub(crate) async fn unblock(ctx: &Ctx, id: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let task = client
        .tasks
        .unblock_task(UnblockTaskRequest {
            id,
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    print_task(ctx, &task)
}

/// `comment` / `task comment ID`; the worker's `comment` carries its claim token (empty for an
/// operator's) and retries for `retry_for` what certainly did not arrive (a comment is not
/// safe to send twice).
pub(crate) async fn comment(
    ctx: &Ctx,
    task_id: String,
    body: String,
    author: Option<String>,
    claim_token: String,
    retry_for: Duration,
) -> Result<()> {
    let message = AddCommentRequest {
        task_id,
        author: ctx.actor_or(author.as_deref()),
        body,
        claim_token,
    };
    let comment = retry::call(
        &ctx.target,
        retry_for,
        Safety::NotRepeatable,
        |mut client| {
            let message = message.clone();
            async move { Ok(client.tasks.add_comment(message).await?.into_inner()) }
        },
    )
    .await?;
    let text = format!("comment {} on {}", comment.id, comment.task_id);
    ctx.out.message(&comment, |_| text)?;
    Ok(())
}

/// `task assign ID PROFILE`.
pub(crate) async fn assign(ctx: &Ctx, id: String, assignee: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let task = client
        .tasks
        .assign_task(AssignTaskRequest {
            id,
            assignee,
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    print_task(ctx, &task)
}

/// `task promote ID`.
pub(crate) async fn promote(ctx: &Ctx, id: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let task = client
        .tasks
        .promote_task(PromoteTaskRequest {
            id,
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    print_task(ctx, &task)
}

/// `task archive ID [--reason R]`.
pub(crate) async fn archive(ctx: &Ctx, id: String, reason: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let task = client
        .tasks
        .archive_task(ArchiveTaskRequest {
            id,
            actor: ctx.actor(),
            reason,
        })
        .await?
        .into_inner();
    print_task(ctx, &task)
}

/// `task reclaim ID [--grace SECONDS] [--reason R]`.
pub(crate) async fn reclaim(
    ctx: &Ctx,
    id: String,
    grace_seconds: u32,
    reason: String,
) -> Result<()> {
    let mut client = ctx.connect().await?;
    let task = client
        .tasks
        .reclaim_task(ReclaimTaskRequest {
            id,
            actor: ctx.actor(),
            grace_seconds,
            reason,
        })
        .await?
        .into_inner();
    print_task(ctx, &task)
}

/// `task schedule ID [--delay SECONDS]`.
pub(crate) async fn schedule(ctx: &Ctx, id: String, delay_seconds: u64) -> Result<()> {
    let mut client = ctx.connect().await?;
    let task = client
        .tasks
        .schedule_task(ScheduleTaskRequest {
            id,
            delay_seconds,
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    print_task(ctx, &task)
}

/// `task block ID --reason R [--kind K]`.
pub(crate) async fn block(ctx: &Ctx, id: String, reason: String, kind: BlockKind) -> Result<()> {
    let mut client = ctx.connect().await?;
    let task = client
        .tasks
        .block_task(BlockTaskRequest {
            id,
            reason,
            kind: kind.into(),
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    print_task(ctx, &task)
}
