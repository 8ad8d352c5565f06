//! `token create|list|revoke`: bearer tokens (admin only). A new token's secret is printed
//! once, on stdout; kanband keeps only its hash.

use kanband_proto::pb::{CreateTokenRequest, ListTokensRequest, RevokeTokenRequest, TokenInfo};
use serde_json::{Value, json};

use super::Ctx;
use crate::{Result, render};

fn info(token: &TokenInfo) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "machine_id": token.machine_id,
        "profiles": token.profiles,
        "created_at": render::time(token.created_at.as_ref()),
        "revoked_at": render::time(token.revoked_at.as_ref()),
    })
}

fn line(token: &TokenInfo) -> String {
    let mut line = format!("{}  {}  {}", token.id, token.role, token.name);
    if !token.machine_id.is_empty() {
        line.push_str(&format!("  machine={}", token.machine_id));
    }
    if !token.profiles.is_empty() {
        line.push_str(&format!("  profiles={}", token.profiles.join(",")));
    }
    match &token.revoked_at {
        Some(at) => line.push_str(&format!("  revoked {}", render::time_text(Some(at)))),
        None => line.push_str(&format!(
            "  created {}",
            render::time_text(token.created_at.as_ref())
        )),
    }
    line
}

/// `token create NAME --role R [--machine-id M] [--profile P]...`: prints the secret.
pub(crate) async fn create(
    ctx: &Ctx,
    name: String,
    role: String,
    machine_id: String,
    profiles: Vec<String>,
) -> Result<()> {
    let mut client = ctx.connect().await?;
    let answer = client
        .admin
        .create_token(CreateTokenRequest {
            name,
            role,
            machine_id,
            profiles,
        })
        .await?
        .into_inner();
    let token = answer.token.unwrap_or_default();
    let mut value = info(&token);
    value["secret"] = json!(answer.secret);
    ctx.out.print(&answer.secret, &value)?;
    eprintln!(
        "kanbanctl: token {} ({} {:?}) created; its secret above is shown only this once",
        token.id, token.role, token.name
    );
    Ok(())
}

/// `token list`.
pub(crate) async fn list(ctx: &Ctx) -> Result<()> {
    let mut client = ctx.connect().await?;
    let tokens = client
        .admin
        .list_tokens(ListTokensRequest {})
        .await?
        .into_inner()
        .tokens;
    ctx.out.print_list(&tokens, info, line)?;
    Ok(())
}

/// `token revoke ID`.
pub(crate) async fn revoke(ctx: &Ctx, id: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let token = client
        .admin
        .revoke_token(RevokeTokenRequest { id })
        .await?
        .into_inner();
    ctx.out.print(&line(&token), &info(&token))?;
    Ok(())
}
