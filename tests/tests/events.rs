//! Events.Watch resumes without gap or duplicate; notifications are delivered at least once,
//! survive a notifier restart, and stop once acknowledged.

use std::time::Duration;

use kanband_proto::pb;
use kanband_tests::spawn_service;
use tokio_stream::StreamExt as _;

async fn create(client: &mut kanband_gateway::Client, title: &str) -> pb::Task {
    client
        .tasks
        .create_task(pb::CreateTaskRequest {
            title: title.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap()
}

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
        client
            .tasks
            .archive_task(pb::ArchiveTaskRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
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
    let subscription = client
        .notifications
        .subscribe(pb::SubscribeRequest {
            task_id: task.id.clone(),
            platform: "telegram".into(),
            chat_id: "42".into(),
            owner_profile: "gw".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .tasks
        .block_task(pb::BlockTaskRequest {
            id: task.id.clone(),
            reason: "why".into(),
            ..Default::default()
        })
        .await
        .unwrap();

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
    client
        .tasks
        .unblock_task(pb::UnblockTaskRequest {
            id: task.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
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
    let subscription = client
        .notifications
        .subscribe(pb::SubscribeRequest {
            task_id: task.id.clone(),
            owner_profile: "gw".into(),
            mode: pb::DeliveryMode::Final as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .tasks
        .archive_task(pb::ArchiveTaskRequest {
            id: task.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
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
