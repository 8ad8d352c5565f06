//! The grant pass: one dispatcher pass over the waiting sessions in one transaction, granting
//! each the first task the dispatch rules ([`crate::domain::dispatch`]) allow.

use std::collections::{HashMap, HashSet};

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    effect::{ClaimDeadlines, Effect},
    model::{ClaimRecord, Grant, SessionRecord},
    tx::{
        candidates::{OpenBoard, keys, open_boards, under_key},
        read,
        status::{self, set_status},
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
        transitions::Op,
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
    let to = status::next(conn, &task, Op::Claim, "claim")?;
    let profile = view.profile().unwrap_or_default().to_owned();
    let epoch = task.epoch + 1;
    let run_id = ids::ordered(ids::RUN);
    let token = ids::fresh(ids::CLAIM);
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
    conn.prepare_cached(
        "UPDATE tasks SET epoch = ?2, current_run_id = ?3, started_at = coalesce(started_at, ?4),
                cooldown_until = NULL, reclaimed_from = NULL
         WHERE id = ?1",
    )?
    .execute(params![task.id, epoch as i64, run_id, now])?;
    let details = [
        ("run", run_id.clone()),
        ("epoch", epoch.to_string()),
        ("session", session.id.clone()),
        ("profile", profile.clone()),
    ];
    // The dispatcher grants (on a waiting session's behalf): kanband, noting the session.
    let by = Author::system_noting(session.id.as_str());
    set_status(conn, &task, to, EventKind::Claimed, &by, &details)?;
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
    Ok(Grant {
        task: read::task(conn, &task.id)?,
        claim,
        ttl_ms: session.ttl_ms,
        waited_ms: now - task.updated_at,
    })
}

/// Candidates fetched per query while looking for a grant.
const CANDIDATE_PAGE: u32 = 16;

/// The first task in dispatch order that `view` may claim. Each key the session's candidates
/// sit under is paged through in dispatch order up to its first claimable task, and the
/// earliest of those wins: whether a task may be claimed never depends on the tasks before it,
/// so this is the first claimable task of all of them in dispatch order.
fn first_claimable(
    conn: &Connection,
    boards: &[OpenBoard],
    session: &SessionRecord,
    view: &SessionView,
    load: &Load,
    now: i64,
) -> Result<Option<TaskView>> {
    let mut best: Option<TaskView> = None;
    for key in keys(boards, &session.profiles, session.review_lane) {
        let mut offset = 0;
        let found = loop {
            let page = under_key(conn, &key, CANDIDATE_PAGE, offset)?;
            if let Some(task) = dispatch::choose(&page, view, load, now) {
                break Some(task.clone());
            }
            if page.len() < CANDIDATE_PAGE as usize {
                break None;
            }
            offset += CANDIDATE_PAGE;
        };
        if let Some(task) = found
            && best
                .as_ref()
                .is_none_or(|b| task.order_key() < b.order_key())
        {
            best = Some(task);
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
        self.write_quietly(move |tx, fx| {
            let mut load = leases.load();
            let mut granted: HashMap<String, u32> = HashMap::new();
            let mut exhausted: HashSet<String> = HashSet::new();
            let now = now_ms();
            let boards = open_boards(tx)?;
            let mut answers = Vec::with_capacity(waiters.len());
            for session_id in waiters {
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
                    first_claimable(tx, &boards, &session, &view, &load, now)?
                        .map(|task| grant_in(tx, &task, &session, fx))
                        .transpose()?
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
    use std::sync::Arc;

    use tokio_rusqlite::rusqlite::params;

    use super::*;
    use crate::{
        domain::dispatch::Load,
        store::{effect::LiveLeases, tx::candidates::steps_since_last},
    };

    /// Lease state that lets every session take one more claim.
    #[derive(Debug)]
    struct OneFreeSlot;

    impl LiveLeases for OneFreeSlot {
        fn apply(&self, _: Vec<Effect>) {}
        fn publish_event_id(&self, _: i64) {}
        fn claim_overdue(&self, _: &str) -> bool {
            false
        }
        fn session_overdue(&self, _: &str) -> bool {
            false
        }
        fn free_slots(&self, _: &str) -> u32 {
            1
        }
        fn load(&self) -> Load {
            Load::default()
        }
        fn claim_tokens(&self) -> Vec<String> {
            Vec::new()
        }
    }

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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("data"),
            Arc::new(OneFreeSlot),
            crate::domain::limits::ATTACHMENT_MAX_DEFAULT,
        )
        .await
        .unwrap();
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
}
