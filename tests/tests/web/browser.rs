//! The board page in a real headless Chromium (Debian's `chromium` and `chromedriver`):
//! sign-in, live updates without a reload, moving a card, a running task's holder and epoch,
//! script injection rendered as text, and a reader without actions. Screenshots of the board
//! and the task view go to `screenshots/` under the target directory.

use std::time::{Duration, Instant};

use kanband::auth::{Identity, Role};
use kanband_proto::pb;
use kanband_tests::{
    TestService,
    browser::{Browser, screenshot_dir},
    calls,
    daemon::workspace_bin,
    spawn_service,
};
use serde_json::json;

/// Opens the board in a fresh browser signed in as `identity`, and waits until it is drawn.
async fn open_board(svc: &TestService, identity: Identity) -> Browser {
    let browser = Browser::launch().await;
    browser.goto(&svc.board.signin_url(identity)).await;
    browser
        .wait_for(
            "the board is drawn",
            "return document.body.dataset.ready === 'true' && !document.getElementById('board').hidden \
             && document.querySelectorAll('.column').length >= 8",
            Duration::from_secs(10),
        )
        .await;
    browser
}

/// A script returning the status column (`data-status`) the card of `id` is in, or null.
fn column_of(id: &str) -> String {
    format!(
        "const card = document.querySelector('[data-task-id=\"{id}\"]'); \
         return card ? card.closest('.column').dataset.status : null;"
    )
}

#[tokio::test]
async fn sign_in_see_a_kanbanctl_task_within_a_second_and_move_it_to_blocked() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    let browser = open_board(&svc, Identity::local_admin()).await;
    let me = browser.find("#me").await;
    assert_eq!(browser.text(&me).await, "admin (admin)");

    let output = tokio::process::Command::new(workspace_bin("kanbanctl"))
        .env("KANBAN_TOKEN", &svc.admin_token)
        .args([
            "--addr",
            &svc.tcp_addr,
            "task",
            "create",
            "--title",
            "Made with kanbanctl",
        ])
        .output()
        .await
        .expect("kanbanctl runs");
    assert!(
        output.status.success(),
        "kanbanctl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created = Instant::now();
    let id = browser
        .wait_for(
            "the new task appears without a reload",
            "const card = [...document.querySelectorAll('.card')].find(c => c.querySelector('h3').textContent === 'Made with kanbanctl'); \
             return card ? card.dataset.taskId : null;",
            Duration::from_secs(1),
        )
        .await;
    let shown_after = created.elapsed();
    let id = id.as_str().unwrap().to_owned();
    assert_eq!(
        browser.execute(&column_of(&id), vec![]).await,
        json!("TASK_STATUS_READY")
    );
    let marker = browser
        .execute(
            "return window.performance.getEntriesByType('navigation').length",
            vec![],
        )
        .await;
    assert_eq!(marker, json!(1), "one navigation: no reload");

    // Move it with the card's menu (the same call a drop on the column makes).
    let option = browser
        .find(&format!(
            "[data-task-id=\"{id}\"] select.move option[value=\"TASK_STATUS_BLOCKED\"]"
        ))
        .await;
    browser.click(&option).await;
    calls::wait_for_status(
        &mut client,
        &id,
        pb::TaskStatus::Blocked,
        Duration::from_secs(5),
    )
    .await;
    browser
        .wait_for(
            "the card is in the blocked column",
            &format!("{} ", column_of(&id)).replace(
                "return card ?",
                "return card && card.closest('.column').dataset.status === 'TASK_STATUS_BLOCKED' ?",
            ),
            Duration::from_secs(5),
        )
        .await;
    let reason = calls::task(&mut client, &id).await.block_reason;
    assert_eq!(reason, "moved to blocked on the board");

    // A move the rules refuse shows the refusal's message.
    let option = browser
        .find(&format!(
            "[data-task-id=\"{id}\"] select.move option[value=\"TASK_STATUS_DONE\"]"
        ))
        .await;
    browser.click(&option).await;
    let notice = browser
        .wait_for(
            "the refusal is shown",
            "const n = document.getElementById('notice'); return n.hidden ? null : n.textContent;",
            Duration::from_secs(5),
        )
        .await;
    assert!(
        notice.as_str().unwrap().contains("only the worker holding"),
        "{notice}"
    );
    assert_eq!(
        calls::status_of(&mut client, &id).await,
        pb::TaskStatus::Blocked
    );

    browser
        .screenshot(&screenshot_dir().join("board.png"))
        .await;
    eprintln!("kanbanctl task shown {shown_after:?} after kanbanctl exited");
    browser.quit().await;
}

#[tokio::test]
async fn a_running_task_shows_holder_and_epoch_and_moves_to_done_when_completed() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    for (title, priority) in [
        ("Write the release notes", 1),
        ("Review the schema change", 2),
    ] {
        let mut request = calls::new_task("default", title);
        request.priority = priority;
        request.body = "Check **every** migration.\n\n- one\n- two".to_owned();
        client.tasks.create_task(request).await.unwrap();
    }
    let blocked = calls::create(&mut client, "Upgrade the runners").await;
    client
        .tasks
        .block_task(pb::BlockTaskRequest {
            id: blocked.id.clone(),
            reason: "waiting for the vendor".into(),
            kind: pb::BlockKind::NeedsInput as i32,
            actor: "ops".into(),
        })
        .await
        .unwrap();
    let mut request = calls::new_task("default", "Fix the flaky test");
    request.assignee = "coder".to_owned();
    request.body = "The `leases` test fails about once in fifty runs on CI.\n\n\
                    ## Steps\n\n1. Run it in a loop\n2. Look at the **expiry lag**\n\n\
                    Log: https://ci.example.invalid/run/42"
        .to_owned();
    let task = client
        .tasks
        .create_task(request)
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    client
        .tasks
        .add_comment(pb::AddCommentRequest {
            task_id: task.id.clone(),
            author: "reviewer".into(),
            body: "Seen it too: only with *paused* time.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let session = calls::open_session(&mut client, "coder", 60_000).await;
    let grant = calls::acquire(&mut client, &session.id, 0)
        .await
        .expect("a grant");
    assert_eq!(grant.task.as_ref().unwrap().id, task.id);
    client
        .leases
        .heartbeat(pb::HeartbeatRequest {
            claim_token: grant.claim_token.clone(),
            note: "halfway".into(),
        })
        .await
        .unwrap();

    let browser = open_board(&svc, Identity::local_admin()).await;
    let card = format!("[data-task-id=\"{}\"]", task.id);
    let holder = browser
        .wait_for(
            "the running card shows its holder",
            &format!("const h = document.querySelector('{card} dd.holder'); return h && !h.textContent.startsWith('…') ? h.textContent : null;"),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        holder,
        json!(format!("{} · {}", session.machine_id, session.id))
    );
    let epoch = browser
        .execute(
            &format!("return document.querySelector('{card} dd.epoch').textContent"),
            vec![],
        )
        .await;
    assert_eq!(epoch, json!(grant.epoch.to_string()));
    let renewed = browser
        .execute(
            &format!("return document.querySelector('{card} dd.renewed').textContent"),
            vec![],
        )
        .await;
    assert!(renewed.as_str().unwrap().ends_with("ago"), "{renewed}");
    browser
        .screenshot(&screenshot_dir().join("board-running.png"))
        .await;

    client
        .leases
        .complete(pb::CompleteRequest {
            claim_token: grant.claim_token.clone(),
            summary: "fixed the race".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    browser
        .wait_for(
            "the card moves to done",
            &format!("const c = document.querySelector('{card}'); return c && c.closest('.column').dataset.status === 'TASK_STATUS_DONE';"),
            Duration::from_secs(5),
        )
        .await;

    browser
        .goto(&format!("{}/#/task/{}", svc.board.url(), task.id))
        .await;
    let outcome = browser
        .wait_for("the run's outcome is shown", "const o = document.querySelector('#task-runs td.outcome'); return o ? o.textContent : null;", Duration::from_secs(5))
        .await;
    assert_eq!(outcome, json!("completed"));
    let title = browser.find("#task-title").await;
    assert_eq!(browser.text(&title).await, "Fix the flaky test");
    browser.screenshot(&screenshot_dir().join("task.png")).await;
    browser.quit().await;
}

#[tokio::test]
async fn script_in_a_title_body_or_comment_renders_as_text_and_runs_nothing() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    let title = r#"<img src=x onerror="window.__pwned='title';alert('title')">"#;
    let body = "Hello <img src=x onerror=window.__pwned='body'> and <script>window.__pwned='script'</script>\n\n\
                [click me](javascript:window.__pwned='link') or javascript:alert('bare') or \
                [safe](https://example.invalid/page)";
    let mut request = calls::new_task("default", title);
    request.body = body.to_owned();
    let task = client
        .tasks
        .create_task(request)
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    let comment = "<img src=x onerror=window.__pwned='comment'> [c](javascript:alert('comment'))";
    client
        .tasks
        .add_comment(pb::AddCommentRequest {
            task_id: task.id.clone(),
            author: "agent".into(),
            body: comment.into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let nothing_ran = "return { pwned: window.__pwned ?? null, imgs: document.querySelectorAll('img').length, \
                       scripts: [...document.querySelectorAll('script')].filter(s => !s.src.endsWith('/assets/app.js')).length, \
                       jsLinks: [...document.querySelectorAll('a')].filter(a => !/^https?:/.test(a.href)).length, \
                       requests: performance.getEntriesByType('resource').filter(e => /\\/x$/.test(e.name)).length };";
    let clean = json!({ "pwned": null, "imgs": 0, "scripts": 0, "jsLinks": 0, "requests": 0 });

    let browser = open_board(&svc, Identity::local_admin()).await;
    let shown = browser
        .execute(
            &format!(
                "return document.querySelector('[data-task-id=\"{}\"] h3').textContent",
                task.id
            ),
            vec![],
        )
        .await;
    assert_eq!(shown, json!(title), "the title is text");
    assert_eq!(browser.alert_text().await, None, "no alert on the board");
    assert_eq!(browser.execute(nothing_ran, vec![]).await, clean);

    browser
        .goto(&format!("{}/#/task/{}", svc.board.url(), task.id))
        .await;
    browser
        .wait_for(
            "the task view is drawn",
            "return document.querySelector('#task-comments .comment') !== null",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        browser.alert_text().await,
        None,
        "no alert in the task view"
    );
    assert_eq!(browser.execute(nothing_ran, vec![]).await, clean);
    let texts = browser
        .execute(
            "return { title: document.getElementById('task-title').textContent, \
                      body: document.getElementById('task-body').textContent, \
                      comment: document.querySelector('#task-comments .comment p').textContent, \
                      links: [...document.querySelectorAll('#task-body a')].map(a => a.href) };",
            vec![],
        )
        .await;
    assert_eq!(texts["title"], json!(title));
    let body_text = texts["body"].as_str().unwrap();
    for literal in [
        "<img src=x onerror=window.__pwned='body'>",
        "<script>window.__pwned='script'</script>",
        "[click me](javascript:window.__pwned='link')",
        "javascript:alert('bare')",
    ] {
        assert!(
            body_text.contains(literal),
            "{literal:?} shown as text in {body_text:?}"
        );
    }
    assert_eq!(
        texts["links"],
        json!(["https://example.invalid/page"]),
        "only the http(s) link is a link"
    );
    assert_eq!(texts["comment"], json!(comment));
    browser.quit().await;
}

#[tokio::test]
async fn a_reader_sees_the_board_without_actions() {
    let svc = spawn_service().await;
    let mut client = svc.tcp.clone();
    let task = calls::create(&mut client, "Read me").await;
    let reader = Identity::new("viewer", Role::Reader);
    let browser = open_board(&svc, reader).await;
    let seen = browser
        .execute(
            &format!(
                "const card = document.querySelector('[data-task-id=\"{}\"]'); \
                 return {{ card: !!card, menus: document.querySelectorAll('select.move').length, \
                          create: !!document.getElementById('create'), draggable: card.draggable }};",
                task.id
            ),
            vec![],
        )
        .await;
    assert_eq!(
        seen,
        json!({ "card": true, "menus": 0, "create": false, "draggable": false })
    );
    browser
        .goto(&format!("{}/#/task/{}", svc.board.url(), task.id))
        .await;
    browser
        .wait_for(
            "the task view is drawn",
            "return document.getElementById('task-title') !== null",
            Duration::from_secs(5),
        )
        .await;
    let forms = browser
        .execute(
            "return document.querySelectorAll('#task form, #task .actions').length",
            vec![],
        )
        .await;
    assert_eq!(forms, json!(0), "no action forms for a reader");
    browser.quit().await;
}
