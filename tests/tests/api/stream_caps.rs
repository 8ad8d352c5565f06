//! Stream places under hostile clients, over real sockets: a client that keeps its connection
//! but never reads gives its places back once it is cut off, one connection cannot take every
//! place, and a crowd of watchers never refuses a supervisor's `Notifications.Deliver`.

use std::time::{Duration, Instant};

use kanband::streams::StreamCaps;
use kanband_proto::pb::{self, events_client::EventsClient};
use kanband_tests::{TestService, calls::create, spawn_service_with};
use tonic::Code;

/// Small caps, so the test fills them quickly.
const CAPS: StreamCaps = StreamCaps {
    watch: 8,
    watch_per_connection: 4,
    deliver: 4,
    deliver_per_connection: 2,
};

async fn service() -> TestService {
    let settings = kanband::Settings {
        watcher_stall: Duration::from_millis(300),
        streams: CAPS,
        ..kanband::Settings::default()
    };
    let service = spawn_service_with(tempfile::tempdir().unwrap(), settings).await;
    // Enough history (long titles) that a watcher replaying it from the start fills its
    // buffer and the HTTP/2 windows when it does not read.
    let title = "x".repeat(400);
    let creates: Vec<_> = (0..20)
        .map(|_| {
            let mut client = service.unix.clone();
            let title = title.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    create(&mut client, &title).await;
                }
            })
        })
        .collect();
    for handle in creates {
        handle.await.unwrap();
    }
    service
}

/// A new connection with the smallest HTTP/2 windows: what it does not read stalls the server
/// at once.
async fn stingy_connection(service: &TestService) -> EventsClient<kanband_gateway::AuthChannel> {
    let channel = tonic::transport::Endpoint::from_shared(service.tcp_addr.clone())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    EventsClient::with_interceptor(channel, service.bearer())
}

/// A Watch from the start of the log: it replays the whole history, so a client that does not
/// read it stalls (and is cut off) within `watcher_stall`.
async fn watch(
    client: &mut EventsClient<kanband_gateway::AuthChannel>,
) -> Result<tonic::Streaming<pb::Event>, tonic::Status> {
    watch_after(client, 0).await
}

/// A Watch after every event so far: with nothing to replay it never stalls, so it holds its
/// place for as long as the test keeps it, however slowly the machine opens the others.
async fn quiet_watch(
    client: &mut EventsClient<kanband_gateway::AuthChannel>,
) -> Result<tonic::Streaming<pb::Event>, tonic::Status> {
    watch_after(client, 1_000_000).await
}

async fn watch_after(
    client: &mut EventsClient<kanband_gateway::AuthChannel>,
    after_id: u64,
) -> Result<tonic::Streaming<pb::Event>, tonic::Status> {
    client
        .watch(pb::WatchRequest {
            after_id,
            ..pb::WatchRequest::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn deliver(
    client: &mut kanband_gateway::Client,
) -> Result<tonic::Streaming<pb::Notification>, tonic::Status> {
    client
        .notifications
        .deliver(pb::DeliverRequest {
            profiles: vec!["gw".into()],
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_client_that_never_reads_gets_its_share_and_gives_it_back() {
    let service = service().await;
    let mut hog = stingy_connection(&service).await;
    // The hog opens its connection's share and never polls any of it.
    let mut held = Vec::new();
    for _ in 0..CAPS.watch_per_connection {
        held.push(
            watch(&mut hog)
                .await
                .expect("within the connection's share"),
        );
    }
    let refused = watch(&mut hog).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("this connection already has 4"),
        "{}",
        refused.message()
    );

    // Everyone else still watches and delivers.
    let mut other = service.unix.clone();
    let mut watching = other
        .events
        .watch(pb::WatchRequest::default())
        .await
        .expect("another client still watches")
        .into_inner();
    assert_eq!(watching.message().await.unwrap().unwrap().id, 1);
    let _delivering = deliver(&mut other).await.expect("and delivers");

    // The hog's streams are cut off after the stall limit although its connection stays open
    // and it never reads: their places come back (the hog may open as many again).
    let cut_by = Instant::now() + Duration::from_secs(10);
    let mut again = Vec::new();
    while again.len() < CAPS.watch_per_connection {
        match watch(&mut hog).await {
            Ok(stream) => again.push(stream),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    Instant::now() < cut_by,
                    "the stalled streams still hold their places after 10 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(held);
}

#[tokio::test]
async fn a_full_watch_pool_refuses_no_notifier() {
    let service = service().await;
    let mut held = Vec::new();
    for _ in 0..CAPS.watch / CAPS.watch_per_connection {
        let mut conn = stingy_connection(&service).await;
        for _ in 0..CAPS.watch_per_connection {
            held.push(quiet_watch(&mut conn).await.expect("within the pool"));
        }
    }
    let mut other = service.unix.clone();
    let refused = other
        .events
        .watch(pb::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("8 Watch streams are already open"),
        "{}",
        refused.message()
    );
    // Supervisors' notifiers draw from their own pool, per connection too.
    let _one = deliver(&mut other).await.expect("a notifier is served");
    let _two = deliver(&mut other).await.expect("a second one too");
    let refused = deliver(&mut other).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let mut tcp = service.tcp.clone();
    let _three = deliver(&mut tcp)
        .await
        .expect("another connection has its own share");
}
