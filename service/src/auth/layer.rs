//! [`AuthLayer`]: authenticates every gRPC call before it reaches a service, checks the
//! [`policy`] table, and puts the caller's [`Identity`] into the request's extensions for the
//! handlers' finer checks (and a [`Caller`] into the response's, for the call's log line).
//!
//! The credential is, in order: a bearer token in `authorization` (a token from the
//! [`TokenBook`](super::TokenBook), or a claim token, which makes its holder that claim's
//! worker); else, over the Unix socket, a peer whose uid (SO_PEERCRED) is kanband's own, who
//! is the local admin. TCP always needs a token, loopback included. A stream opened with a
//! token ends with UNAUTHENTICATED the moment the token is revoked or expires.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tonic::{
    Status,
    codegen::{Bytes, StdError, http},
};
use tower::{Layer, Service};

use super::{
    book::TokenState,
    identity::{Identity, Role},
    policy::{self, Rule},
};
use crate::{
    coordinator::Coordinator,
    domain::ids,
    net::{Caller, Peer},
};

/// The metadata key of the credential.
pub const AUTHORIZATION: &str = "authorization";

/// Authenticates calls against `app`'s tokens and claims.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    app: Arc<Coordinator>,
    uid: u32,
}

impl AuthLayer {
    /// A layer that treats Unix-socket peers running as this process's uid as the local admin.
    pub fn new(app: Arc<Coordinator>) -> AuthLayer {
        AuthLayer {
            app,
            uid: nix::unistd::getuid().as_raw(),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: AuthLayer,
}

/// What the caller presented.
enum Credential {
    /// `authorization: Bearer <secret>`.
    Bearer(String),
    /// An `authorization` header of another shape.
    Malformed,
    /// None, from kanband's own uid over the Unix socket.
    LocalOwner,
    /// None.
    Missing,
}

fn credential<B>(request: &http::Request<B>, uid: u32) -> Credential {
    if let Some(value) = request.headers().get(AUTHORIZATION) {
        // The scheme is case-insensitive (RFC 9110, section 11.1): `bearer` is `Bearer`.
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, secret)| secret.trim());
        return match secret {
            Some(secret) if !secret.is_empty() => Credential::Bearer(secret.into()),
            _ => Credential::Malformed,
        };
    }
    let local = request
        .extensions()
        .get::<Peer>()
        .and_then(Peer::unix_uid)
        .is_some_and(|peer| peer == uid);
    if local {
        Credential::LocalOwner
    } else {
        Credential::Missing
    }
}

/// Who presented `credential`, and the state of its token (if a token).
async fn authenticate(
    app: &Coordinator,
    credential: Credential,
    method: &str,
) -> Result<(Identity, Option<watch::Receiver<TokenState>>), Status> {
    match credential {
        Credential::LocalOwner => Ok((Identity::local_admin(), None)),
        Credential::Missing => Err(Status::unauthenticated(format!(
            "{method} needs a credential: send `authorization: Bearer <token>` (kanbanctl: \
             --token, KANBAN_TOKEN or --token-file); only kanband's own user may call over \
             the Unix socket without one"
        ))),
        Credential::Malformed => Err(Status::unauthenticated(
            "the authorization metadata must be `Bearer <token>`",
        )),
        Credential::Bearer(secret) if secret.starts_with(ids::CLAIM) => {
            let task = match app.live_claim(&secret) {
                Some(claim) => Some(claim.task_id),
                None => app
                    .store()
                    .claim_task(secret.clone())
                    .await
                    .map_err(Status::from)?,
            };
            match task {
                Some(task_id) => Ok((Identity::worker(&secret, &task_id), None)),
                None => Err(Status::unauthenticated(
                    "the bearer credential is not a claim token kanband issued",
                )),
            }
        }
        Credential::Bearer(secret) => match app.tokens().authenticate(&secret) {
            Ok((identity, state)) => Ok((identity, Some(state))),
            Err(refusal) => Err(Status::unauthenticated(refusal.to_string())),
        },
    }
}

/// Whether `identity` may call `method` by the table: PERMISSION_DENIED naming the roles
/// that may, if not. A worker whose claim has ended keeps only the fenced verbs (which its
/// claim's fencing answers).
fn authorize(
    app: &Coordinator,
    identity: &Identity,
    method: &str,
    roles: &[Role],
) -> Result<(), Status> {
    if !roles.contains(&identity.role) {
        return Err(Status::permission_denied(format!(
            "{method} needs the {} role; {:?} is {}",
            policy::names(roles),
            identity.name,
            identity.role
        )));
    }
    if let Some((token, task_id)) = identity.claim()
        && !policy::fenced(method)
        && app.live_claim(token).is_none()
    {
        return Err(Status::permission_denied(format!(
            "{method}: the claim on {task_id} has ended, so its token no longer acts as its \
             worker"
        )));
    }
    Ok(())
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let roles = match policy::rule(&path) {
            Rule::Public => return Box::pin(self.inner.call(request)),
            Rule::Roles(roles) => roles,
            Rule::Unknown => &[],
        };
        let credential = credential(&request, self.auth.uid);
        // The clone that was made ready is the one to call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.auth.app.clone();
        Box::pin(async move {
            let method = policy::short(&path);
            let (identity, token) = match authenticate(&app, credential, method).await {
                Ok(found) => found,
                Err(status) => return Ok(status.into_http()),
            };
            if let Err(status) = authorize(&app, &identity, method, roles) {
                return Ok(status.into_http());
            }
            let name = identity.name.clone();
            let caller = Caller {
                name: name.clone(),
                role: identity.role.as_str(),
            };
            request.extensions_mut().insert(identity);
            let mut response = inner.call(request).await?;
            // For the call's log line, written by the observing layer outside this one.
            response.extensions_mut().insert(caller);
            Ok(match token {
                Some(token) => {
                    response.map(|body| tonic::body::Body::new(Revocable::new(body, token, name)))
                }
                None => response,
            })
        })
    }
}

type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A response body that ends with UNAUTHENTICATED once its caller's token is revoked or
/// expires.
///
/// The token's state is looked at on every poll, but a future waiting for it to change is made
/// only once the inner body has nothing ready: a unary answer, which is ready at once, costs no
/// allocation and no waker on the token's channel.
struct Revocable<B> {
    inner: B,
    token: watch::Receiver<TokenState>,
    /// Wakes this body when the token stops working while the inner body waits.
    signal: Option<Signal>,
    name: String,
    /// The ending trailers were sent: the stream is over.
    done: bool,
}

impl<B> Revocable<B> {
    fn new(inner: B, token: watch::Receiver<TokenState>, name: String) -> Self {
        Revocable {
            inner,
            token,
            signal: None,
            name,
            done: false,
        }
    }

    /// The trailers that end the stream of a token that stopped working as `ended`.
    fn end(&mut self, ended: TokenState) -> Frame<Bytes> {
        self.done = true;
        self.signal = None;
        let why = if ended == TokenState::Expired {
            "expired"
        } else {
            "was revoked"
        };
        let status = Status::unauthenticated(format!(
            "the token {:?} {why}; this stream is closed",
            self.name
        ));
        let mut trailers = http::HeaderMap::new();
        let _ = status.add_header(&mut trailers);
        // The inner stream is dropped with this body once the trailers are sent.
        Frame::trailers(trailers)
    }
}

/// A future that completes when `token` leaves [`TokenState::Live`], and never if the token
/// book is gone (kanband is stopping).
fn signal(mut token: watch::Receiver<TokenState>) -> Signal {
    Box::pin(async move {
        if token
            .wait_for(|state| *state != TokenState::Live)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    })
}

impl<B> Body for Revocable<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let me = &mut *self;
        if me.done {
            return Poll::Ready(None);
        }
        let state = *me.token.borrow();
        if state != TokenState::Live {
            return Poll::Ready(Some(Ok(me.end(state))));
        }
        match Pin::new(&mut me.inner).poll_frame(cx) {
            Poll::Pending => {
                let token = &me.token;
                let waiting = me.signal.get_or_insert_with(|| signal(token.clone()));
                if waiting.as_mut().poll(cx).is_ready() {
                    let state = *me.token.borrow();
                    return Poll::Ready(Some(Ok(me.end(state))));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> std::fmt::Debug for Revocable<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocable")
            .field("name", &self.name)
            .finish()
    }
}
