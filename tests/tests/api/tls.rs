//! TLS on the TCP listener, with certificates made in the test: server TLS end to end, mutual
//! TLS, clients with the wrong CA or without (or with a foreign) client certificate refused,
//! a token still required over TLS, and a stalled handshake cut by the handshake timeout.

use std::time::Duration;

use kanband::{Settings, net::ServerTls};
use kanband_gateway::{Client, ConnectError, Target, TlsFiles};
use kanband_proto::pb;
use kanband_tests::{TestService, calls, pki::Pki, spawn_service_tls};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

/// kanband serving TLS with `pki`'s server certificate; mutual TLS with `pki` as the client CA
/// when `mutual`. The harness's TCP admin client presents a `pki` client certificate then.
async fn serve(dir: tempfile::TempDir, pki: &Pki, mutual: bool, settings: Settings) -> TestService {
    let server = pki.server();
    let client_ca = mutual.then(|| pki.ca());
    let tls = ServerTls::load(&server.cert, &server.key, client_ca.as_deref())
        .expect("the test certificates load");
    let mut client = pki.trust();
    if mutual {
        let cert = pki.client("harness");
        client.cert = Some(cert.cert);
        client.key = Some(cert.key);
    }
    spawn_service_tls(dir, settings, Some((tls, client))).await
}

async fn stats(client: &mut Client) -> Result<pb::StatsResponse, tonic::Status> {
    client
        .admin
        .stats(pb::StatsRequest::default())
        .await
        .map(|r| r.into_inner())
}

async fn boards(svc: &TestService) -> Vec<String> {
    svc.unix
        .clone()
        .boards
        .list_boards(pb::ListBoardsRequest::default())
        .await
        .expect("ListBoards over the socket")
        .into_inner()
        .boards
        .into_iter()
        .map(|b| b.slug)
        .collect()
}

#[tokio::test]
async fn server_tls_serves_grpc_and_still_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "test");
    let svc = serve(dir, &pki, false, Settings::default()).await;
    assert!(
        svc.tcp_addr.starts_with("https://localhost:"),
        "{}",
        svc.tcp_addr
    );

    let mut admin = svc.tcp.clone();
    calls::create_board(&mut admin, "over-tls").await;
    stats(&mut admin).await.expect("an admin call over TLS");
    assert!(boards(&svc).await.contains(&"over-tls".to_owned()));

    // TLS is no credential: without a token the call is refused, and changes nothing.
    let mut anonymous = svc.tcp_client(None).await;
    let refused = anonymous
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: "anonymous".into(),
            ..Default::default()
        })
        .await
        .expect_err("no token over TLS");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(!boards(&svc).await.contains(&"anonymous".to_owned()));

    // The port speaks only TLS: a plain-text client gets no answer.
    let plain = svc.tcp_addr.replace("https://", "http://");
    if let Ok(mut plain) = Client::connect(Target::new(plain, Some(svc.admin_token.clone()))).await
    {
        let err = stats(&mut plain)
            .await
            .expect_err("plain HTTP/2 on a TLS port");
        assert_ne!(err.code(), Code::Ok);
    }
    svc.stop().await;
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused_with_a_tls_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "test");
    let other = Pki::new(&dir.path().join("pki"), "other");
    let svc = serve(dir, &pki, false, Settings::default()).await;

    for tls in [other.trust(), TlsFiles::default()] {
        let target = Target::new(&svc.tcp_addr, Some(svc.admin_token.clone())).with_tls(tls);
        match Client::connect(target).await {
            Err(err @ ConnectError::Tls { .. }) => {
                let text = err.to_string();
                assert!(text.contains("--ca"), "{text}");
                assert!(text.contains("UnknownIssuer"), "{text}");
            }
            other => panic!("expected a TLS refusal, got {other:?}"),
        }
    }
    svc.stop().await;
}

/// The call a client without an acceptable certificate attempts: it must not succeed, and the
/// board it would have made must not exist.
async fn refused_without_an_accepted_certificate(svc: &TestService, tls: TlsFiles, slug: &str) {
    let target = Target::new(&svc.tcp_addr, Some(svc.admin_token.clone())).with_tls(tls);
    // With TLS 1.3 the client finishes its side of the handshake before the server has
    // checked the client's certificate: the refusal may come at connect or at the first call.
    if let Ok(mut client) = Client::connect(target).await {
        let err = client
            .boards
            .create_board(pb::CreateBoardRequest {
                slug: slug.into(),
                ..Default::default()
            })
            .await
            .expect_err("an mTLS server serves no client without an accepted certificate");
        assert_ne!(err.code(), Code::Ok);
    }
    assert!(!boards(svc).await.contains(&slug.to_owned()), "{slug}");
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "test");
    let other = Pki::new(&dir.path().join("pki"), "other");
    let svc = serve(dir, &pki, true, Settings::default()).await;

    // The harness's client presents a certificate issued by the client CA.
    let mut admin = svc.tcp.clone();
    calls::create_board(&mut admin, "with-cert").await;
    assert!(boards(&svc).await.contains(&"with-cert".to_owned()));

    // No certificate at all.
    refused_without_an_accepted_certificate(&svc, pki.trust(), "no-cert").await;
    // A certificate from another CA (the server's CA still trusted by the client).
    let foreign = other.client("intruder");
    let tls = TlsFiles {
        cert: Some(foreign.cert),
        key: Some(foreign.key),
        ..pki.trust()
    };
    refused_without_an_accepted_certificate(&svc, tls, "foreign-cert").await;

    // A certificate is no credential either: the token is still required.
    let mut anonymous = svc.tcp_client(None).await;
    let refused = stats(&mut anonymous).await.expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    svc.stop().await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_by_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "test");
    let handshake = Duration::from_millis(300);
    let mut settings = Settings::default();
    settings.connections.handshake = handshake;
    let svc = serve(dir, &pki, false, settings).await;
    let port = svc.tcp_addr.rsplit(':').next().unwrap().to_owned();

    // The start of a ClientHello record, then nothing: the socket has been heard from, so only
    // a deadline on the handshake itself can close it.
    let mut stalled = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    // Closed (EOF or reset) well before the idle timeout; a generous bound for a loaded machine.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stalled TLS handshake was not closed");
    assert!(started.elapsed() >= handshake - Duration::from_millis(50));

    // Meanwhile, and after, other clients are served.
    let mut admin = svc.tcp.clone();
    stats(&mut admin)
        .await
        .expect("served after the stalled handshake");
    svc.stop().await;
}
