//! Who may call what: [`Viewer`] (any signed-in identity) for reads, [`Actor`] (a role that
//! may act, with the session's CSRF secret and a same-origin request) for every mutation.
//! Both first check the `Host` header, so a page on another name that resolves to loopback
//! (DNS rebinding) is refused.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};

use super::{
    Ctx,
    reply::ApiError,
    sessions::{COOKIE, Sessions, Signed},
};

/// Header carrying the session's CSRF secret on mutations.
pub const CSRF_HEADER: &str = "x-kanband-csrf";

/// A signed-in identity (any role).
#[derive(Debug, Clone)]
pub struct Viewer(pub Signed);

/// A signed-in identity whose role may act, on a same-origin request carrying its CSRF
/// secret.
#[derive(Debug, Clone)]
pub struct Actor(pub Signed);

/// The session id in the request's cookie.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Whether the request's `Host` is one this listener answers to.
pub fn host_ok(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    ctx.hosts.is_empty() || ctx.hosts.iter().any(|allowed| allowed == host)
}

/// Whether a mutation comes from kanband's own page: an `Origin` (browsers send one on every
/// POST) naming the request's host; without one, a `Sec-Fetch-Site` (if any) of same-origin.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => host.is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        }),
        None => headers
            .get("sec-fetch-site")
            .and_then(|s| s.to_str().ok())
            .is_none_or(|site| site == "same-origin"),
    }
}

impl FromRequestParts<Arc<Ctx>> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Ctx>) -> Result<Self, ApiError> {
        if !host_ok(ctx, &parts.headers) {
            return Err(ApiError::denied("Host: not an address of this kanband"));
        }
        let id = session_cookie(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        ctx.sessions
            .who(id)
            .map(Viewer)
            .ok_or_else(ApiError::unauthenticated)
    }
}

impl FromRequestParts<Arc<Ctx>> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Ctx>) -> Result<Self, ApiError> {
        let Viewer(signed) = Viewer::from_request_parts(parts, ctx).await?;
        if !same_origin(&parts.headers) {
            return Err(ApiError::denied(
                "Origin: cross-site requests cannot change the board",
            ));
        }
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !Sessions::csrf_ok(&signed, given) {
            return Err(ApiError::denied(format!(
                "{CSRF_HEADER}: missing or wrong; reload the page"
            )));
        }
        if !signed.identity.role.can_act() {
            return Err(ApiError::denied(format!(
                "a {} can read the board but not change it",
                signed.identity.role
            )));
        }
        Ok(Actor(signed))
    }
}
