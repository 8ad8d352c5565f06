//! Attachments over gRPC: upload, list, download and delete; one blob per content; the size
//! cap, fenced worker uploads and bad input changing nothing; blobs no row names removed (at
//! delete, at a board's reset, by the start-up sweep); a backup that restores with its files.

use std::path::{Path, PathBuf};

use kanband::Settings;
use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::{
    calls::{
        MISSING_TASK, assert_lost, attachments, complete, create, download, kinds, last_event_id,
        refused, task_events, two_claims, upload, upload_chunked, upload_messages,
    },
    spawn_service, spawn_service_in, spawn_service_with,
};
use tonic::{Code, Status};

use crate::support::refusal::assert_refused;

/// The files in the data directory's attachment directory, sorted.
fn blobs(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join(kanband::store::ATTACHMENTS_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `len` bytes that are not one repeated value.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

async fn delete(client: &mut Client, id: &str) -> Result<pb::Attachment, Status> {
    client
        .attachments
        .delete(pb::DeleteAttachmentRequest {
            id: id.to_owned(),
            actor: "operator".into(),
        })
        .await
        .map(|r| r.into_inner().attachment.expect("the deleted attachment"))
}

#[tokio::test]
async fn a_multi_chunk_file_round_trips_and_is_listed_and_logged() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "with files").await;
    // 300 KiB in 7 KiB pieces up; down in the server's 64 KiB chunks.
    let bytes = content(300 * 1024 + 5, 7);
    let stored = upload_chunked(&mut client, &task.id, "notes.txt", &bytes, 7 * 1024, "")
        .await
        .expect("Upload");
    assert!(stored.id.starts_with("a_"), "{stored:?}");
    assert_eq!(
        (stored.task_id.as_str(), stored.name.as_str()),
        (task.id.as_str(), "notes.txt")
    );
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.media_type, "text/plain");
    assert_eq!(stored.uploaded_by, "tester");
    assert_eq!(blobs(&service.data_dir), vec![stored.sha256.clone()]);

    let (first, got, messages) = download(&mut client, &stored.id).await.expect("Download");
    assert_eq!(
        first, stored,
        "the first message carries name, size and sha256"
    );
    assert!(got == bytes, "the bytes come back as uploaded");
    assert_eq!(messages, 5, "300 KiB in 64 KiB chunks");
    assert_eq!(
        attachments(&mut client, &task.id).await,
        vec![stored.clone()]
    );

    let small = upload(&mut service.unix.clone(), &task.id, "abc", b"abc")
        .await
        .expect("Upload over the socket");
    assert_eq!(
        small.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let empty = upload(&mut client, &task.id, "empty", b"")
        .await
        .expect("an empty file");
    let (_, got, messages) = download(&mut client, &empty.id).await.unwrap();
    assert_eq!(
        (got.len(), messages),
        (0, 1),
        "one message names an empty file"
    );
    let listed: Vec<String> = attachments(&mut client, &task.id)
        .await
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, vec![stored.id, small.id, empty.id], "oldest first");

    let events = task_events(&mut client, &task.id).await;
    assert_eq!(
        kinds(&events),
        ["created", "attached", "attached", "attached"]
    );
    let attached = &events[1];
    assert_eq!(attached.actor, "tester");
}

#[tokio::test]
async fn the_same_content_twice_is_one_blob_removed_with_its_last_attachment() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let a = create(&mut client, "a").await;
    let b = create(&mut client, "b").await;
    let bytes = content(10_000, 1);
    let first = upload(&mut client, &a.id, "one.bin", &bytes).await.unwrap();
    let second = upload(&mut client, &b.id, "two.bin", &bytes).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(
        blobs(&service.data_dir),
        vec![first.sha256.clone()],
        "stored once"
    );

    let deleted = delete(&mut client, &first.id).await.expect("Delete");
    assert_eq!(deleted, first);
    assert_eq!(
        blobs(&service.data_dir),
        vec![first.sha256.clone()],
        "still named"
    );
    assert!(attachments(&mut client, &a.id).await.is_empty());
    let (_, got, _) = download(&mut client, &second.id).await.unwrap();
    assert!(got == bytes);
    refused(download(&mut client, &first.id).await, Code::NotFound);

    delete(&mut client, &second.id).await.expect("Delete");
    assert!(
        blobs(&service.data_dir).is_empty(),
        "the last one takes the blob"
    );
    let events = task_events(&mut client, &b.id).await;
    assert_eq!(
        kinds(&events),
        ["created", "attached", "attachment_deleted"]
    );
    let status = refused(delete(&mut client, &second.id).await, Code::NotFound);
    assert!(status.message().contains(&second.id), "{status:?}");
}

#[tokio::test]
async fn an_upload_over_the_cap_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        attachment_max_bytes: 100_000,
        ..Settings::default()
    };
    let service = spawn_service_with(dir, settings).await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "t").await;
    upload(&mut client, &task.id, "fits", &content(100_000, 2))
        .await
        .expect("exactly the cap fits");
    let before = last_event_id(&mut client).await;
    assert_refused(
        "an upload one byte over the cap",
        upload_chunked(&mut client, &task.id, "big", &content(100_001, 3), 4096, "").await,
        Code::ResourceExhausted,
        "100000 byte cap",
    );
    assert_eq!(attachments(&mut client, &task.id).await.len(), 1);
    assert_eq!(
        blobs(&service.data_dir).len(),
        1,
        "no blob, no temporary file"
    );
    assert_eq!(last_event_id(&mut client).await, before, "no event");
}

#[tokio::test]
async fn a_workers_upload_is_fenced_on_its_own_live_claim() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let [(first, held), (_, other)] = two_claims(&mut client).await;

    let mine = upload_chunked(
        &mut client,
        &first.id,
        "out.log",
        b"log",
        2,
        &held.claim_token,
    )
    .await
    .expect("the holder attaches to its own task");
    let status = assert_lost(
        upload_chunked(&mut client, &first.id, "x", b"x", 1, &other.claim_token).await,
        "unknown",
    );
    assert!(status.message().contains(&first.id), "{status:?}");

    complete(&mut client, &held.claim_token)
        .await
        .expect("Complete");
    let before = last_event_id(&mut client).await;
    assert_lost(
        upload_chunked(
            &mut client,
            &first.id,
            "late",
            b"late",
            2,
            &held.claim_token,
        )
        .await,
        "unknown",
    );
    assert_eq!(
        attachments(&mut client, &first.id).await,
        vec![mine.clone()]
    );
    assert_eq!(
        blobs(&service.data_dir),
        vec![mine.sha256],
        "nothing stored"
    );
    assert_eq!(last_event_id(&mut client).await, before);
    upload(&mut client, &first.id, "by operator", b"op")
        .await
        .expect("an operator (no token) attaches to a done task");
}

/// An upload of one header and the given chunks.
fn messages(header: pb::UploadHeader, chunks: &[&[u8]]) -> Vec<pb::UploadRequest> {
    let mut all = vec![pb::UploadRequest {
        part: Some(pb::upload_request::Part::Header(header)),
    }];
    all.extend(chunks.iter().map(|c| pb::UploadRequest {
        part: Some(pb::upload_request::Part::Chunk(c.to_vec())),
    }));
    all
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_field_and_change_nothing() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "t").await;
    let header = |name: &str| pb::UploadHeader {
        task_id: task.id.clone(),
        name: name.to_owned(),
        ..Default::default()
    };
    let before = last_event_id(&mut client).await;
    let cases: Vec<(&str, Vec<pb::UploadRequest>, Code, &str)> = vec![
        (
            "an unknown task",
            messages(
                pb::UploadHeader {
                    task_id: MISSING_TASK.into(),
                    ..header("x")
                },
                &[b"x"],
            ),
            Code::NotFound,
            MISSING_TASK,
        ),
        (
            "a malformed task id",
            messages(
                pb::UploadHeader {
                    task_id: "nope".into(),
                    ..header("x")
                },
                &[b"x"],
            ),
            Code::InvalidArgument,
            "header.task_id",
        ),
        (
            "an empty name",
            messages(header(""), &[b"x"]),
            Code::InvalidArgument,
            "header.name",
        ),
        (
            "a blank name",
            messages(header("  "), &[b"x"]),
            Code::InvalidArgument,
            "header.name",
        ),
        (
            "a name with a newline",
            messages(header("a\nb"), &[b"x"]),
            Code::InvalidArgument,
            "header.name",
        ),
        (
            "a name over 255 bytes",
            messages(header(&"n".repeat(256)), &[b"x"]),
            Code::InvalidArgument,
            "header.name",
        ),
        (
            "a bad media type",
            messages(
                pb::UploadHeader {
                    media_type: "text".into(),
                    ..header("x")
                },
                &[b"x"],
            ),
            Code::InvalidArgument,
            "header.media_type",
        ),
        (
            "a malformed claim token",
            messages(
                pb::UploadHeader {
                    claim_token: "tok".into(),
                    ..header("x")
                },
                &[b"x"],
            ),
            Code::InvalidArgument,
            "header.claim_token",
        ),
        (
            "a made-up claim token",
            messages(
                pb::UploadHeader {
                    claim_token: kanband_tests::calls::MADE_UP_TOKEN.into(),
                    ..header("x")
                },
                &[b"x"],
            ),
            Code::Aborted,
            "",
        ),
        (
            "a chunk before the header",
            vec![pb::UploadRequest {
                part: Some(pb::upload_request::Part::Chunk(b"x".to_vec())),
            }],
            Code::InvalidArgument,
            "header",
        ),
        ("no message at all", vec![], Code::InvalidArgument, "header"),
        (
            "a second header",
            {
                let mut m = messages(header("x"), &[b"x"]);
                m.push(pb::UploadRequest {
                    part: Some(pb::upload_request::Part::Header(header("y"))),
                });
                m
            },
            Code::InvalidArgument,
            "header",
        ),
    ];
    for (what, upload, code, names) in cases {
        assert_refused(
            what,
            upload_messages(&mut client, upload).await,
            code,
            names,
        );
    }
    assert!(attachments(&mut client, &task.id).await.is_empty());
    assert!(
        blobs(&service.data_dir).is_empty(),
        "no blob, no temporary file"
    );
    assert_eq!(last_event_id(&mut client).await, before, "no event");

    for (what, id, code) in [
        (
            "an unknown attachment",
            "a_0000000000000000",
            Code::NotFound,
        ),
        ("a malformed attachment id", "x", Code::InvalidArgument),
    ] {
        assert_refused(
            what,
            download(&mut client, id).await,
            code,
            if code == Code::NotFound { id } else { "id" },
        );
        assert_refused(
            what,
            delete(&mut client, id).await,
            code,
            if code == Code::NotFound { id } else { "id" },
        );
    }
    assert_refused(
        "listing an unknown task",
        client
            .attachments
            .list(pb::ListAttachmentsRequest {
                task_id: MISSING_TASK.into(),
            })
            .await,
        Code::NotFound,
        MISSING_TASK,
    );
}

#[tokio::test]
async fn a_path_like_name_is_only_a_name() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "t").await;
    let outside = service.data_dir.join("x");
    for name in ["../x", "/etc/passwd", "..", "a/../../x"] {
        let stored = upload(&mut client, &task.id, name, b"payload")
            .await
            .expect(name);
        assert_eq!(stored.name, name);
        let (got, _, _) = download(&mut client, &stored.id).await.unwrap();
        assert_eq!(got.name, name);
    }
    assert!(
        !outside.exists(),
        "nothing written beside the data directory's files"
    );
    assert_eq!(blobs(&service.data_dir).len(), 1, "one content, one blob");
}

#[tokio::test]
async fn a_boards_reset_removes_its_attachments_blobs() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    kanband_tests::calls::create_board(&mut client, "scratch").await;
    let doomed = kanband_tests::calls::create_on(&mut client, "scratch", "doomed").await;
    let kept = create(&mut client, "kept").await;
    let gone = upload(&mut client, &doomed.id, "a", b"only here")
        .await
        .unwrap();
    let shared = upload(&mut client, &doomed.id, "b", b"on both boards")
        .await
        .unwrap();
    upload(&mut client, &kept.id, "b", b"on both boards")
        .await
        .unwrap();
    client
        .boards
        .reset_board(pb::ResetBoardRequest {
            slug: "scratch".into(),
            actor: "operator".into(),
        })
        .await
        .expect("ResetBoard");
    assert_eq!(
        blobs(&service.data_dir),
        vec![shared.sha256],
        "{gone:?} went with its task"
    );
}

#[tokio::test]
async fn the_start_up_sweep_removes_blobs_no_row_names_left_by_a_crash() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "t").await;
    let kept = upload(&mut client, &task.id, "kept", b"kept")
        .await
        .unwrap();
    let data_dir = service.data_dir.clone();
    let dir = service.stop().await;
    // What a crash leaves: a blob renamed into place whose row never committed, and an
    // upload's temporary file.
    let blob_dir = data_dir.join(kanband::store::ATTACHMENTS_DIR);
    let orphan = "0".repeat(64);
    std::fs::write(blob_dir.join(&orphan), b"never named").unwrap();
    std::fs::write(blob_dir.join(".partial-0123456789abcdef"), b"half").unwrap();

    let service = spawn_service_in(dir).await;
    assert_eq!(blobs(&service.data_dir), vec![kept.sha256.clone()]);
    let mut client = service.tcp.clone();
    let (_, got, _) = download(&mut client, &kept.id).await.unwrap();
    assert_eq!(got, b"kept");
}

/// Copies a backup (its database and blob directory) into a new data directory laid out as
/// kanband's: `kanband.db` and `attachments/`.
fn restore(backup: &pb::BackupResponse, data_dir: &Path) {
    use std::os::unix::fs::DirBuilderExt as _;
    let blob_dir = data_dir.join(kanband::store::ATTACHMENTS_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&blob_dir)
        .unwrap();
    std::fs::copy(&backup.path, data_dir.join(kanband::store::DB_FILE)).unwrap();
    for entry in std::fs::read_dir(&backup.attachments_path).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), blob_dir.join(entry.file_name())).unwrap();
    }
}

#[tokio::test]
async fn a_backup_holds_the_blobs_it_names_and_restores_with_them() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "t").await;
    let bytes = content(200_000, 9);
    let big = upload(&mut client, &task.id, "big.bin", &bytes)
        .await
        .unwrap();
    let twin = upload(&mut client, &task.id, "twin.bin", &bytes)
        .await
        .unwrap();
    let small = upload(&mut client, &task.id, "small.txt", b"small")
        .await
        .unwrap();
    let removed = upload(&mut client, &task.id, "removed", b"removed")
        .await
        .unwrap();
    delete(&mut client, &removed.id).await.unwrap();

    let backup = client
        .admin
        .backup(pb::BackupRequest {
            path: "with-files.db".into(),
        })
        .await
        .expect("Backup")
        .into_inner();
    assert_eq!(backup.attachments, 2, "one blob per content, none unnamed");
    assert_eq!(backup.attachment_bytes, 200_000 + 5);
    assert_eq!(
        PathBuf::from(&backup.attachments_path),
        PathBuf::from(format!("{}.attachments", backup.path))
    );
    let mut copied: Vec<String> = std::fs::read_dir(&backup.attachments_path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    copied.sort();
    let mut want = vec![big.sha256.clone(), small.sha256.clone()];
    want.sort();
    assert_eq!(copied, want);
    // A second backup of the same name is refused before anything is written.
    assert_refused(
        "a backup name already taken",
        client
            .admin
            .backup(pb::BackupRequest {
                path: "with-files.db".into(),
            })
            .await,
        Code::AlreadyExists,
        "with-files.db",
    );

    let restored = tempfile::tempdir().unwrap();
    restore(&backup, &restored.path().join("data"));
    let again = spawn_service_in(restored).await;
    let mut client = again.tcp.clone();
    for (attachment, want) in [(&big, &bytes[..]), (&twin, &bytes[..]), (&small, b"small")] {
        let (got, got_bytes, _) = download(&mut client, &attachment.id).await.unwrap();
        assert_eq!(&got, attachment);
        assert!(got_bytes == want, "{} restored", attachment.name);
    }
    assert_eq!(attachments(&mut client, &task.id).await.len(), 3);
}

#[tokio::test]
async fn an_upload_whose_row_a_full_database_refuses_leaves_no_blob() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let task = create(&mut client, "t").await;
    crate::support::disk::fill(&mut client).await;
    // Rows fit in what room the pages have left until one does not: its blob was already in
    // place, and must go again.
    let mut stored = 0;
    let refused = loop {
        let bytes = format!("file {stored} ").repeat(100);
        match upload(&mut client, &task.id, "f", bytes.as_bytes()).await {
            Ok(_) => stored += 1,
            Err(status) => break status,
        }
        assert!(stored < 1000, "the cap never bit");
    };
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(attachments(&mut client, &task.id).await.len(), stored);
    assert_eq!(
        blobs(&service.data_dir).len(),
        stored,
        "only the blobs rows name"
    );
    crate::support::disk::set_cap(&mut client, 0).await;
    upload(&mut client, &task.id, "after", b"space is back")
        .await
        .expect("uploads work again");
}
