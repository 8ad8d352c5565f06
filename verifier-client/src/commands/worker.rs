//! The verbs a worker or verifier runs on its own claim.
//!
//! The task id and claim token come from `KANBAN_TASK` and `KANBAN_CLAIM_TOKEN` (or `--task`
//! and `--claim-token`). Holder verbs need both, even where the call itself only carries the
//! token: the pair is what a supervisor always sets, and asking for both catches a worker
//! started by hand with half an environment. A refused token exits 3 with the reason from the
//! service's trailers (see [`crate::error`]); the worker should then stop, because someone
//! else owns the task now. While kanband is unavailable each verb retries for its bound (see
//! [`crate::retry`]); all of these are safe to repeat.

use std::io::Read as _;

use kanband_proto::pb::{
    CompleteRequest, GetTaskRequest, HeartbeatRequest, HolderBlockRequest, RequestChangesRequest,
    RequestReviewRequest,
};

use super::Ctx;
use crate::{
    Error, Result,
    cli::{
        ClaimArgs, CompleteArgs, HeartbeatArgs, HolderBlockArgs, RequestChangesArgs,
        RequestReviewArgs, ShowArgs,
    },
    render,
    retry::{self, Safety},
};

/// A value from the environment, treating an empty one as missing.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

impl ClaimArgs {
    /// The current task's id, or a usage error saying where it should have come from.
    pub(crate) fn task_id(&self) -> Result<&str> {
        present(self.task.as_deref()).ok_or_else(|| {
            Error::usage(
                "KANBAN_TASK is not set: run this inside a worker (its supervisor sets it) \
                 or pass --task ID",
            )
        })
    }

    /// The task id and claim token, or a usage error naming the missing variable.
    pub(crate) fn holder(&self) -> Result<(&str, String)> {
        let task = self.task_id()?;
        let token = present(self.claim_token.as_deref()).ok_or_else(|| {
            Error::usage(
                "KANBAN_CLAIM_TOKEN is not set: run this inside a worker (its supervisor sets \
                 it) or pass --claim-token TOKEN",
            )
        })?;
        Ok((task, token.to_owned()))
    }
}

use super::task::print_task;

/// `show [ID]`: the task with everything around it; for the current task also the claim this
/// worker holds, and a warning when the task has been claimed again since.
pub(crate) async fn show(ctx: &Ctx, args: ShowArgs) -> Result<()> {
    let current = args.id.is_none();
    let id = match args.id {
        Some(id) => id,
        None => args.claim.task_id()?.to_owned(),
    };
    let bound = ctx.retry_bound(&args.claim);
    let detail = retry::call(&ctx.target, bound, Safety::Repeatable, |mut client| {
        let request = GetTaskRequest {
            id: id.clone(),
            recent_events: 0,
        };
        async move { Ok(client.tasks.get_task(request).await?.into_inner()) }
    })
    .await?;
    let mut text = render::detail_text(&detail);
    if current {
        let claim = &args.claim;
        if let Some(epoch) = claim.epoch {
            let run = claim.run_id.as_deref().unwrap_or("-");
            text.push_str(&format!("  your claim: run {run}, epoch {epoch}\n"));
            let task_epoch = detail.task.as_ref().map_or(0, |t| t.epoch);
            if task_epoch > epoch {
                text.push_str(&format!(
                    "  warning: the task was claimed again since (epoch {task_epoch}); \
                     this claim is no longer current\n"
                ));
            }
        }
    }
    ctx.out.message(&detail, |_| text)?;
    Ok(())
}

/// `complete --summary S [--result R]`: the task becomes done.
pub(crate) async fn complete(ctx: &Ctx, args: CompleteArgs) -> Result<()> {
    let (_, claim_token) = args.claim.holder()?;
    let result = if args.result == "-" {
        let mut result = String::new();
        std::io::stdin()
            .read_to_string(&mut result)
            .map_err(|e| Error::usage(format!("cannot read --result from standard input: {e}")))?;
        result
    } else {
        args.result
    };
    let request = CompleteRequest {
        claim_token,
        result,
        summary: args.summary,
        metadata: Default::default(),
    };
    let bound = ctx.retry_bound(&args.claim);
    let task = retry::call(&ctx.target, bound, Safety::Repeatable, |mut client| {
        let request = request.clone();
        async move { Ok(client.leases.complete(request).await?.into_inner()) }
    })
    .await?;
    print_task(ctx, &task)
}

/// `block --reason R [--kind K]`: the holder cannot go on.
pub(crate) async fn block(ctx: &Ctx, args: HolderBlockArgs) -> Result<()> {
    let (_, claim_token) = args.claim.holder()?;
    let request = HolderBlockRequest {
        claim_token,
        reason: args.reason,
        kind: args.kind.into(),
    };
    let bound = ctx.retry_bound(&args.claim);
    let task = retry::call(&ctx.target, bound, Safety::Repeatable, |mut client| {
        let request = request.clone();
        async move { Ok(client.leases.block(request).await?.into_inner()) }
    })
    .await?;
    print_task(ctx, &task)
}

/// `heartbeat [--note N]`: progress, separate from lease renewal (the supervisor renews).
pub(crate) async fn heartbeat(ctx: &Ctx, args: HeartbeatArgs) -> Result<()> {
    let (task, claim_token) = args.claim.holder()?;
    let request = HeartbeatRequest {
        claim_token,
        note: args.note.clone(),
    };
    let bound = ctx.retry_bound(&args.claim);
    let answer = retry::call(&ctx.target, bound, Safety::Repeatable, |mut client| {
        let request = request.clone();
        async move { Ok(client.leases.heartbeat(request).await?.into_inner()) }
    })
    .await?;
    ctx.out
        .message(&answer, |_| format!("{task} heartbeat recorded"))?;
    Ok(())
}

/// `request-review [--summary S]`: hands the work to the review lane.
pub(crate) async fn request_review(ctx: &Ctx, args: RequestReviewArgs) -> Result<()> {
    let (_, claim_token) = args.claim.holder()?;
    let request = RequestReviewRequest {
        claim_token,
        summary: args.summary,
    };
    let bound = ctx.retry_bound(&args.claim);
    let task = retry::call(&ctx.target, bound, Safety::Repeatable, |mut client| {
        let request = request.clone();
        async move { Ok(client.leases.request_review(request).await?.into_inner()) }
    })
    .await?;
    print_task(ctx, &task)
}

/// `request-changes --reason R`: a reviewer sends the task back to its worker.
pub(crate) async fn request_changes(ctx: &Ctx, args: RequestChangesArgs) -> Result<()> {
    let (_, claim_token) = args.claim.holder()?;
    let request = RequestChangesRequest {
        claim_token,
        reason: args.reason,
    };
    let bound = ctx.retry_bound(&args.claim);
    let task = retry::call(&ctx.target, bound, Safety::Repeatable, |mut client| {
        let request = request.clone();
        async move { Ok(client.leases.request_changes(request).await?.into_inner()) }
    })
    .await?;
    print_task(ctx, &task)
}
