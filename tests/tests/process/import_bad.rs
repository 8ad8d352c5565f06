//! `kanband import hermes` on bad input: each problem gets its own clear message, and the
//! import either completes with the problems listed or changes nothing.

use std::path::Path;

use kanband_proto::pb;
use kanband_tests::{
    calls,
    daemon::{Daemon, data_dir},
    hermes,
};
use tokio_rusqlite::rusqlite::Connection;

use crate::{import::import, support::shared};

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs SQL on a Hermes board's database.
fn sql(db: &Path, script: &str) {
    Connection::open(db).unwrap().execute_batch(script).unwrap();
}

/// Refused, with `message` on stderr, and nothing created in the data directory.
async fn refused(args: &[&str], data: &Path, message: &str) {
    let mut all = args.to_vec();
    all.extend(["--data-dir", data.to_str().unwrap()]);
    let run = import(&all).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(message), "{message}\n{run:?}");
    assert!(
        !data.exists(),
        "a refused import created {}",
        data.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_cannot_be_read_whole_is_refused_and_nothing_changes() {
    let _machine = shared().await;
    let template = tempfile::tempdir().unwrap();
    hermes::make_boards(template.path());
    let work = tempfile::tempdir().unwrap();
    let (_dir, data) = data_dir();
    let case = |name: &str| {
        let root = work.path().join(name);
        copy_dir(template.path(), &root);
        root
    };

    // Not a Hermes root.
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(
        &[empty.to_str().unwrap()],
        &data,
        "is not a Hermes root: it has no kanban.db",
    )
    .await;
    let root = case("named");
    refused(
        &[root.to_str().unwrap(), "--board", "nope"],
        &data,
        "--board nope: no such board",
    )
    .await;

    // Not a database at all.
    let root = case("junk");
    std::fs::write(
        root.join("kanban.db"),
        "this is not a database\n".repeat(300),
    )
    .unwrap();
    refused(
        &[root.to_str().unwrap()],
        &data,
        "corrupt, half-written or not a SQLite database",
    )
    .await;

    // Half-written: the file cut in the middle.
    let root = case("half");
    let db = root.join("kanban.db");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &[root.to_str().unwrap()],
        &data,
        "corrupt, half-written or not a SQLite database",
    )
    .await;

    // Corrupt inside: a page of garbage, which SQLite cannot read at all; and a task row
    // whose status no longer matches its index entries, which reads but fails the
    // integrity check (found by flipping each copy of the bytes `review` in turn).
    let root = case("garbage");
    let db = root.join("kanban.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let last = bytes.len() - 4096;
    bytes[last..last + 2048].fill(0xa5);
    std::fs::write(&db, &bytes).unwrap();
    refused(
        &[root.to_str().unwrap()],
        &data,
        "corrupt, half-written or not a SQLite database",
    )
    .await;
    let root = case("index");
    let db = root.join("kanban.db");
    let clean = std::fs::read(&db).unwrap();
    let damaged = (0..clean.len() - 6)
        .filter(|&at| &clean[at..at + 6] == b"review")
        .find_map(|at| {
            let mut bytes = clean.clone();
            bytes[at + 5] = b'X';
            std::fs::write(&db, &bytes).unwrap();
            let conn = Connection::open(&db).ok()?;
            let first: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .ok()?;
            first.contains("missing from index").then_some(first)
        })
        .expect("a status byte whose change breaks the index");
    refused(
        &[root.to_str().unwrap()],
        &data,
        &format!("corrupt, half-written or not a SQLite database ({damaged}"),
    )
    .await;

    // A schema from another Hermes version, on one board of two: the good one is not
    // imported either.
    let root = case("schema");
    sql(
        &root.join("kanban/boards/ops/kanban.db"),
        "ALTER TABLE tasks ADD COLUMN colour TEXT;",
    );
    refused(&[root.to_str().unwrap()], &data, "tasks.colour is unknown").await;
    refused(
        &[root.to_str().unwrap()],
        &data,
        "not the kanban schema of Hermes Agent 0.19 (hermes-agent 0.19.0), the only one this import reads",
    )
    .await;

    // A running kanband owns the data directory: the import takes the same lock.
    let root = case("live");
    let daemon = Daemon::start(&data).await;
    let run = import(&[root.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("another kanband is already running on data directory"),
        "{run:?}"
    );
    let mut client = daemon.client().await;
    let boards = client
        .boards
        .list_boards(pb::ListBoardsRequest {
            include_archived: true,
        })
        .await
        .unwrap()
        .into_inner()
        .boards;
    assert_eq!(
        boards.len(),
        1,
        "only kanband's own default board: {boards:?}"
    );
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_listed_with_their_reasons_and_the_rest_is_imported() {
    let _machine = shared().await;
    let root = tempfile::tempdir().unwrap();
    let source = hermes::make_boards(root.path());
    let tasks = &source["default"]["tables"]["tasks"];
    let (spec, build) = (
        tasks[0]["id"].as_str().unwrap(),
        tasks[1]["id"].as_str().unwrap(),
    );
    // A dangling link, a duplicate link (Hermes's table has a primary key, so the table is
    // rebuilt without it as a damaged or hand-edited board could be), a link closing a
    // cycle, and an attachment whose blob is gone.
    sql(
        &root.path().join("kanban.db"),
        &format!(
            "CREATE TABLE links_copy AS SELECT * FROM task_links;
             DROP TABLE task_links;
             CREATE TABLE task_links (parent_id TEXT NOT NULL, child_id TEXT NOT NULL);
             INSERT INTO task_links SELECT * FROM links_copy;
             DROP TABLE links_copy;
             INSERT INTO task_links VALUES ('{spec}', '{build}');
             INSERT INTO task_links VALUES ('{spec}', 't_deadbeef');
             INSERT INTO task_links VALUES ('{build}', '{spec}');"
        ),
    );
    let blob = source["default"]["tables"]["task_attachments"][0]["stored_path"]
        .as_str()
        .unwrap();
    std::fs::remove_file(blob).unwrap();

    let (_dir, data) = data_dir();
    let run = import(&[
        root.path().to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "task_links                  4        1        3",
        "task_attachments            1        0        1",
        "skipped 1: dangling: names a task that is not on the board",
        "skipped 1: duplicate link",
        "skipped 1: would close a cycle",
        &format!("skipped 1: blob missing ({blob} is not a file)"),
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }

    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let ids = crate::import::mapping(&run.stdout);
    let d = calls::detail(&mut client, &ids[spec]).await;
    assert_eq!(d.children, [ids[build].clone()]);
    assert!(d.parents.is_empty());
    daemon.terminate().await;
}
