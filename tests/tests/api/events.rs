//! Events.Watch resumes without gap or duplicate; notifications are delivered at least once,
//! survive a notifier restart, and stop once acknowledged. A listing or watch of a board or
//! task kanband never had is NOT_FOUND.

use std::time::Duration;

use kanband_proto::pb;
use kanband_tests::{
    calls::{MISSING_TASK, archive, block, create, refused, subscribe, unblock},
    spawn_service,
};
use tokio_stream::StreamExt as _;
use tonic::Code;

async fn next<T>(stream: &mut tonic::Streaming<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an item within 10 s")
        .expect("the stream is open")
        .expect("an item, not an error")
}

#[tokio::test]
async fn watch_resumes_after_a_disconnect_without_gap_or_duplicate() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    for i in 0..5 {
        create(&mut client, &format!("before {i}")).await;
    }
    let mut stream = client
        .events
        .watch(pb::WatchRequest {
            after_id: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut stream).await.id);
    }
    drop(stream);

    // Written while nobody watches, and while the new watcher catches up.
    for i in 0..5 {
        create(&mut client, &format!("between {i}")).await;
    }
    let resume = *seen.last().unwrap();
    let mut stream = client
        .events
        .watch(pb::WatchRequest {
            after_id: resume,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for i in 0..5 {
        create(&mut client, &format!("after {i}")).await;
    }
    while seen.len() < 15 {
        seen.push(next(&mut stream).await.id);
    }
    let expected: Vec<u64> = (1..=15).collect();
    assert_eq!(seen, expected, "every event once, in order");
}

#[tokio::test]
async fn watch_filters_by_task_and_kind() {
    let service = spawn_service().await;
    let mut client = service.unix.clone();
    let a = create(&mut client, "a").await;
    let b = create(&mut client, "b").await;
    let mut stream = client
        .events
        .watch(pb::WatchRequest {
            task_id: b.id.clone(),
            kinds: vec!["archived".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for id in [&a.id, &b.id] {
        archive(&mut client, id).await;
    }
    let event = next(&mut stream).await;
    assert_eq!(
        (event.task_id.as_str(), event.kind.as_str()),
        (b.id.as_str(), "archived")
    );
}

#[tokio::test]
async fn notifications_are_redelivered_until_acknowledged() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "watched").await;
    let subscription = subscribe(
        &mut client,
        pb::SubscribeRequest {
            task_id: task.id.clone(),
            platform: "telegram".into(),
            chat_id: "42".into(),
            owner_profile: "gw".into(),
            ..Default::default()
        },
    )
    .await;
    block(&mut client, &task.id, pb::BlockKind::Unspecified).await;

    let deliver = || pb::DeliverRequest {
        profiles: vec!["gw".into()],
    };
    let mut first = client
        .notifications
        .deliver(deliver())
        .await
        .unwrap()
        .into_inner();
    let note = next(&mut first).await;
    assert_eq!(note.subscription.as_ref().unwrap().id, subscription.id);
    let event = note.event.unwrap();
    assert_eq!(event.kind, "blocked");
    // The notifier goes away before acknowledging: the next one gets it again.
    drop(first);
    let mut second = client
        .notifications
        .deliver(deliver())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut second).await.event.unwrap().id, event.id);
    let ack = client
        .notifications
        .ack(pb::AckRequest {
            subscription_id: subscription.id.clone(),
            event_id: event.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.cursor, event.id);
    drop(second);

    // Acknowledged: not again. The next terminal event is the next delivery.
    unblock(&mut client, &task.id).await;
    let mut third = client
        .notifications
        .deliver(deliver())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut third).await.event.unwrap().kind, "unblocked");
}

#[tokio::test]
async fn notifications_survive_a_service_restart() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "watched").await;
    let subscription = subscribe(
        &mut client,
        pb::SubscribeRequest {
            task_id: task.id.clone(),
            owner_profile: "gw".into(),
            mode: pb::DeliveryMode::Final as i32,
            ..Default::default()
        },
    )
    .await;
    archive(&mut client, &task.id).await;
    let dir = service.stop().await;

    let service = kanband_tests::spawn_service_in(dir).await;
    let mut client = service.unix.clone();
    let mut stream = client
        .notifications
        .deliver(pb::DeliverRequest {
            profiles: vec!["gw".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let note = next(&mut stream).await;
    let event = note.event.unwrap();
    assert_eq!(event.kind, "archived");
    let ack = client
        .notifications
        .ack(pb::AckRequest {
            subscription_id: subscription.id,
            event_id: event.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        ack.removed,
        "a final subscription ends once its end is acknowledged"
    );
    let left = client
        .notifications
        .list_subscriptions(pb::ListSubscriptionsRequest {
            owner_profile: "gw".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(left.subscriptions.is_empty());
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_cut_off_and_can_resume() {
    let settings = kanband::Settings {
        watcher_stall: Duration::from_millis(300),
        ..kanband::Settings::default()
    };
    let service = kanband_tests::spawn_service_with(tempfile::tempdir().unwrap(), settings).await;
    let mut client = service.unix.clone();
    // Enough events (with long titles) to fill the stream's buffer and HTTP/2 windows.
    let title = "x".repeat(400);
    let creates: Vec<_> = (0..40)
        .map(|_| {
            let mut client = client.clone();
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
    // A watcher with small HTTP/2 windows, so the server's buffer fills while it does not read.
    let channel = tonic::transport::Endpoint::from_shared(service.tcp_addr.clone())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stream = pb::events_client::EventsClient::with_interceptor(channel, service.bearer())
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    // Not reading: the server's buffer fills and, after the stall limit, it gives up.
    let stall_end = tokio::time::Instant::now() + Duration::from_secs(2);
    tokio::time::sleep_until(stall_end).await;

    let mut last = 0;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(event))) => {
                assert_eq!(event.id, last + 1, "no gap before the cut");
                last = event.id;
            }
            Ok(Some(Err(status))) => break status,
            Ok(None) => panic!("the stream ended without a status after event {last}"),
            Err(_) => panic!("the stream was not cut off (stuck after event {last})"),
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("resume after event id {last}")),
        "{}",
        status.message()
    );
    assert!(
        last < 4_000,
        "the cut came before the end of the log ({last})"
    );

    // Resuming from the last id delivers the rest, once and in order.
    let mut resumed = client
        .events
        .watch(pb::WatchRequest {
            after_id: last,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let next = next(&mut resumed).await;
    assert_eq!(next.id, last + 1);
}

#[tokio::test]
async fn events_of_an_unknown_board_or_task_are_not_found() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let known = create(&mut client, "known").await;
    let list = |board: &str, task_id: &str| pb::ListEventsRequest {
        board: board.to_owned(),
        task_id: task_id.to_owned(),
        ..Default::default()
    };
    for (what, request, names) in [
        ("an unknown board", list("nowhere", ""), "nowhere"),
        ("an unknown task", list("", MISSING_TASK), MISSING_TASK),
    ] {
        let status = refused(client.tasks.list_events(request).await, Code::NotFound);
        assert!(
            status.message().contains(names),
            "ListEvents of {what}: {status:?}"
        );
    }
    let page = client
        .tasks
        .list_events(list("default", &known.id))
        .await
        .expect("ListEvents of a known board and task")
        .into_inner();
    assert_eq!(page.events.len(), 1, "its creation");

    for (what, request, names) in [
        (
            "an unknown board",
            pb::WatchRequest {
                board: "nowhere".into(),
                ..Default::default()
            },
            "nowhere",
        ),
        (
            "an unknown task",
            pb::WatchRequest {
                task_id: MISSING_TASK.into(),
                ..Default::default()
            },
            MISSING_TASK,
        ),
    ] {
        let answer = tokio::time::timeout(Duration::from_secs(10), client.events.watch(request))
            .await
            .unwrap_or_else(|_| panic!("Watch of {what} answers at once"));
        let status = refused(answer, Code::NotFound);
        assert!(
            status.message().contains(names),
            "Watch of {what}: {status:?}"
        );
    }
}
