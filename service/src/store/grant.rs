//! The grant pass: one dispatcher pass over the waiting sessions in one transaction, granting
//! each the first task the dispatch rules ([`crate::domain::dispatch`]) allow.

use std::collections::{HashMap, HashSet};

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    batch::Isolation,
    effect::{ClaimDeadlines, Effect},
    model::{ClaimRecord, Grant, SessionRecord, Task},
    tx::{
        candidates::{Key, OpenBoard, keys, open_boards, under_key},
        read,
        status::{self, refused, status_columns},
    },
};
use crate::domain::Author;
use crate::{
    clock::now_ms,
    domain::{
        EventKind, Status,
        dispatch::{self, Load, SessionView, TaskView},
        ids,
        lease::ClaimState,
        transitions::{Op, next_status},
    },
    error::Result,
};

fn grant_in(
    conn: &Connection,
    view: &TaskView,
    session: &SessionRecord,
    fx: &mut Vec<Effect>,
) -> Result<Grant> {
    let task = read::task(conn, &view.id)?;
    let review = task.status == Status::Review;
    // The candidate query read whether its parents are finished, in this pass, which finishes
    // no task.
    let ctx = status::context_knowing(&task, view.parents_finished);
    let to =
        next_status(task.status, Op::Claim, &ctx).map_err(|r| refused(&task.id, "claim", r))?;
    let profile = view.profile().unwrap_or_default().to_owned();
    let epoch = task.epoch + 1;
    let run_id = ids::ordered(ids::RUN);
    let token = ids::claim_token();
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO runs (id, task_id, epoch, session_id, profile, machine_id, review, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        run_id,
        task.id,
        epoch as i64,
        session.id,
        profile,
        session.machine_id,
        review,
        now
    ])?;
    conn.prepare_cached(
        "INSERT INTO claims (token, task_id, board, epoch, run_id, session_id, profile, review,
                             state, granted_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'live', ?9, ?10)",
    )?
    .execute(params![
        token,
        task.id,
        task.board,
        epoch as i64,
        run_id,
        session.id,
        profile,
        review,
        now,
        now + i64::from(session.ttl_ms)
    ])?;
    let details = [
        ("run", run_id.clone()),
        ("epoch", epoch.to_string()),
        ("session", session.id.clone()),
        ("profile", profile.clone()),
    ];
    // The dispatcher grants (on a waiting session's behalf): kanband, noting the session.
    let by = Author::system_noting(session.id.as_str());
    // The claim's columns and the status in one row write.
    conn.prepare_cached(concat!(
        "UPDATE tasks SET ",
        status_columns!(),
        ", epoch = ?4, current_run_id = ?5, started_at = coalesce(started_at, ?3),
           cooldown_until = NULL, reclaimed_from = NULL
         WHERE id = ?1"
    ))?
    .execute(params![task.id, to.as_str(), now, epoch as i64, run_id])?;
    status::status_written(conn, &task, to, EventKind::Claimed, &by, &details)?;
    let claim = ClaimRecord {
        token,
        task_id: task.id.clone(),
        board: task.board.clone(),
        epoch,
        run_id,
        session_id: session.id.clone(),
        profile,
        review,
        state: ClaimState::Live,
        revoke_until: None,
        cancel_until: None,
        ended_by: None,
    };
    let deadlines = ClaimDeadlines::at_grant(now, task.max_runtime_seconds);
    fx.push(Effect::Granted(claim.clone(), deadlines));
    let waited_ms = now - task.updated_at;
    // The task as the writes above left it, without reading it back.
    let claimed = Task {
        started_at: task.started_at.or(Some(now)),
        cooldown_until: None,
        current_run_id: Some(claim.run_id.clone()),
        epoch,
        ..status::with_status(task, to, now)
    };
    Ok(Grant {
        task: claimed,
        claim,
        ttl_ms: session.ttl_ms,
        waited_ms,
    })
}

/// The most candidates fetched per query while looking for a grant.
const CANDIDATE_PAGE: u32 = 16;

/// Candidates to fetch per query when `waiters` waiters of the pass are still to be served
/// (the one being served counts): as many as they can take if every candidate suits them, up to
/// [`CANDIDATE_PAGE`]. A pass cannot grant more tasks than it has waiters left, and a page is
/// decoded whole; a full page for the one or two waiters a pass serves on a lightly loaded
/// board was 15 % of the connection thread's instructions per cycle. When candidates are
/// passed over (another machine's, a full board), the next page is read as before.
fn page_size(waiters: usize) -> u32 {
    u32::try_from(waiters)
        .unwrap_or(u32::MAX)
        .clamp(1, CANDIDATE_PAGE)
}

/// What one grant pass has read under each key, in dispatch order, less the tasks it granted
/// since. A pass serves many waiters that look under the same keys; reading a page once for
/// all of them (instead of a page per waiter, of which one row is used) is most of what a
/// grant used to cost. The pages stay true for the whole pass: it runs in one savepoint and
/// its own grants are the only changes it sees, and a grant moves only the granted task out
/// of its key (to `running`), which [`Pages::granted`] mirrors.
#[derive(Debug, Default)]
struct Pages {
    by_key: HashMap<Key, Read>,
    /// Waiters of the pass not yet answered, the one being served among them: what sizes the
    /// pages read from here on ([`page_size`]).
    waiters_left: usize,
}

/// The tasks read under one key.
#[derive(Debug, Default)]
struct Read {
    /// Read and not granted, in dispatch order.
    tasks: Vec<TaskView>,
    /// Rows of the key now in the database before the next unread one: those read, less
    /// those granted (which left the key).
    offset: u32,
    /// The last page was short: every task under the key has been read.
    complete: bool,
}

impl Pages {
    /// The first task under `key` that `view` may claim, reading further pages only while
    /// none of the tasks read so far qualifies.
    fn first(
        &mut self,
        conn: &Connection,
        key: &Key,
        view: &SessionView,
        load: &Load,
        now: i64,
    ) -> Result<Option<TaskView>> {
        let limit = page_size(self.waiters_left);
        let read = self.by_key.entry(key.clone()).or_default();
        let mut seen = 0;
        loop {
            if let Some(task) = dispatch::choose(&read.tasks[seen..], view, load, now) {
                return Ok(Some(task.clone()));
            }
            if read.complete {
                return Ok(None);
            }
            seen = read.tasks.len();
            let page = under_key(conn, key, limit, read.offset)?;
            read.offset += page.len() as u32;
            read.complete = page.len() < limit as usize;
            read.tasks.extend(page);
        }
    }

    /// `task`, read under `key`, was granted: it is no longer under the key.
    fn granted(&mut self, key: &Key, task: &str) {
        if let Some(read) = self.by_key.get_mut(key)
            && let Some(at) = read.tasks.iter().position(|t| t.id == task)
        {
            read.tasks.remove(at);
            read.offset -= 1;
        }
    }
}

/// The first task in dispatch order that `view` may claim, with the key it sits under. The
/// first claimable task under each key the session's candidates sit under is found, and the
/// earliest of those wins: whether a task may be claimed never depends on the tasks before it,
/// so this is the first claimable task of all of them in dispatch order.
fn first_claimable(
    conn: &Connection,
    pages: &mut Pages,
    boards: &[OpenBoard],
    session: &SessionRecord,
    view: &SessionView,
    load: &Load,
    now: i64,
) -> Result<Option<(Key, TaskView)>> {
    let mut best: Option<(Key, TaskView)> = None;
    for key in keys(boards, &session.profiles, session.review_lane) {
        if let Some(task) = pages.first(conn, &key, view, load, now)?
            && best
                .as_ref()
                .is_none_or(|(_, b)| task.order_key() < b.order_key())
        {
            best = Some((key, task));
        }
    }
    Ok(best)
}

impl Store {
    /// One dispatcher pass in one transaction: for each session in order (oldest waiter
    /// first), grants the first task the dispatch rules allow, if any. Slots and caps count the
    /// grants made earlier in the same pass. A session that is not open gets its own error.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn grant_pass(
        &self,
        waiters: Vec<String>,
    ) -> Result<Vec<Result<Option<Grant>>>> {
        let leases = self.leases.clone();
        // A pass refuses a waiter (a closed session) before granting it anything, and what it
        // grants was just read as claimable in the same transaction: no savepoint.
        self.write_quietly_as(Isolation::ChecksFirst, move |tx, fx| {
            let mut load = leases.load();
            let mut granted: HashMap<String, u32> = HashMap::new();
            let mut exhausted: HashSet<String> = HashSet::new();
            let now = now_ms();
            let boards = open_boards(tx)?;
            let mut pages = Pages::default();
            let mut answers = Vec::with_capacity(waiters.len());
            let count = waiters.len();
            for (served, session_id) in waiters.into_iter().enumerate() {
                pages.waiters_left = count - served;
                if exhausted.contains(&session_id) {
                    answers.push(Ok(None));
                    continue;
                }
                let session = match read::open_session(tx, &session_id) {
                    Ok(session) => session,
                    Err(err) => {
                        answers.push(Err(err));
                        continue;
                    }
                };
                let taken = granted.get(&session_id).copied().unwrap_or(0);
                let view = SessionView {
                    id: session.id.clone(),
                    profiles: session.profiles.clone(),
                    capabilities: session.capabilities.clone(),
                    machine_id: session.machine_id.clone(),
                    review_lane: session.review_lane,
                    free_slots: leases.free_slots(&session_id).saturating_sub(taken),
                };
                let grant = if view.free_slots == 0 {
                    None
                } else {
                    match first_claimable(tx, &mut pages, &boards, &session, &view, &load, now)? {
                        Some((key, task)) => {
                            let grant = grant_in(tx, &task, &session, fx)?;
                            pages.granted(&key, &task.id);
                            Some(grant)
                        }
                        None => None,
                    }
                };
                match &grant {
                    Some(grant) => {
                        *granted.entry(session_id).or_default() += 1;
                        *load.by_board.entry(grant.claim.board.clone()).or_default() += 1;
                        *load
                            .by_profile
                            .entry(grant.claim.profile.clone())
                            .or_default() += 1;
                    }
                    None => {
                        exhausted.insert(session_id);
                    }
                }
                answers.push(Ok(grant));
            }
            Ok(answers)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use tokio_rusqlite::rusqlite::params;

    use super::*;
    use crate::{
        domain::lease::Use,
        store::{
            testing::open_store,
            tx::{
                candidates::{prepared_again, rows_read_since_last, steps_since_last},
                claims::Finish,
            },
        },
    };

    /// Adds `count` ready tasks on the default board for a profile no session runs, ahead of
    /// everything else in dispatch order (priority 10).
    async fn add_backlog(store: &Store, count: u32) {
        store
            .call(move |conn| {
                conn.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                     INSERT INTO tasks (id, board, title, assignee, status, priority, created_at,
                                        updated_at)
                     SELECT 't_backlog' || printf('%08d', i) || hex(randomblob(4)), 'default',
                            'nobody runs this', 'nobody', 'ready', 10, i, i
                     FROM n",
                    params![count],
                )?;
                Ok(())
            })
            .await
            .unwrap();
    }

    /// A pass for `session` that must grant the one `coder` task it adds, and the steps its
    /// candidate lookups took.
    async fn pass_steps(store: &Store, session: &str, task: &str) -> i64 {
        let task_id = task.to_owned();
        store
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO tasks (id, board, title, assignee, status, priority, created_at,
                                        updated_at)
                     VALUES (?1, 'default', 'for coder', 'coder', 'ready', 0, 0, 0)",
                    [task_id],
                )?;
                steps_since_last(conn)
            })
            .await
            .unwrap();
        let answers = store.grant_pass(vec![session.to_owned()]).await.unwrap();
        let [Ok(Some(grant))] = answers.as_slice() else {
            panic!("the pass granted nothing: {answers:?}");
        };
        assert_eq!(grant.task.id, task);
        store.call(|conn| steps_since_last(conn)).await.unwrap()
    }

    #[tokio::test]
    async fn a_pass_costs_no_more_beside_ten_thousand_tasks_no_waiter_runs() {
        let (_dir, store) = open_store().await;
        let session = store
            .open_session(SessionRecord {
                id: ids::fresh(ids::SESSION),
                machine_id: "m1".into(),
                hostname: "h1".into(),
                profiles: vec!["coder".into()],
                capabilities: vec![],
                slots: 8,
                ttl_ms: 60_000,
                review_lane: true,
                owner: String::new(),
            })
            .await
            .unwrap();
        add_backlog(&store, 10).await;
        let small = pass_steps(&store, &session.id, "t_first").await;
        add_backlog(&store, 10_000).await;
        let large = pass_steps(&store, &session.id, "t_second").await;
        assert!(small > 0, "the lookups were counted");
        assert!(
            large <= small,
            "a pass took {large} steps beside 10,010 tasks nobody waiting runs, {small} beside 10"
        );
    }

    async fn coder_session(store: &Store, capabilities: &[&str]) -> String {
        store
            .open_session(SessionRecord {
                id: ids::fresh(ids::SESSION),
                machine_id: "m1".into(),
                hostname: "h1".into(),
                profiles: vec!["coder".into()],
                capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
                slots: 8,
                ttl_ms: 60_000,
                review_lane: false,
                owner: String::new(),
            })
            .await
            .unwrap()
            .id
    }

    #[tokio::test]
    async fn one_pass_reads_each_page_once_for_all_its_waiters_and_grants_in_dispatch_order() {
        let (_dir, store) = open_store().await;
        // 100 ready coder tasks in dispatch order t_c000.., every third needing a GPU.
        let needs_gpu = |i: usize| i.is_multiple_of(3);
        store
            .call(move |conn| {
                for i in 0..100usize {
                    let caps = if needs_gpu(i) { r#"["gpu"]"# } else { "[]" };
                    conn.execute(
                        "INSERT INTO tasks (id, board, title, assignee, status, priority,
                                            created_at, updated_at, required_capabilities)
                         VALUES (?1, 'default', 'for coder', 'coder', 'ready', 0, ?2, ?2, ?3)",
                        params![format!("t_c{i:03}"), i as i64, caps],
                    )?;
                }
                steps_since_last(conn)
            })
            .await
            .unwrap();
        // 40 waiters, every fourth with a GPU: each must get the first task left in dispatch
        // order that it may run, across page boundaries and the pass's own grants.
        let mut waiters = Vec::new();
        for w in 0..40 {
            let caps: &[&str] = if w % 4 == 0 { &["gpu"] } else { &[] };
            waiters.push((coder_session(&store, caps).await, w % 4 == 0));
        }
        let mut left: Vec<usize> = (0..100).collect();
        let mut want = Vec::new();
        for (_, gpu) in &waiters {
            let at = left.iter().position(|&i| *gpu || !needs_gpu(i)).unwrap();
            want.push(format!("t_c{:03}", left.remove(at)));
        }
        let answers = store
            .grant_pass(waiters.iter().map(|(id, _)| id.clone()).collect())
            .await
            .unwrap();
        let granted: Vec<Task> = answers
            .into_iter()
            .map(|a| a.unwrap().expect("every waiter is granted").task)
            .collect();
        let rows = store
            .call(|conn| Ok(rows_read_since_last(conn)))
            .await
            .unwrap();
        let again = store.call(|conn| prepared_again(conn)).await.unwrap();
        assert_eq!(
            again, 0,
            "the candidate query was planned again for later pages"
        );
        let got: Vec<String> = granted.iter().map(|t| t.id.clone()).collect();
        assert_eq!(got, want);
        // Each grant answers its task as stored after the claim.
        let stored: Vec<Task> = store
            .call(move |conn| got.iter().map(|id| read::task(conn, id)).collect())
            .await
            .unwrap();
        assert_eq!(granted, stored);

        // Each candidate was read once for all 40 waiters: the rows up to the last task
        // granted, and no more than one page beyond it (where a page of 16 is read whole).
        let needed = 1 + want
            .iter()
            .map(|id| id["t_c".len()..].parse::<usize>().unwrap())
            .max()
            .unwrap();
        assert!(
            (needed..=needed + CANDIDATE_PAGE as usize).contains(&rows),
            "a pass serving 40 waiters read {rows} candidate rows; it needed {needed}"
        );
    }

    #[test]
    fn a_page_holds_as_many_candidates_as_the_waiters_left_up_to_a_full_page() {
        let sizes: Vec<u32> = [0, 1, 3, 16, 17, 1000, usize::MAX]
            .into_iter()
            .map(page_size)
            .collect();
        assert_eq!(sizes, [1, 1, 3, 16, 16, 16, 16]);
    }

    #[tokio::test]
    async fn a_pass_reads_no_more_candidates_than_it_has_waiters() {
        let (_dir, store) = open_store().await;
        store
            .call(|conn| {
                conn.execute_batch(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
                     INSERT INTO tasks (id, board, title, assignee, status, priority, created_at,
                                        updated_at)
                     SELECT printf('t_c%03d', i), 'default', 'for coder', 'coder', 'ready', 0, i,
                            i
                     FROM n",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let single = coder_session(&store, &[]).await;
        let answers = store.grant_pass(vec![single]).await.unwrap();
        assert!(matches!(answers.as_slice(), [Ok(Some(_))]), "{answers:?}");
        let rows = store
            .call(|conn| Ok(rows_read_since_last(conn)))
            .await
            .unwrap();
        assert_eq!(
            rows, 1,
            "one waiter beside 100 ready tasks read {rows} candidates"
        );

        let three: Vec<String> = [
            coder_session(&store, &[]).await,
            coder_session(&store, &[]).await,
            coder_session(&store, &[]).await,
        ]
        .into();
        let answers = store.grant_pass(three).await.unwrap();
        assert!(
            answers.iter().all(|a| matches!(a, Ok(Some(_)))),
            "{answers:?}"
        );
        let rows = store
            .call(|conn| Ok(rows_read_since_last(conn)))
            .await
            .unwrap();
        assert_eq!(
            rows, 3,
            "three waiters beside 99 ready tasks read {rows} candidates"
        );
    }

    #[tokio::test]
    async fn a_grant_and_a_complete_answer_the_task_as_stored() {
        let (_dir, store) = open_store().await;
        let session = coder_session(&store, &[]).await;
        store
            .call(|conn| {
                // A parent finished and a wake-up time long gone, so the answers' every
                // stamped column is checked against the row.
                conn.execute_batch(
                    "INSERT INTO tasks (id, board, title, assignee, status, priority, created_at,
                                        updated_at, consecutive_failures, protocol_violations,
                                        outcomeless_attempts, block_recurrences, cooldown_until)
                     VALUES ('t_one', 'default', 'for coder', 'coder', 'ready', 0, 1, 1, 2, 1, 1,
                             3, 5);
                     INSERT INTO tasks (id, board, title, assignee, status, priority, created_at,
                                        updated_at)
                     VALUES ('t_child', 'default', 'after', 'nobody', 'todo', 0, 2, 2);
                     INSERT INTO task_links (parent_id, child_id) VALUES ('t_one', 't_child');",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let answers = store.grant_pass(vec![session]).await.unwrap();
        let [Ok(Some(grant))] = answers.as_slice() else {
            panic!("the pass granted nothing: {answers:?}");
        };
        let stored = store.call(|conn| read::task(conn, "t_one")).await.unwrap();
        assert_eq!(grant.task, stored);
        assert_eq!(stored.status, Status::Running);

        let finish = Finish::Complete {
            result: "the result".into(),
            summary: "the summary".into(),
            metadata: Default::default(),
        };
        let ended = store
            .holder_finish(
                grant.claim.token.clone(),
                Use::Hold,
                finish,
                Author::system(),
            )
            .await
            .unwrap();
        let stored = store.call(|conn| read::task(conn, "t_one")).await.unwrap();
        assert_eq!(ended.task, stored);
        assert_eq!(
            (
                stored.status,
                stored.result.as_str(),
                stored.consecutive_failures
            ),
            (Status::Done, "the result", 0)
        );
        let child = store
            .call(|conn| read::task(conn, "t_child"))
            .await
            .unwrap();
        assert_eq!(
            child.status,
            Status::Ready,
            "the finished parent promotes its child"
        );
    }
}
