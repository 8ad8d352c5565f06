//! `stats`, `check` and `dispatch preview`: read-only questions about the running service.

use super::Ctx;
use crate::{Error, Result, cli::PreviewArgs, render};
use kanband_proto::pb::{CheckInvariantsRequest, DispatchPreviewRequest, StatsRequest};

/// `stats`.
pub(crate) async fn stats(ctx: &Ctx) -> Result<()> {
    let mut client = ctx.connect().await?;
    let stats = client.admin.stats(StatsRequest {}).await?.into_inner();
    ctx.out.message(&stats, |_| render::stats_text(&stats))?;
    Ok(())
}

/// `health`: the gRPC health service's answer for `service`; anything but SERVING fails as
/// unavailable (exit 5), so a probe can use the exit code alone.
pub(crate) async fn health(ctx: &Ctx, service: String) -> Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let channel = kanband_gateway::connect(&ctx.target.addr).await?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.clone(),
        })
        .await?
        .into_inner()
        .status();
    let name = status.as_str_name();
    let shown = if service.is_empty() {
        "kanband"
    } else {
        &service
    };
    // grpc.health.v1 has no generated serde impls; this is its proto3 JSON (`status` by name).
    let json = serde_json::json!({ "status": name });
    ctx.out.message(&json, |_| format!("{shown}: {name}\n"))?;
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(tonic::Status::unavailable(format!("{shown} is {name}")).into())
    }
}

/// `check`: the invariant report; broken invariants make the command fail (exit 1).
pub(crate) async fn check(ctx: &Ctx) -> Result<()> {
    let mut client = ctx.connect().await?;
    let report = client
        .admin
        .check_invariants(CheckInvariantsRequest {})
        .await?
        .into_inner();
    let mut text = format!(
        "{}: {} tasks, {} claims, {} events checked\n",
        if report.ok { "ok" } else { "BROKEN" },
        report.tasks,
        report.claims,
        report.events
    );
    for v in &report.violations {
        text.push_str(&format!("  {}: {}\n", v.invariant, v.detail));
    }
    ctx.out.message(&report, |_| text)?;
    if report.ok {
        Ok(())
    } else {
        Err(Error::Violations(report.violations.len()))
    }
}

/// `dispatch preview`: candidates in dispatch order, `*` on the one that would be granted.
pub(crate) async fn preview(ctx: &Ctx, args: PreviewArgs) -> Result<()> {
    let mut client = ctx.connect().await?;
    let preview = client
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
        .into_inner();
    ctx.out.message(&preview, |wide| {
        render::candidates(&preview.candidates, wide)
    })?;
    Ok(())
}
