//! `cycle-large`: the `cycle` scenario on a database that already holds `--large-tasks` done
//! tasks with `--large-events-per-task` events each (1,000,000 and 10,000,000 by default), to
//! compare with `cycle` on a fresh one.
//!
//! Seeding through the API would take hours, so the file is written with kanband stopped, by
//! copying rows kanband itself wrote: the fresh kanband runs one template task through create
//! -> claim -> complete and comments on it until it has its share of events; kanband is
//! stopped; then, in one transaction, every row of the template task (the task, its run, its
//! claim, its comments, its events, whatever the schema's columns are) is copied `--large-tasks`
//! times with the template's ids rewritten to fresh ones of the same form (the prefix and as
//! many hex digits, the last 7 counting the copies). The columns come from the file's own schema, so the before binary's (an older
//! migration) is seeded the same way. The seeded directory is kept per kanband binary (its
//! size and modification time) under `kanband-bench-seeded/` beside the binary, and each run
//! starts kanband on a copy of it.

use std::{
    path::{Path, PathBuf},
    time::{Instant, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use kanband_proto::pb;
use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Env, Measured, Pool, cycle,
    hold::{acquire_n, open_session},
    load::create_tasks,
};
use crate::server::DataDir;

/// The database's file name in the data directory.
const DB: &str = "kanband.db";

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let sizes = env.sizes;
    let fresh = env
        .server
        .take()
        .context("needs a kanband the bench started (to seed its file); drop --addr")?;
    let bin = env.launch.bin().context("needs the kanband binary")?;
    let cache = cache_dir(bin, sizes.large_tasks, sizes.large_events_per_task)?;
    let ready = cache.join("seeded");
    let mut seeded_in = None;
    let template = if ready.is_file() {
        fresh.stop().await?;
        std::fs::read_to_string(&ready)?.trim().to_owned()
    } else {
        let started = Instant::now();
        let template = make_template(env, sizes.large_events_per_task).await?;
        let (dir, _) = fresh.stop().await?;
        let data = dir.data();
        let (task, tasks) = (template.clone(), sizes.large_tasks);
        tokio::task::spawn_blocking(move || seed(&data.join(DB), &task, tasks))
            .await
            .context("seeding panicked")??;
        copy_files(&dir.data(), &cache.join("data"))?;
        std::fs::write(&ready, format!("{template}\n"))?;
        seeded_in = Some(started.elapsed());
        template
    };

    let copy = match &env.launch.data_root() {
        Some(root) => tempfile::Builder::new()
            .prefix("kanband-bench-")
            .tempdir_in(root),
        None => tempfile::Builder::new().prefix("kanband-bench-").tempdir(),
    }
    .context("cannot make a temporary data directory")?;
    let copy_started = Instant::now();
    copy_files(&cache.join("data"), &copy.path().join("data"))?;
    let copied_in = copy_started.elapsed();
    let server = env.launch.start(Some(DataDir::Temp(copy))).await?;
    let started_in = server.ready_after;
    let db_mib = server.data_bytes() as f64 / (1024.0 * 1024.0);
    env.pool = Pool::connect(&env.launch.client_addr(&server), sizes.connections).await?;
    env.server = Some(server);
    // kanband serves the seeded rows: the last copy of the template reads back as done.
    let last = copy_id(&template, sizes.large_tasks as u64);
    let detail = env
        .pool
        .get()
        .tasks
        .get_task(pb::GetTaskRequest {
            id: last.clone(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("GetTask {last} on the seeded database"))?
        .into_inner();
    let status = detail.task.as_ref().map(|t| t.status).unwrap_or_default();
    if status != pb::TaskStatus::Done as i32 {
        bail!("the seeded task {last} reads back with status {status}, not done");
    }
    let own_events = detail
        .recent_events
        .iter()
        .filter(|e| e.task_id == last)
        .count();
    if own_events < sizes.large_events_per_task.min(20) || detail.runs.len() != 1 {
        bail!(
            "the seeded task {last} reads back with {own_events} events and {} runs",
            detail.runs.len()
        );
    }

    let measured = cycle::run(env, cycle::Calls::Separate).await?;
    let seeding = match seeded_in {
        Some(took) => format!("seeded in {:.0} s", took.as_secs_f64()),
        None => "seeded file reused".into(),
    };
    Ok(measured
        .note(format!(
            "on a database with {} done tasks x {} events seeded from template {template} \
             ({seeding}, {}); data directory {db_mib:.0} MiB, copied in {:.1} s, kanband ready \
             in {:.2} s",
            sizes.large_tasks,
            sizes.large_events_per_task,
            cache.display(),
            copied_in.as_secs_f64(),
            started_in.as_secs_f64()
        ))
        .detail("seeded_tasks", sizes.large_tasks)
        .detail("seeded_events_per_task", sizes.large_events_per_task))
}

/// `<binary's directory>/kanband-bench-seeded/<sizes>-<binary size>-<binary mtime>`.
fn cache_dir(bin: &Path, tasks: usize, events: usize) -> anyhow::Result<PathBuf> {
    let meta = std::fs::metadata(bin).with_context(|| format!("cannot stat {}", bin.display()))?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let parent = bin
        .canonicalize()?
        .parent()
        .map(Path::to_path_buf)
        .context("the binary has no directory")?;
    let dir = parent
        .join("kanband-bench-seeded")
        .join(format!("{tasks}x{events}-{:x}-{mtime:x}", meta.len()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
    Ok(dir)
}

/// Runs one task through create -> claim -> complete and comments on it until it has
/// `events` events; returns its id.
async fn make_template(env: &Env<'_>, events: usize) -> anyhow::Result<String> {
    let profile = env.profile("large");
    create_tasks(&env.pool, 1, &profile, 1).await?;
    let mut client = env.pool.get();
    let session = open_session(&mut client, &profile, 1, 30_000).await?;
    let token = acquire_n(&mut client, &session, 1, 5_000).await?.remove(0);
    let task = client
        .leases
        .complete(pb::CompleteRequest {
            claim_token: token,
            summary: "seeded".into(),
            ..Default::default()
        })
        .await
        .context("Complete")?
        .into_inner()
        .id;
    loop {
        let have = client
            .tasks
            .list_events(pb::ListEventsRequest {
                task_id: task.clone(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .context("ListEvents")?
            .into_inner()
            .events
            .len();
        if have >= events {
            return Ok(task);
        }
        client
            .tasks
            .add_comment(pb::AddCommentRequest {
                task_id: task.clone(),
                author: "kanband-bench".into(),
                body: format!("note {have}"),
                ..Default::default()
            })
            .await
            .context("AddComment")?;
    }
}

/// The `n`th copy of an id: its prefix and first 9 hex digits, then `n` in 7 hex digits.
fn copy_id(id: &str, n: u64) -> String {
    format!("{}{n:07x}", &id[..id.len() - 7])
}

/// The same as SQL, for column values: `replace(expr, 'id', <copy n.i of id>)`.
fn rewrite(expr: String, id: &str) -> String {
    format!(
        "replace({expr}, '{id}', '{}' || printf('%07x', n.i))",
        &id[..id.len() - 7]
    )
}

/// Copies every row of `template` `tasks` times in one transaction.
fn seed(db: &Path, template: &str, tasks: usize) -> anyhow::Result<()> {
    let mut conn = Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    // A rollback journal, not kanband's WAL: one transaction of 10M rows would otherwise
    // write them all to the WAL and then again into the file. kanband turns WAL on again
    // when it opens the file, as at its first start.
    conn.pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
        row.get::<_, String>(0)
    })?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    let tx = conn.transaction()?;
    // Every id of the template's rows that others refer to: the task, its runs, its claims.
    let mut ids = vec![template.to_owned()];
    for sql in [
        "SELECT id FROM runs WHERE task_id = ?1",
        "SELECT token FROM claims WHERE task_id = ?1",
    ] {
        let mut stmt = tx.prepare(sql)?;
        let found = stmt.query_map([template], |row| row.get::<_, String>(0))?;
        for id in found {
            ids.push(id?);
        }
    }
    if ids
        .iter()
        .any(|id| id.len() < 9 || !id.is_ascii() || id.contains('\''))
    {
        bail!("unexpected template ids {ids:?}");
    }
    let tables: Vec<String> = tx
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for table in tables {
        let columns: Vec<(String, String, bool)> = tx
            .prepare(&format!(
                "SELECT name, type, pk FROM pragma_table_info('{table}')"
            ))?
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? > 0))
            })?
            .collect::<Result<_, _>>()?;
        let key = if table == "tasks" { "id" } else { "task_id" };
        if !columns.iter().any(|(name, _, _)| name == key) {
            continue;
        }
        // An INTEGER PRIMARY KEY (event and comment ids) is left to SQLite: the copies take
        // the next ids, as kanband's own inserts do.
        let copied: Vec<&(String, String, bool)> = columns
            .iter()
            .filter(|(_, kind, pk)| !(*pk && kind == "INTEGER"))
            .collect();
        let names: Vec<&str> = copied.iter().map(|(name, _, _)| name.as_str()).collect();
        let values: Vec<String> = copied
            .iter()
            .map(|(name, kind, _)| {
                let column = format!("t.\"{name}\"");
                if kind == "TEXT" {
                    ids.iter().fold(column, |expr, id| rewrite(expr, id))
                } else {
                    column
                }
            })
            .collect();
        tx.execute_batch(&format!(
            "CREATE TEMP TABLE template AS SELECT * FROM \"{table}\" WHERE \"{key}\" = '{template}'"
        ))?;
        tx.execute(
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO \"{table}\" ({}) SELECT {} FROM n CROSS JOIN temp.template AS t",
                names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                values.join(", ")
            ),
            params![tasks as i64],
        )
        .with_context(|| format!("copying the template's rows of {table}"))?;
        tx.execute_batch("DROP TABLE temp.template")?;
    }
    tx.commit()?;
    Ok(())
}

/// Copies the regular files of `from` into `to` (made if missing); the socket and any
/// directory are left out.
fn copy_files(from: &Path, to: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(to).with_context(|| format!("cannot make {}", to.display()))?;
    // kanband keeps its data directory private (0700), as its first start made it.
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
