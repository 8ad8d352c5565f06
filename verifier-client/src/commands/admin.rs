//! `stats` and `dispatch preview`: read-only questions about the running service.

use kanband_proto::pb::{DispatchPreviewRequest, StatsRequest};

use super::Ctx;
use crate::{Result, cli::PreviewArgs, render};

/// `stats`.
pub(crate) async fn stats(ctx: &Ctx) -> Result<()> {
    let mut client = ctx.connect().await?;
    let stats = client.admin.stats(StatsRequest {}).await?.into_inner();
    ctx.out
        .print(&render::stats_text(&stats), &render::stats(&stats))?;
    Ok(())
}

/// `dispatch preview`: candidates in dispatch order, `*` on the one that would be granted.
pub(crate) async fn preview(ctx: &Ctx, args: PreviewArgs) -> Result<()> {
    let mut client = ctx.connect().await?;
    let candidates = client
        .admin
        .dispatch_preview(DispatchPreviewRequest {
            session_id: args.session.unwrap_or_default(),
            profiles: args.profiles,
            capabilities: args.capabilities,
            machine_id: args.machine.unwrap_or_default(),
            review_lane: args.review,
            board: if args.all_boards {
                String::new()
            } else {
                ctx.board.clone()
            },
            page_size: 0,
        })
        .await?
        .into_inner()
        .candidates;
    ctx.out
        .print_list(&candidates, render::candidate, render::candidate_line)?;
    Ok(())
}
