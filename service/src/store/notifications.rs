//! Durable notification subscriptions with a server-side cursor.

use tokio_rusqlite::rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::{Store, events, model::Event, now_ms, rows, tasks};
use crate::{
    domain::ids,
    error::{Error, Result},
};

/// Prefix of subscription ids.
pub const SUBSCRIPTION: &str = "n_";

/// The terminal event kinds a subscription in mode `every` receives.
pub const TERMINAL_KINDS: &[&str] = &[
    "completed",
    "blocked",
    "gave_up",
    "crashed",
    "timed_out",
    "archived",
    "unblocked",
    "review_requested",
    "changes_requested",
    "block_loop_detected",
];

/// The kinds that end a task, which a subscription in mode `final` receives.
pub const FINAL_KINDS: &[&str] = &["completed", "gave_up", "archived"];

/// Which events a subscription wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every terminal event.
    Every,
    /// Only the task's end; removed once that is acknowledged.
    Final,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Every => "every",
            Mode::Final => "final",
        }
    }

    fn kinds(self) -> &'static [&'static str] {
        match self {
            Mode::Every => TERMINAL_KINDS,
            Mode::Final => FINAL_KINDS,
        }
    }
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors kanban.v1.Subscription
pub struct Subscription {
    pub id: String,
    pub task_id: String,
    pub platform: String,
    pub chat_id: String,
    pub thread_id: String,
    pub owner_profile: String,
    pub mode: Mode,
    pub cursor: i64,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, task_id, platform, chat_id, thread_id, owner_profile, mode, cursor, created_at";

fn subscription(row: &Row<'_>) -> tokio_rusqlite::rusqlite::Result<Subscription> {
    let mode: String = row.get(6)?;
    Ok(Subscription {
        id: row.get(0)?,
        task_id: row.get(1)?,
        platform: row.get(2)?,
        chat_id: row.get(3)?,
        thread_id: row.get(4)?,
        owner_profile: row.get(5)?,
        mode: if mode == "final" {
            Mode::Final
        } else {
            Mode::Every
        },
        cursor: row.get(7)?,
        created_at: row.get(8)?,
    })
}

fn load(conn: &Connection, id: &str) -> Result<Subscription> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE id = ?1 AND removed_at IS NULL"
    ))?
    .query_row([id], subscription)
    .optional()?
    .ok_or_else(|| Error::not_found("subscription", id))
}

impl Store {
    /// Creates a subscription to a task's terminal events from now on.
    pub async fn subscribe(&self, mut new: Subscription) -> Result<Subscription> {
        self.write(move |tx, _| {
            tasks::load(tx, &new.task_id)?;
            new.id = ids::fresh(SUBSCRIPTION);
            new.cursor = events::latest_id(tx)?;
            new.created_at = now_ms();
            tx.execute(
                &format!("INSERT INTO subscriptions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    new.id,
                    new.task_id,
                    new.platform,
                    new.chat_id,
                    new.thread_id,
                    new.owner_profile,
                    new.mode.as_str(),
                    new.cursor,
                    new.created_at
                ],
            )?;
            Ok(new)
        })
        .await
    }

    /// Removes a subscription.
    pub async fn unsubscribe(&self, id: String) -> Result<()> {
        self.write(move |tx, _| {
            load(tx, &id)?;
            tx.execute(
                "UPDATE subscriptions SET removed_at = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Subscriptions owned by a profile, oldest first.
    pub async fn subscriptions(&self, owner: String) -> Result<Vec<Subscription>> {
        self.call(move |conn| {
            let list = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM subscriptions
                     WHERE owner_profile = ?1 AND removed_at IS NULL ORDER BY created_at, id"
                ))?
                .query_map([owner], subscription)?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
        .await
    }

    /// Up to `limit` undelivered notifications for the profiles' subscriptions with event ids
    /// above `after`, in event order.
    pub async fn pending_notifications(
        &self,
        profiles: Vec<String>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(Subscription, Event)>> {
        self.call(move |conn| {
            let columns = COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
            let event_columns =
                rows::EVENT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT {columns}, {event_columns}
                 FROM subscriptions s JOIN events e ON e.task_id = s.task_id AND e.id > s.cursor
                 WHERE s.removed_at IS NULL
                   AND s.owner_profile IN (SELECT value FROM json_each(?1))
                   AND e.id > ?2
                   AND e.kind IN (SELECT value FROM json_each(CASE s.mode WHEN 'final' THEN ?3 ELSE ?4 END))
                 ORDER BY e.id, s.id LIMIT ?5"
            );
            let list = |kinds: &[&str]| serde_json::to_string(kinds).expect("kinds encode");
            let found = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        rows::list_json(&profiles),
                        after,
                        list(Mode::Final.kinds()),
                        list(Mode::Every.kinds()),
                        limit
                    ],
                    |row| {
                        let s = subscription(row)?;
                        let e = Event {
                            id: row.get(9)?,
                            board: row.get(10)?,
                            task_id: row.get(11)?,
                            kind: row.get(12)?,
                            actor: row.get(13)?,
                            details: serde_json::from_str(&row.get::<_, String>(14)?).unwrap_or_default(),
                            created_at: row.get(15)?,
                        };
                        Ok((s, e))
                    },
                )?
                .collect::<Result<_, _>>()?;
            Ok(found)
        })
        .await
    }

    /// Acknowledges delivery up to `event_id`; returns the new cursor and whether the
    /// subscription was removed (a `final` one whose end was acknowledged).
    pub async fn ack(&self, id: String, event_id: i64) -> Result<(i64, bool)> {
        self.write(move |tx, _| {
            let sub = load(tx, &id)?;
            let latest = events::latest_id(tx)?;
            if event_id > latest {
                return Err(Error::invalid(
                    "event_id",
                    format!("{event_id} is beyond the newest event {latest}"),
                ));
            }
            let cursor = sub.cursor.max(event_id);
            let ended: bool = sub.mode == Mode::Final
                && tx
                    .prepare_cached(
                        "SELECT count(*) > 0 FROM events
                         WHERE task_id = ?1 AND id > ?2 AND id <= ?3
                           AND kind IN (SELECT value FROM json_each(?4))",
                    )?
                    .query_row(
                        params![
                            sub.task_id,
                            sub.cursor,
                            cursor,
                            serde_json::to_string(FINAL_KINDS).expect("kinds encode")
                        ],
                        |row| row.get(0),
                    )?;
            tx.execute(
                "UPDATE subscriptions SET cursor = ?2,
                        removed_at = CASE WHEN ?3 THEN ?4 ELSE removed_at END
                 WHERE id = ?1",
                params![id, cursor, ended, now_ms()],
            )?;
            Ok((cursor, ended))
        })
        .await
    }
}
