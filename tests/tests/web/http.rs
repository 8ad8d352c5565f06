//! The board's JSON API and event stream over HTTP: sign-in and its cookie, what a signed-out
//! or cross-site request gets, the JSON shape, actions and their refusals, paging, the
//! machines view and "why not running", and the event stream resuming with no gap and no
//! duplicate.

use std::time::Duration;

use kanband::auth::{Identity, Role};
use kanband_proto::pb;
use kanband_tests::{calls, spawn_service, web::WebClient};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

fn reader() -> Identity {
    Identity::new("viewer", Role::Reader)
}

#[tokio::test]
async fn signed_out_requests_get_401_and_no_data() {
    let svc = spawn_service().await;
    calls::create(&mut svc.tcp.clone(), "secret plans").await;
    let http = reqwest::Client::new();
    let base = svc.board.url();
    for path in [
        "/api/boards",
        "/api/boards/default/tasks",
        "/api/me",
        "/api/machines",
        "/api/events",
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("UNAUTHENTICATED") && !body.contains("secret plans"),
            "{path}: {body}"
        );
    }
    let forged = http
        .post(format!("{base}/api/tasks"))
        .header(
            header::COOKIE,
            "kanband_session=00000000000000000000000000000000",
        )
        .json(&json!({"title": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // The page itself carries no data: it asks /api/me and shows the sign-in form.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!page.text().await.unwrap().contains("secret plans"));
}

#[tokio::test]
async fn a_signin_link_sets_an_httponly_strict_cookie_once() {
    let svc = spawn_service().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let link = svc.board.signin_url(Identity::local_admin());
    let response = http.get(&link).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("kanband_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let me: Value = http
        .get(format!("{}/api/me", svc.board.url()))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
    assert_eq!(me["canAct"], true);
    assert_eq!(me["csrf"].as_str().unwrap().len(), 32);
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "a sign-in link works once"
    );
    assert!(again.headers().get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn json_is_the_grpc_message_in_proto3_json() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    let task = calls::create(&mut client, "Shape").await;
    let web = WebClient::sign_in(&svc.board, Identity::local_admin()).await;
    let (status, json) = web
        .get(&format!("/api/tasks/{}?recentEvents=5", task.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    let grpc = client
        .tasks
        .get_task(pb::GetTaskRequest {
            id: task.id.clone(),
            recent_events: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(json, serde_json::to_value(&grpc).unwrap());
    assert_eq!(json["task"]["status"], "TASK_STATUS_READY");
    assert_eq!(json["task"]["title"], "Shape");
    assert!(
        json["recentEvents"][0]["id"].is_string(),
        "uint64 as a string: {json}"
    );
    assert!(json["task"].get("created_at").is_none() && json["task"]["createdAt"].is_string());
}

#[tokio::test]
async fn mutations_need_the_csrf_secret_a_same_origin_and_a_role_that_acts() {
    let svc = spawn_service().await;
    let web = WebClient::sign_in(&svc.board, Identity::local_admin()).await;
    let url = format!("{}/api/tasks", web.base);
    let attempts = [
        ("no csrf header", None, Some(web.base.clone())),
        ("wrong csrf", Some("0".repeat(32)), Some(web.base.clone())),
        (
            "cross-site origin",
            Some(web.csrf.clone()),
            Some("http://evil.example".to_owned()),
        ),
    ];
    for (what, csrf, origin) in attempts {
        let mut request = web
            .http()
            .post(&url)
            .header(header::COOKIE, &web.cookie)
            .json(&json!({"title": what}));
        if let Some(csrf) = csrf {
            request = request.header("x-kanband-csrf", csrf);
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
    }
    // A page served under another name (DNS rebinding) is refused even for reads.
    let rebound = web
        .http()
        .get(format!("{}/api/boards", web.base))
        .header(header::COOKIE, &web.cookie)
        .header(
            header::HOST,
            format!("evil.example:{}", svc.board.addr().port()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    let (status, created) = web
        .post("/api/tasks", json!({"title": "made on the board"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["task"]["createdBy"], "admin");
    let tasks = calls::all_tasks(&mut svc.tcp.clone(), "default", &[]).await;
    assert_eq!(
        calls::ids(&tasks),
        [created["task"]["id"].as_str().unwrap()],
        "only the genuine request created a task"
    );

    let reader = WebClient::sign_in(&svc.board, reader()).await;
    let (_, me) = reader.get("/api/me").await;
    assert_eq!(
        (me["role"].as_str(), me["canAct"].as_bool()),
        (Some("reader"), Some(false))
    );
    let (status, refusal) = reader
        .post("/api/tasks", json!({"title": "by a reader"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refusal}");
    assert_eq!(refusal["code"], "PERMISSION_DENIED");
    let (status, _) = reader.get("/api/boards/default/tasks").await;
    assert_eq!(status, StatusCode::OK, "a reader reads");
}

#[tokio::test]
async fn actions_go_through_the_rules_and_a_refusal_carries_its_message() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    let web = WebClient::sign_in(&svc.board, Identity::local_admin()).await;
    let parent = calls::create(&mut client, "parent").await;
    let (status, created) = web
        .post(
            "/api/tasks",
            json!({"title": "child", "parents": [parent.id], "priority": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        created["task"]["status"], "TASK_STATUS_TODO",
        "a child of an unfinished parent waits"
    );
    let id = parent.id.as_str();

    let (status, refusal) = web
        .post(&format!("/api/tasks/{id}/unblock"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refusal["code"], "FAILED_PRECONDITION");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("only blocked tasks can be unblocked"),
        "{refusal}"
    );

    let (status, moved) = web
        .post(&format!("/api/tasks/{id}/move"), json!({"from": "TASK_STATUS_READY", "to": "TASK_STATUS_BLOCKED", "reason": "waiting on a vendor"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        calls::status_of(&mut client, id).await,
        pb::TaskStatus::Blocked
    );
    assert_eq!(
        calls::task(&mut client, id).await.block_reason,
        "waiting on a vendor"
    );

    // A stale page (it still shows the task ready) is refused, not applied.
    let (status, stale) = web
        .post(
            &format!("/api/tasks/{id}/move"),
            json!({"from": "TASK_STATUS_READY", "to": "TASK_STATUS_ARCHIVED"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        stale["message"].as_str().unwrap().contains("moved on"),
        "{stale}"
    );
    assert_eq!(
        calls::status_of(&mut client, id).await,
        pb::TaskStatus::Blocked
    );

    let (status, nope) = web
        .post(
            &format!("/api/tasks/{id}/move"),
            json!({"to": "TASK_STATUS_DONE"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        nope["message"]
            .as_str()
            .unwrap()
            .contains("only the worker holding"),
        "{nope}"
    );

    for (action, body) in [
        ("unblock", json!({})),
        ("assign", json!({"assignee": "coder"})),
        ("update", json!({"priority": 9})),
        ("schedule", json!({"delaySeconds": "0"})),
        ("promote", json!({})),
    ] {
        let (status, answer) = web.post(&format!("/api/tasks/{id}/{action}"), body).await;
        assert_eq!(status, StatusCode::OK, "{action}: {answer}");
    }
    let (status, comment) = web
        .post(
            &format!("/api/tasks/{id}/comment"),
            json!({"body": "looks good"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{comment}");
    let task = calls::task(&mut client, id).await;
    assert_eq!(
        (task.assignee.as_str(), task.priority, task.status()),
        ("coder", 9, pb::TaskStatus::Ready)
    );
    let detail = calls::detail(&mut client, id).await;
    assert_eq!(detail.comments[0].author, "admin");
    let events = calls::task_events(&mut client, id).await;
    assert!(
        events
            .iter()
            .filter(|e| e.kind != "created")
            .all(|e| e.actor == "admin"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| (e.identity.as_str(), e.identity_role.as_str()) == ("admin", "admin")),
        "the board's actions record the signed-in identity: {events:?}"
    );
    let (status, _) = web
        .post(&format!("/api/tasks/{id}/archive"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, missing) = web.get("/api/tasks/t_0000000000000000").await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn columns_page_and_filter_by_text_assignee_and_tenant() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    for i in 0..120 {
        let mut request = calls::new_task("default", &format!("task {i}"));
        if i % 10 == 0 {
            request.title = format!("needle {i}");
            request.tenant = "acme".to_owned();
            request.assignee = "coder".to_owned();
        }
        client.tasks.create_task(request).await.unwrap();
    }
    let web = WebClient::sign_in(&svc.board, Identity::local_admin()).await;
    let (_, first) = web
        .get("/api/boards/default/tasks?status=TASK_STATUS_READY&pageSize=50")
        .await;
    assert_eq!(first["tasks"].as_array().unwrap().len(), 50);
    let token = first["nextPageToken"].as_str().unwrap();
    let (_, second) = web
        .get(&format!(
            "/api/boards/default/tasks?status=ready&pageSize=50&pageToken={token}"
        ))
        .await;
    let titles: Vec<&str> = second["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.first(), Some(&"needle 50"));
    let (_, none) = web.get("/api/boards/default/tasks?status=running").await;
    assert!(none["tasks"].as_array().is_none_or(Vec::is_empty));
    let (_, found) = web
        .get("/api/boards/default/tasks?status=ready&q=NEEDLE")
        .await;
    assert_eq!(found["tasks"].as_array().unwrap().len(), 12);
    for query in ["assignee=coder", "tenant=acme"] {
        let (_, found) = web
            .get(&format!("/api/boards/default/tasks?status=ready&{query}"))
            .await;
        assert_eq!(found["tasks"].as_array().unwrap().len(), 12, "{query}");
    }
    let (status, bad) = web.get("/api/boards/default/tasks?status=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
}

#[tokio::test]
async fn machines_and_why_not_running_come_from_the_lease_registry_and_the_preview() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    let web = WebClient::sign_in(&svc.board, Identity::local_admin()).await;
    let waiting = calls::create_assigned(&mut client, "default", "for nobody", "painter").await;
    let (_, why) = web.get(&format!("/api/tasks/{}/why", waiting.id)).await;
    assert!(
        why["summary"].as_str().unwrap().contains("No supervisor"),
        "{why}"
    );

    let session = calls::open_session(&mut client, "coder", 30_000).await;
    let task = calls::create_assigned(&mut client, "default", "for the coder", "coder").await;
    let grant = calls::acquire(&mut client, &session.id, 0)
        .await
        .expect("a grant");
    assert_eq!(grant.task.as_ref().unwrap().id, task.id);
    let (status, machines) = web.get("/api/machines").await;
    assert_eq!(status, StatusCode::OK, "{machines}");
    let sessions = machines["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["session"]["id"], session.id.as_str());
    assert_eq!(
        sessions[0]["session"]["machineId"],
        session.machine_id.as_str()
    );
    let claim = &sessions[0]["claims"][0];
    assert_eq!(claim["taskId"], task.id.as_str());
    assert_eq!(claim["epoch"], grant.epoch.to_string());
    assert!(claim["lastRenewedAt"].is_string());
    assert_eq!(machines["stats"]["liveClaims"], "1");

    let (_, why) = web.get(&format!("/api/tasks/{}/why", waiting.id)).await;
    let answer = &why["sessions"][0];
    assert_eq!(answer["sessionId"], session.id.as_str());
    assert!(!answer["whyNot"].as_str().unwrap().is_empty(), "{why}");
    let (_, why) = web.get(&format!("/api/tasks/{}/why", task.id)).await;
    assert!(
        why["summary"].as_str().unwrap().contains("running"),
        "{why}"
    );
}

/// Reads SSE messages from `response` until `count` `kanban` events arrived: their ids.
async fn read_events(
    response: &mut reqwest::Response,
    buffer: &mut String,
    count: usize,
) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.len() < count {
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if message.lines().any(|l| l == "event: kanban") {
                let id = message
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .expect("an id");
                let data = message
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("data");
                let event: pb::Event = serde_json::from_str(data).expect("an Event in proto3 JSON");
                assert_eq!(id, event.id.to_string(), "the SSE id is the event id");
                ids.push(event.id);
            }
        }
        if ids.len() >= count {
            break;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("events arrive")
            .expect("stream reads")
            .expect("stream open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    ids
}

#[tokio::test]
async fn the_event_stream_resumes_after_the_last_event_id_without_gap_or_duplicate() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    let web = WebClient::sign_in(&svc.board, Identity::local_admin()).await;
    let (_, head) = web.get("/api/events/head").await;
    let start: u64 = head["id"].as_str().unwrap().parse().unwrap();
    let open = |after: Option<u64>| {
        let mut request = web
            .http()
            .get(format!(
                "{}/api/events?board=default&after={start}",
                web.base
            ))
            .header(header::COOKIE, &web.cookie);
        if let Some(after) = after {
            request = request.header("last-event-id", after.to_string());
        }
        request.send()
    };
    let mut stream = open(None).await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    for i in 0..5 {
        calls::create(&mut client, &format!("first {i}")).await;
    }
    let mut buffer = String::new();
    let mut seen = read_events(&mut stream, &mut buffer, 3).await;
    drop(stream); // the page loses its connection part-way
    for i in 0..5 {
        calls::create(&mut client, &format!("second {i}")).await;
    }
    let last = *seen.last().unwrap();
    let mut resumed = open(Some(last)).await.unwrap();
    let mut buffer = String::new();
    seen.extend(read_events(&mut resumed, &mut buffer, 7).await);
    let all: Vec<u64> = calls::all_events(&mut client)
        .await
        .iter()
        .map(|e| e.id)
        .filter(|id| *id > start)
        .collect();
    assert_eq!(
        seen, all,
        "every event once, in order, across the reconnect"
    );
    assert_eq!(seen.len(), 10);

    let bad = web
        .http()
        .get(format!("{}/api/events", web.base))
        .header(header::COOKIE, &web.cookie)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn shutdown_ends_open_event_streams_and_stops_the_board() {
    let svc = spawn_service().await;
    let web = WebClient::sign_in(&svc.board, Identity::local_admin()).await;
    let mut stream = web
        .http()
        .get(format!("{}/api/events?after=0", web.base))
        .header(header::COOKIE, &web.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let base = web.base.clone();
    tokio::time::timeout(Duration::from_secs(10), svc.stop())
        .await
        .expect("shutdown finishes with an event stream open");
    let mut rest = String::new();
    while let Ok(Some(chunk)) = stream.chunk().await {
        rest.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(
        rest.contains("event: end"),
        "the stream says it ended: {rest:?}"
    );
    assert!(
        reqwest::get(format!("{base}/")).await.is_err(),
        "the board no longer listens"
    );
}

#[tokio::test]
async fn a_tasks_attachments_are_listed_and_downloaded_as_inert_files_by_signed_in_users_only() {
    let svc = spawn_service().await;
    let mut grpc = svc.tcp.clone();
    let task = calls::create(&mut grpc, "with files").await;
    let html = b"<script>alert(document.cookie)</script>".repeat(5000);
    let page = calls::upload_messages(
        &mut grpc,
        vec![
            pb::UploadRequest {
                part: Some(pb::upload_request::Part::Header(pb::UploadHeader {
                    task_id: task.id.clone(),
                    name: "evil\".html".into(),
                    media_type: "text/html".into(),
                    ..Default::default()
                })),
            },
            pb::UploadRequest {
                part: Some(pb::upload_request::Part::Chunk(html.clone())),
            },
        ],
    )
    .await
    .expect("Upload");
    let text = calls::upload(&mut grpc, &task.id, "notes.txt", b"plain notes")
        .await
        .expect("Upload");

    let viewer = WebClient::sign_in(&svc.board, reader()).await;
    let (status, listed) = viewer
        .get(&format!("/api/tasks/{}/attachments", task.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let names: Vec<&str> = listed["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["evil\".html", "notes.txt"]);
    assert_eq!(listed["attachments"][0]["sha256"], page.sha256.as_str());

    let download = |id: String| {
        let viewer = viewer.clone();
        async move {
            viewer
                .http()
                .get(format!("{}/api/attachments/{id}", viewer.base))
                .header(header::COOKIE, &viewer.cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let response = download(page.id.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/octet-stream",
        "HTML is never served as HTML"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"evil_.html\"; filename*=UTF-8''evil%22.html"
    );
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        html.len().to_string().as_str()
    );
    assert!(
        response.bytes().await.unwrap() == html,
        "multi-chunk body streamed whole"
    );
    let response = download(text.id.clone()).await;
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    assert_eq!(response.bytes().await.unwrap(), &b"plain notes"[..]);

    let (status, missing) = viewer.get("/api/attachments/a_0000000000000000").await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (status, _) = viewer
        .get(&format!("/api/tasks/{}/attachments", calls::MISSING_TASK))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let anonymous = reqwest::Client::new();
    for path in [
        format!("/api/attachments/{}", text.id),
        format!("/api/tasks/{}/attachments", task.id),
    ] {
        let response = anonymous
            .get(format!("{}{path}", svc.board.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("plain notes") && !body.contains("notes.txt"),
            "{path}: {body}"
        );
    }
}

/// Makes a named bearer token over the Unix socket (as the owner, an admin); returns its secret.
async fn bearer_token(svc: &kanband_tests::TestService, name: &str, role: &str) -> String {
    svc.unix
        .clone()
        .admin
        .create_token(pb::CreateTokenRequest {
            name: name.into(),
            role: role.into(),
            ..Default::default()
        })
        .await
        .expect("CreateToken")
        .into_inner()
        .secret
}

#[tokio::test]
async fn a_named_token_signs_in_with_its_role_until_it_is_revoked() {
    let svc = spawn_service().await;
    let reader_secret = bearer_token(&svc, "wallboard", "reader").await;
    let reader = WebClient::sign_in_with(&svc.board, &reader_secret).await;
    let (_, me) = reader.get("/api/me").await;
    assert_eq!(
        (
            me["name"].as_str(),
            me["role"].as_str(),
            me["canAct"].as_bool()
        ),
        (Some("wallboard"), Some("reader"), Some(false))
    );
    let (status, refusal) = reader
        .post("/api/tasks", json!({"title": "by a reader"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refusal}");
    let (status, _) = reader.get("/api/boards/default/tasks").await;
    assert_eq!(status, StatusCode::OK, "a reader reads");
    // A bearer token is not used up by signing in: a second page signs in with it too.
    let second = WebClient::sign_in_with(&svc.board, &reader_secret).await;

    let operator =
        WebClient::sign_in_with(&svc.board, &bearer_token(&svc, "ops", "operator").await).await;
    let (status, created) = operator
        .post("/api/tasks", json!({"title": "by an operator"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["task"]["createdBy"], "ops");
    let id = created["task"]["id"].as_str().expect("an id").to_owned();
    let (status, detail) = operator
        .get(&format!("/api/tasks/{id}?recentEvents=5"))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let event = &detail["recentEvents"][0];
    assert_eq!(
        (&event["identity"], &event["identityRole"]),
        (&json!("ops"), &json!("operator")),
        "the history shows who signed in: {detail}"
    );

    svc.unix
        .clone()
        .admin
        .revoke_token(pb::RevokeTokenRequest {
            id: "wallboard".into(),
        })
        .await
        .expect("RevokeToken");
    for page in [&reader, &second] {
        let (status, body) = page.get("/api/boards/default/tasks").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "revoked: no data ({body})"
        );
    }
    let refused = reader
        .http()
        .post(format!("{}/api/signin", reader.base))
        .header(header::ORIGIN, &reader.base)
        .json(&json!({ "token": reader_secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked token signs in no more"
    );
    let (status, _) = operator.get("/api/boards/default/tasks").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "other tokens' sessions are untouched"
    );
}
