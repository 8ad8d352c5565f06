//! `GET /metrics`: the Prometheus text exposition of [`crate::metrics`].
//!
//! Who may scrape is decided in one place, [`may_scrape`]: on a loopback listener (the
//! default, `127.0.0.1:50052`) anyone who can reach it may, as with the node exporter; on any
//! other address only a signed-in identity, of any role (`reader` upward), may. Both checks come
//! after the `Host` check every route has, so a page on a rebinding DNS name cannot read it.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{
    Ctx,
    guard::{host_ok, session_cookie},
    reply::ApiError,
};
use crate::auth::identity::Identity;

/// The content type of Prometheus's text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scrape may read the metrics: any on a loopback listener, else only an identity
/// (every role may read; no action is involved).
pub fn may_scrape(loopback_listener: bool, identity: Option<&Identity>) -> bool {
    loopback_listener || identity.is_some()
}

/// Renders every metric, the gauges freshly set from the service's state.
pub async fn scrape(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    if !host_ok(&ctx, &headers) {
        return ApiError::denied("Host: not an address of this kanband").into_response();
    }
    let identity = session_cookie(&headers)
        .and_then(|id| ctx.sessions.who(id))
        .map(|signed| signed.identity);
    if !may_scrape(ctx.loopback, identity.as_ref()) {
        return ApiError::unauthenticated().into_response();
    }
    if let Err(err) = ctx.app.record_gauges().await {
        tracing::warn!(error = %err, "reading the gauges for a scrape");
    }
    match crate::metrics::render() {
        Some(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder was installed in this process first\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_open_and_any_other_listener_needs_an_identity() {
        assert!(may_scrape(true, None));
        assert!(!may_scrape(false, None));
        let reader = Identity::new("prometheus", crate::auth::identity::Role::Reader);
        assert!(may_scrape(false, Some(&reader)));
    }
}
