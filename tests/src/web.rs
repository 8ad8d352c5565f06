//! A signed-in client of the web board's JSON API, for the HTTP and browser tests: it keeps
//! the session cookie and the CSRF secret, and sends mutations the way the page does (JSON
//! body, `x-kanband-csrf`, same-origin `Origin`).

use kanband::{auth::Identity, web::Board};
use reqwest::{StatusCode, header};
use serde_json::Value;

/// A session of the board's API.
#[derive(Debug, Clone)]
pub struct WebClient {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `kanband_session=<id>`.
    pub cookie: String,
    /// The session's CSRF secret, from the sign-in answer.
    pub csrf: String,
}

impl WebClient {
    /// Signs in as `identity` with a fresh one-time token.
    pub async fn sign_in(board: &Board, identity: Identity) -> WebClient {
        let token = board.signin_token(identity);
        WebClient::sign_in_with(board, &token).await
    }

    /// Signs in with `token`: a one-time sign-in token or a named bearer token.
    pub async fn sign_in_with(board: &Board, token: &str) -> WebClient {
        let http = reqwest::Client::new();
        let base = board.url();
        let response = http
            .post(format!("{base}/api/signin"))
            .header(header::ORIGIN, &base)
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .expect("sign-in answers");
        assert_eq!(response.status(), StatusCode::OK, "sign-in succeeds");
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let me: Value = response.json().await.expect("JSON");
        WebClient {
            http,
            base,
            cookie,
            csrf: me["csrf"].as_str().expect("csrf").to_owned(),
        }
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET path` with the session cookie: status and JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .send()
            .await
            .expect("kanband answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with `body` as the page sends it: status and JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::ORIGIN, &self.base)
            .header("x-kanband-csrf", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("kanband answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
