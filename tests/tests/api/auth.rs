//! Who may do what, over real gRPC: every RPC x every role (and no credential) over TCP, the
//! Unix socket's owner, tokens made, listed and revoked (open streams included), and bad
//! credentials refused with nothing changed.

use std::time::Duration;

use kanband_gateway::{Bearer, Client};
use kanband_proto::pb;
use kanband_tests::{TestService, calls, raw, spawn_service};
use tonic::Code;

use crate::support::tokens::{self, token};

/// Which roles may call each method: A admin, O operator, S supervisor, W worker, R reader.
/// Written from the role list, independently of the service's own table.
const EXPECTED: &[(&str, &str)] = &[
    ("/kanban.v1.Boards/CreateBoard", "AO"),
    ("/kanban.v1.Boards/GetBoard", "AOWR"),
    ("/kanban.v1.Boards/ListBoards", "AOWR"),
    ("/kanban.v1.Boards/UpdateBoard", "AO"),
    ("/kanban.v1.Boards/ArchiveBoard", "AO"),
    ("/kanban.v1.Boards/ResetBoard", "AO"),
    ("/kanban.v1.Tasks/CreateTask", "AOW"),
    ("/kanban.v1.Tasks/GetTask", "AOWR"),
    ("/kanban.v1.Tasks/ListTasks", "AOWR"),
    ("/kanban.v1.Tasks/UpdateTask", "AO"),
    ("/kanban.v1.Tasks/AssignTask", "AO"),
    ("/kanban.v1.Tasks/LinkTasks", "AO"),
    ("/kanban.v1.Tasks/UnlinkTasks", "AO"),
    ("/kanban.v1.Tasks/AddComment", "AOW"),
    ("/kanban.v1.Tasks/ListComments", "AOWR"),
    ("/kanban.v1.Tasks/BlockTask", "AO"),
    ("/kanban.v1.Tasks/UnblockTask", "AO"),
    ("/kanban.v1.Tasks/ScheduleTask", "AO"),
    ("/kanban.v1.Tasks/PromoteTask", "AO"),
    ("/kanban.v1.Tasks/ArchiveTask", "AO"),
    ("/kanban.v1.Tasks/ReclaimTask", "AO"),
    ("/kanban.v1.Tasks/ReopenReview", "AO"),
    ("/kanban.v1.Tasks/ListEvents", "AOWR"),
    ("/kanban.v1.Leases/OpenSession", "AS"),
    ("/kanban.v1.Leases/KeepAlive", "AS"),
    ("/kanban.v1.Leases/CloseSession", "AS"),
    ("/kanban.v1.Leases/Acquire", "AS"),
    ("/kanban.v1.Leases/Renew", "ASW"),
    ("/kanban.v1.Leases/Heartbeat", "ASW"),
    ("/kanban.v1.Leases/Complete", "ASW"),
    ("/kanban.v1.Leases/CompleteAndAcquire", "AS"),
    ("/kanban.v1.Leases/Block", "ASW"),
    ("/kanban.v1.Leases/RequestReview", "ASW"),
    ("/kanban.v1.Leases/RequestChanges", "ASW"),
    ("/kanban.v1.Leases/Release", "ASW"),
    ("/kanban.v1.Leases/ReportExit", "ASW"),
    ("/kanban.v1.Admin/DispatchPreview", "AO"),
    ("/kanban.v1.Admin/Stats", "AOR"),
    ("/kanban.v1.Admin/CheckInvariants", "AO"),
    ("/kanban.v1.Admin/Backup", "A"),
    ("/kanban.v1.Admin/SetStorageLimit", "A"),
    ("/kanban.v1.Admin/CreateToken", "A"),
    ("/kanban.v1.Admin/ListTokens", "A"),
    ("/kanban.v1.Admin/RevokeToken", "A"),
    ("/kanban.v1.Events/Watch", "AOWR"),
    ("/kanban.v1.Notifications/Subscribe", "AS"),
    ("/kanban.v1.Notifications/Unsubscribe", "AS"),
    ("/kanban.v1.Notifications/ListSubscriptions", "AS"),
    ("/kanban.v1.Notifications/Deliver", "AS"),
    ("/kanban.v1.Notifications/Ack", "AS"),
    ("/kanban.v1.Attachments/Upload", "AOW"),
    ("/kanban.v1.Attachments/List", "AOWR"),
    ("/kanban.v1.Attachments/Download", "AOWR"),
    ("/kanban.v1.Attachments/Delete", "AO"),
];

/// A live claim's token on a board of its own (so a board reset elsewhere leaves it live).
async fn claim(svc: &TestService, profile: &str) -> (pb::Grant, pb::Session) {
    let mut admin = svc.unix.clone();
    calls::create_board(&mut admin, profile).await;
    calls::create_assigned(&mut admin, profile, "held", profile).await;
    let session = calls::open_session(&mut admin, profile, 60_000).await;
    (calls::acquire_now(&mut admin, &session.id).await, session)
}

/// A fresh TCP channel.
async fn channel(svc: &TestService) -> tonic::transport::Channel {
    kanband_gateway::connect(&svc.tcp_addr)
        .await
        .expect("connect over TCP")
}

#[tokio::test]
async fn every_rpc_for_every_role_over_tcp() {
    let svc = spawn_service().await;
    let (grant, _session) = claim(&svc, "wb").await;
    let callers: Vec<(char, Option<String>)> = vec![
        ('A', Some(svc.admin_token.clone())),
        ('O', Some(token(&svc, "op", "operator", "").await)),
        ('S', Some(token(&svc, "sup", "supervisor", "m1").await)),
        ('W', Some(grant.claim_token.clone())),
        ('R', Some(token(&svc, "rd", "reader", "").await)),
        ('-', None),
    ];
    let channel = channel(&svc).await;
    let mut checked = 0;
    for &(method, allowed) in EXPECTED {
        for (role, secret) in &callers {
            let bearer = Bearer::new(secret.as_deref()).unwrap();
            let mut grpc = raw::grpc(channel.clone(), bearer);
            let answer = raw::call(&mut grpc, method, Vec::new()).await;
            let code = answer.as_ref().err().map_or(Code::Ok, |s| s.code());
            if *role == '-' {
                assert_eq!(
                    code,
                    Code::Unauthenticated,
                    "{method} without a token: {answer:?}"
                );
                let message = answer.unwrap_err().message().to_owned();
                assert!(
                    message.contains("authorization: Bearer"),
                    "{method}: {message}"
                );
            } else if allowed.contains(*role) {
                // The role is admitted; a finer check may still refuse this empty request (a
                // worker's task with no parents), but never for want of a role.
                let by_role = answer
                    .as_ref()
                    .is_err_and(|s| s.message().contains("role;"));
                assert!(
                    code != Code::Unauthenticated && !by_role,
                    "{method} as {role} is allowed: {answer:?}"
                );
            } else {
                assert_eq!(
                    code,
                    Code::PermissionDenied,
                    "{method} as {role}: {answer:?}"
                );
                let message = answer.unwrap_err().message().to_owned();
                assert!(
                    message.contains("needs the") && message.contains("role;"),
                    "{message}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, EXPECTED.len() * 6);
    // The table names every method the service has (the unit test holds the service's own
    // table to the descriptor set), so nothing is left unchecked.
    assert_eq!(EXPECTED.len(), kanband::auth::policy::TABLE.len());
    // The worker's claim survived the sweep: its task is still running.
    let task = calls::task(&mut svc.unix.clone(), calls::granted_task(&grant)).await;
    assert_eq!(task.status(), pb::TaskStatus::Running);
}

#[tokio::test]
async fn the_unix_socket_owner_is_admin_without_a_token_and_tcp_always_needs_one() {
    let svc = spawn_service().await;
    let mut owner = svc.unix.clone();
    let listed = owner
        .admin
        .list_tokens(pb::ListTokensRequest {})
        .await
        .expect("the owner lists tokens over the socket")
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), 1, "the first start's admin token: {listed:?}");
    assert_eq!(
        (listed[0].name.as_str(), listed[0].role.as_str()),
        ("admin", "admin")
    );
    // Loopback TCP is no exception.
    let mut anonymous = svc.tcp_client(None).await;
    let refused = anonymous
        .tasks
        .list_tasks(pb::ListTasksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Health and reflection need no credential.
    let channel = channel(&svc).await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers anyone");
    assert_eq!(health.into_inner().status, 1);
}

#[tokio::test]
async fn the_first_admin_token_file_is_private_and_only_its_hash_is_stored() {
    use std::os::unix::fs::PermissionsExt as _;
    let svc = spawn_service().await;
    let file = svc.data_dir.join(kanband::auth::ADMIN_TOKEN_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    assert!(svc.admin_token.starts_with("kbt_") && svc.admin_token.len() == 68);
    let dir = svc.stop().await;
    let db = dir.path().join("data").join("kanband.db");
    let conn = tokio_rusqlite::rusqlite::Connection::open(&db).unwrap();
    let (hash, count): (String, i64) = conn
        .query_row("SELECT hash, count(*) FROM tokens", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(count, 1);
    drop(conn);
    let secret = std::fs::read_to_string(dir.path().join("data").join("admin.token")).unwrap();
    assert_ne!(hash, secret.trim(), "the secret itself is not stored");
    let bytes = std::fs::read(&db).unwrap();
    let needle = &secret.trim().as_bytes()[4..];
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "the secret is nowhere in the database file"
    );
    // A restart keeps the token and writes no new one.
    let svc = kanband_tests::spawn_service_in(dir).await;
    assert_eq!(svc.admin_token, secret.trim());
    calls::stats(&mut svc.tcp.clone()).await;
}

#[tokio::test]
async fn tokens_are_made_listed_and_revoked_at_once_streams_included() {
    let svc = spawn_service().await;
    let mut admin = svc.tcp.clone();
    let made = tokens::create_reader(&mut admin, "watcher", 0)
        .await
        .unwrap();
    let info = made.token.clone().unwrap();
    assert!(
        info.id.starts_with("k_") && info.revoked_at.is_none(),
        "{info:?}"
    );
    let mut reader = svc.tcp_client(Some(&made.secret)).await;
    calls::stats(&mut reader).await;
    let mut watch = reader
        .events
        .watch(pb::WatchRequest::default())
        .await
        .expect("a reader watches")
        .into_inner();
    calls::create(&mut admin, "seen by the watcher").await;
    let event = watch.message().await.unwrap().expect("an event");
    assert_eq!(event.kind, "created");

    let listed = tokens::list(&mut admin).await;
    assert!(
        listed
            .iter()
            .any(|t| t.id == info.id && t.name == "watcher")
    );

    let revoked = admin
        .admin
        .revoke_token(pb::RevokeTokenRequest {
            id: "watcher".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.id, info.id);
    assert!(revoked.revoked_at.is_some());
    // The open stream ends with UNAUTHENTICATED, without another event to carry it.
    let cut = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the stream is cut at once");
    let status = cut.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    // And every new call with it is refused.
    let refused = reader.admin.stats(pb::StatsRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A revoked token stays listed, with when.
    let listed = tokens::list(&mut admin).await;
    let row = listed.iter().find(|t| t.id == info.id).unwrap();
    assert!(row.revoked_at.is_some());
    // Its name is free again.
    tokens::create_reader(&mut admin, "watcher", 0)
        .await
        .expect("a revoked token's name can be reused");
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated_and_change_nothing() {
    let svc = spawn_service().await;
    let before = calls::last_event_id(&mut svc.unix.clone()).await;
    let channel = channel(&svc).await;
    let headers = [
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer ",
        "bearer kbt_0000",
        "Bearer kbt_0000",
        "Bearer kbt_0000000000000000000000000000000000000000000000000000000000000000",
        "Bearer not-a-token",
        "Bearer c_0123456789abcdef",
    ];
    for header in headers {
        let mut client = pb::tasks_client::TasksClient::new(channel.clone());
        let mut request = tonic::Request::new(calls::new_task("", "must not exist"));
        request
            .metadata_mut()
            .insert("authorization", header.parse().unwrap());
        let refused = client.create_task(request).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::Unauthenticated,
            "{header:?}: {refused:?}"
        );
        assert!(!refused.message().is_empty());
        // Each message names what would do instead.
        let wanted = match header {
            "Bearer kbt_0000" | "bearer kbt_0000" | "Bearer not-a-token" => {
                "not a kanband token (`kbt_` and 64 hex"
            }
            h if h.starts_with("Bearer kbt_") => "unknown or revoked; an admin makes tokens",
            h if h.starts_with("Bearer c_") => "not a claim token kanband issued",
            _ => "Bearer <token>",
        };
        assert!(
            refused.message().contains(wanted),
            "{header:?}: {refused:?}"
        );
    }
    assert_eq!(calls::last_event_id(&mut svc.unix.clone()).await, before);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let svc = spawn_service().await;
    let channel = channel(&svc).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let mut client = pb::admin_client::AdminClient::new(channel.clone());
        let mut request = tonic::Request::new(pb::StatsRequest {});
        request.metadata_mut().insert(
            "authorization",
            format!("{scheme} {}", svc.admin_token).parse().unwrap(),
        );
        client
            .stats(request)
            .await
            .unwrap_or_else(|err| panic!("{scheme}: {err:?}"));
    }
}

/// Checks that `reader`'s token works (a read, then a Watch), then waits (at most 10 s) for
/// that Watch to be cut; returns the status it ends with.
async fn watch_until_cut(reader: &mut Client) -> tonic::Status {
    calls::stats(reader).await;
    let mut watch = reader
        .events
        .watch(pb::WatchRequest::default())
        .await
        .expect("the token works: a reader watches")
        .into_inner();
    tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the stream is cut within 10 s")
        .expect_err("the stream ends with an error, not an event")
}

#[tokio::test]
async fn a_token_made_to_expire_stops_at_its_expiry_streams_included() {
    let svc = spawn_service().await;
    let mut admin = svc.tcp.clone();
    let lifetime = Duration::from_millis(1500);
    let made = tokens::create_reader(&mut admin, "short", lifetime.as_millis() as u64)
        .await
        .unwrap();
    let info = made.token.clone().unwrap();
    let expires_at = info.expires_at.expect("an expiry is listed");
    let created_at = info.created_at.unwrap();
    assert_eq!(
        (expires_at.seconds * 1000 + i64::from(expires_at.nanos) / 1_000_000)
            - (created_at.seconds * 1000 + i64::from(created_at.nanos) / 1_000_000),
        lifetime.as_millis() as i64,
        "{info:?}"
    );
    let mut reader = svc.tcp_client(Some(&made.secret)).await;
    // The open stream ends by itself at the expiry, with no event to carry the news.
    let status = watch_until_cut(&mut reader).await;
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("\"short\" expired"), "{status:?}");
    // Not before it (a few ms of slack for the two processes' clocks).
    let expiry = Duration::new(expires_at.seconds as u64, expires_at.nanos as u32);
    assert!(
        after + Duration::from_millis(50) >= expiry,
        "cut at {after:?}, before the expiry {expiry:?}"
    );
    // Every new call with it is refused, saying when it expired and what to do.
    let before = calls::last_event_id(&mut svc.unix.clone()).await;
    let refused = reader
        .tasks
        .create_task(calls::new_task("", "must not exist"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("the token \"short\" expired at 20")
            && refused.message().contains("kanbanctl token create"),
        "{refused:?}"
    );
    assert_eq!(calls::last_event_id(&mut svc.unix.clone()).await, before);

    // It stays listed, not revoked, and keeps its name until an admin revokes it.
    let listed = tokens::list(&mut admin).await;
    let row = listed.iter().find(|t| t.id == info.id).unwrap();
    assert!(
        row.revoked_at.is_none() && row.expires_at.is_some(),
        "{row:?}"
    );
    let taken = tokens::create_reader(&mut admin, "short", 0)
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    assert!(
        taken
            .message()
            .contains("an expired token is already named"),
        "{taken:?}"
    );
    admin
        .admin
        .revoke_token(pb::RevokeTokenRequest { id: "short".into() })
        .await
        .expect("an expired token can be revoked");
    tokens::create_reader(&mut admin, "short", 0)
        .await
        .expect("the name is free once the expired token is revoked");
}

#[tokio::test]
async fn a_restart_keeps_a_tokens_expiry() {
    let svc = spawn_service().await;
    let made = tokens::create_reader(&mut svc.unix.clone(), "short", 2000)
        .await
        .unwrap();
    // Restarted before the expiry: the token works, and its timer is set again from the file.
    let svc = kanband_tests::spawn_service_in(svc.stop().await).await;
    let status = watch_until_cut(&mut svc.tcp_client(Some(&made.secret)).await).await;
    assert!(
        status.code() == Code::Unauthenticated && status.message().contains("expired"),
        "{status:?}"
    );
    // Restarted after it: still refused.
    let svc = kanband_tests::spawn_service_in(svc.stop().await).await;
    let refused = svc
        .tcp_client(Some(&made.secret))
        .await
        .admin
        .stats(pb::StatsRequest {})
        .await
        .unwrap_err();
    assert!(
        refused.code() == Code::Unauthenticated && refused.message().contains("expired at"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_lifetime_out_of_bounds_is_refused_and_makes_no_token() {
    let svc = spawn_service().await;
    let mut admin = svc.unix.clone();
    let before = tokens::list(&mut admin).await.len();
    for ms in [1, 999, 10 * 365 * 24 * 3600 * 1000 + 1, u64::MAX] {
        let refused = tokens::create_reader(&mut admin, &format!("t{ms}"), ms)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{ms}: {refused:?}");
        assert!(
            refused.message().starts_with("expires_in_ms")
                && refused.message().contains("a second to ten years"),
            "{ms}: {refused:?}"
        );
    }
    for ms in [1000, 10 * 365 * 24 * 3600 * 1000] {
        tokens::create_reader(&mut admin, &format!("t{ms}"), ms)
            .await
            .unwrap_or_else(|err| panic!("{ms} ms is within bounds: {err:?}"));
    }
    let after = tokens::list(&mut admin).await.len();
    assert_eq!(after, before + 2, "only the two in bounds were made");
}

#[tokio::test]
async fn bad_token_requests_are_refused() {
    let svc = spawn_service().await;
    let mut admin = svc.unix.clone();
    let cases = [
        ("", "reader", "", "name"),
        ("w", "worker", "", "role"),
        ("x", "root", "", "role"),
        ("s", "supervisor", "", "machine_id"),
        ("o", "operator", "m1", "machine_id"),
    ];
    for (name, role, machine_id, field) in cases {
        let refused = admin
            .admin
            .create_token(pb::CreateTokenRequest {
                name: name.into(),
                role: role.into(),
                machine_id: machine_id.into(),
                profiles: vec![],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{role}: {refused:?}");
        assert!(refused.message().starts_with(field), "{refused:?}");
    }
    let taken = admin
        .admin
        .create_token(pb::CreateTokenRequest {
            name: "admin".into(),
            role: "reader".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    let unknown = admin
        .admin
        .revoke_token(pb::RevokeTokenRequest {
            id: "k_nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let listed = tokens::list(&mut admin).await;
    assert_eq!(listed.len(), 1, "nothing was made: {listed:?}");
}

/// Two gateways on their own machines, each with a session holding one claim.
struct Fleet {
    a: Client,
    b: Client,
    a_session: pb::Session,
    a_grant: pb::Grant,
    b_session: pb::Session,
    b_grant: pb::Grant,
}

async fn fleet(svc: &TestService) -> Fleet {
    let mut a = svc
        .tcp_client(Some(&token(svc, "gw-a", "supervisor", "m1").await))
        .await;
    let mut b = svc
        .tcp_client(Some(&token(svc, "gw-b", "supervisor", "m2").await))
        .await;
    let mut admin = svc.unix.clone();
    calls::create_assigned(&mut admin, "", "a's task", "pa").await;
    calls::create_assigned(&mut admin, "", "b's task", "pb").await;
    let a_session = calls::open_session_with(
        &mut a,
        pb::OpenSessionRequest {
            machine_id: "m1".into(),
            ..calls::session_request("pa", 60_000)
        },
    )
    .await;
    let b_session = calls::open_session_with(
        &mut b,
        pb::OpenSessionRequest {
            machine_id: "m2".into(),
            ..calls::session_request("pb", 60_000)
        },
    )
    .await;
    let a_grant = calls::acquire_now(&mut a, &a_session.id).await;
    let b_grant = calls::acquire_now(&mut b, &b_session.id).await;
    Fleet {
        a,
        b,
        a_session,
        a_grant,
        b_session,
        b_grant,
    }
}

fn denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) -> tonic::Status {
    let status = calls::refused(result, Code::PermissionDenied);
    assert!(!status.message().is_empty(), "{what}");
    status
}

#[tokio::test]
async fn another_gateway_cannot_complete_close_or_take_over_a_session() {
    let svc = spawn_service().await;
    let Fleet {
        a,
        mut b,
        a_session,
        a_grant,
        b_session,
        b_grant,
    } = fleet(&svc).await;
    let a_task = calls::granted_task(&a_grant).to_owned();
    let b_task = calls::granted_task(&b_grant).to_owned();
    // The attacker reads the claim's session id and token where it can (its own reads are
    // refused to a supervisor anyway; an operator could read GetTask).
    let status = denied(
        calls::complete(&mut b, &a_grant.claim_token).await,
        "Complete on another gateway's claim",
    );
    assert!(status.message().contains("another identity"), "{status:?}");
    denied(
        b.leases
            .close_session(pb::CloseSessionRequest {
                session_id: a_session.id.clone(),
            })
            .await,
        "CloseSession of another gateway's session",
    );
    denied(
        b.leases
            .acquire(pb::AcquireRequest {
                session_id: a_session.id.clone(),
                wait_ms: 0,
            })
            .await,
        "Acquire on another gateway's session",
    );
    denied(
        b.leases
            .release(pb::ReleaseRequest {
                claim_token: a_grant.claim_token.clone(),
                reason: "mine now".into(),
            })
            .await,
        "Release of another gateway's claim",
    );
    // Both halves of CompleteAndAcquire are checked: A's claim with B's own session, and B's
    // own claim with A's session.
    for (token, session_id, what) in [
        (
            &a_grant.claim_token,
            &b_session.id,
            "on another gateway's claim",
        ),
        (
            &b_grant.claim_token,
            &a_session.id,
            "on another gateway's session",
        ),
    ] {
        let call = pb::CompleteAndAcquireRequest {
            complete: Some(pb::CompleteRequest {
                claim_token: token.clone(),
                ..Default::default()
            }),
            acquire: Some(pb::AcquireRequest {
                session_id: session_id.clone(),
                wait_ms: 0,
            }),
        };
        denied(
            b.leases.complete_and_acquire(call).await,
            &format!("CompleteAndAcquire {what}"),
        );
    }
    // KeepAlive on someone else's session: refused on its first message; A's own stream
    // still renews.
    let mut stolen = keep_alive(&mut b, &a_session.id).await;
    let status = stolen.message().await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let mut a = a;
    let mut own = keep_alive(&mut a, &a_session.id).await;
    let renewed = own.message().await.unwrap().expect("renewed");
    assert!(matches!(
        renewed.event,
        Some(pb::keep_alive_response::Event::Renewed(_))
    ));
    // Nothing changed: A's claim is live and its task running.
    let mut admin = svc.unix.clone();
    assert_eq!(
        calls::status_of(&mut admin, &a_task).await,
        pb::TaskStatus::Running
    );
    assert_eq!(
        calls::status_of(&mut admin, &b_task).await,
        pb::TaskStatus::Running,
        "B's complete was refused with its half on A's session"
    );
    calls::renew(&mut a, &a_grant.claim_token)
        .await
        .expect("A still holds its claim");
}

#[tokio::test]
async fn a_supervisor_token_opens_sessions_only_for_its_machine_and_profiles() {
    let svc = spawn_service().await;
    let secret = svc
        .unix
        .clone()
        .admin
        .create_token(pb::CreateTokenRequest {
            name: "gw".into(),
            role: "supervisor".into(),
            machine_id: "m1".into(),
            profiles: vec!["coder".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    let mut gw = svc.tcp_client(Some(&secret)).await;
    let other_machine = gw
        .leases
        .open_session(pb::OpenSessionRequest {
            machine_id: "m2".into(),
            ..calls::session_request("coder", 60_000)
        })
        .await;
    let status = denied(other_machine, "another machine id");
    assert!(status.message().contains("m1"), "{status:?}");
    denied(
        gw.leases
            .open_session(calls::session_request("reviewer", 60_000))
            .await,
        "a profile the token does not allow",
    );
    denied(
        gw.notifications
            .deliver(pb::DeliverRequest {
                profiles: vec!["reviewer".into()],
            })
            .await,
        "notifications for another profile",
    );
    let session = calls::open_session(&mut gw, "coder", 60_000).await;
    assert!(session.id.starts_with("s_"));
    assert_eq!(calls::stats(&mut svc.unix.clone()).await.live_sessions, 1);
}

#[tokio::test]
async fn a_worker_acts_only_on_its_own_claim_and_task() {
    let svc = spawn_service().await;
    let Fleet {
        a_grant, b_grant, ..
    } = fleet(&svc).await;
    let a_task = calls::granted_task(&a_grant).to_owned();
    let b_task = calls::granted_task(&b_grant).to_owned();
    let mut worker = svc.tcp_client(Some(&a_grant.claim_token)).await;
    // Comment on and archive another task: refused.
    let comment = |task: &str| pb::AddCommentRequest {
        task_id: task.to_owned(),
        author: "w".into(),
        body: "hello".into(),
        ..Default::default()
    };
    let status = denied(
        worker.tasks.add_comment(comment(&b_task)).await,
        "comment on another task",
    );
    assert!(status.message().contains(&a_task), "{status:?}");
    let status = denied(
        worker
            .tasks
            .archive_task(pb::ArchiveTaskRequest {
                id: b_task.clone(),
                ..Default::default()
            })
            .await,
        "archive another task",
    );
    assert!(status.message().contains("operator"), "{status:?}");
    // Holder verbs with another claim's token: refused.
    denied(
        calls::complete(&mut worker, &b_grant.claim_token).await,
        "complete another claim",
    );
    // A task that is not its child: refused; a child: made.
    denied(
        worker
            .tasks
            .create_task(calls::new_task("", "not a child"))
            .await,
        "a task that is not its child",
    );
    let child = calls::create_child(&mut worker, "", "a child", &[&a_task]).await;
    assert_eq!(
        child.status(),
        pb::TaskStatus::Todo,
        "it waits for its parent"
    );
    // Its own comment, a read, and completing its own claim all work.
    worker
        .tasks
        .add_comment(comment(&a_task))
        .await
        .expect("a comment on its own task");
    calls::detail(&mut worker, &b_task).await;
    let mut admin = svc.unix.clone();
    assert_eq!(
        calls::status_of(&mut admin, &b_task).await,
        pb::TaskStatus::Running,
        "the other task is untouched"
    );
    calls::complete(&mut worker, &a_grant.claim_token)
        .await
        .expect("its own claim completes");
    // Once its claim has ended, the token no longer reads or comments.
    denied(
        worker
            .tasks
            .get_task(pb::GetTaskRequest {
                id: a_task.clone(),
                ..Default::default()
            })
            .await,
        "a read after the claim ended",
    );
}

#[tokio::test]
async fn no_credential_or_a_lesser_role_cannot_freeze_reset_or_archive() {
    let svc = spawn_service().await;
    let mut admin = svc.unix.clone();
    let task = calls::create(&mut admin, "keep me").await;
    let before = calls::last_event_id(&mut admin).await;
    let mut anonymous = svc.tcp_client(None).await;
    let mut operator = svc
        .tcp_client(Some(&token(&svc, "op", "operator", "").await))
        .await;
    let mut reader = svc
        .tcp_client(Some(&token(&svc, "rd", "reader", "").await))
        .await;
    for (client, code) in [
        (&mut anonymous, Code::Unauthenticated),
        (&mut reader, Code::PermissionDenied),
    ] {
        calls::refused(
            client
                .boards
                .reset_board(pb::ResetBoardRequest {
                    slug: "default".into(),
                    ..Default::default()
                })
                .await,
            code,
        );
        calls::refused(
            client
                .tasks
                .archive_task(pb::ArchiveTaskRequest {
                    id: task.id.clone(),
                    ..Default::default()
                })
                .await,
            code,
        );
    }
    for (client, code) in [
        (&mut anonymous, Code::Unauthenticated),
        (&mut reader, Code::PermissionDenied),
        (&mut operator, Code::PermissionDenied),
    ] {
        calls::refused(
            client
                .admin
                .set_storage_limit(pb::SetStorageLimitRequest { max_bytes: 1 })
                .await,
            code,
        );
        calls::refused(
            client
                .admin
                .backup(pb::BackupRequest {
                    path: "stolen.db".into(),
                })
                .await,
            code,
        );
    }
    // Nothing happened: no event, the task is where it was, writes still work.
    assert_eq!(calls::last_event_id(&mut admin).await, before);
    assert_eq!(
        calls::status_of(&mut admin, &task.id).await,
        pb::TaskStatus::Ready
    );
    assert!(!svc.data_dir.join("backups").join("stolen.db").exists());
    calls::create(&mut operator, "writes still work").await;
}

/// Opens a KeepAlive stream whose first message names `session_id`; the answer stream.
async fn keep_alive(
    client: &mut kanband_gateway::Client,
    session_id: &str,
) -> tonic::Streaming<pb::KeepAliveResponse> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::KeepAliveRequest {
        session_id: session_id.to_owned(),
    })
    .await
    .unwrap();
    client
        .leases
        .keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner()
}
