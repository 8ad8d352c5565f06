//! `token create|list|revoke`: bearer tokens (admin only). A new token's secret is printed
//! once, on stdout; kanband keeps only its hash.

use kanband_proto::pb::{CreateTokenRequest, ListTokensRequest, RevokeTokenRequest};

use super::Ctx;
use crate::{Result, render};

/// `token create NAME --role R [--machine-id M] [--profile P]... [--expires-in D]`: prints
/// the secret.
pub(crate) async fn create(ctx: &Ctx, request: CreateTokenRequest) -> Result<()> {
    let mut client = ctx.connect().await?;
    let answer = client.admin.create_token(request).await?.into_inner();
    let token = answer.token.clone().unwrap_or_default();
    ctx.out.message(&answer, |_| answer.secret.clone())?;
    let until = token.expires_at.as_ref().map_or_else(
        || "until it is revoked".to_owned(),
        |at| format!("until {}", render::time_text(Some(at))),
    );
    eprintln!(
        "kanbanctl: token {} ({} {:?}) created, working {until}; its secret above is shown \
         only this once",
        token.id, token.role, token.name
    );
    Ok(())
}

/// `token list`.
pub(crate) async fn list(ctx: &Ctx) -> Result<()> {
    let mut client = ctx.connect().await?;
    let listed = client
        .admin
        .list_tokens(ListTokensRequest {})
        .await?
        .into_inner();
    ctx.out
        .message(&listed, |wide| render::tokens(&listed.tokens, wide))?;
    Ok(())
}

/// `token revoke ID`.
pub(crate) async fn revoke(ctx: &Ctx, id: String) -> Result<()> {
    ctx.confirm(&format!("revoke token {id}"))?;
    let mut client = ctx.connect().await?;
    let token = client
        .admin
        .revoke_token(RevokeTokenRequest { id })
        .await?
        .into_inner();
    ctx.out.message(&token, |wide| {
        render::tokens(std::slice::from_ref(&token), wide)
    })?;
    Ok(())
}
