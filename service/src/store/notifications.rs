//! Durable notification subscriptions with a server-side cursor. Their writes make nothing
//! claimable, so they wake no dispatcher.

use tokio_rusqlite::rusqlite::{Connection, OptionalExtension as _, params};

use super::{
    Store,
    model::{Event, Mode, Subscription},
    rows::{self, EVENT_COLUMNS, SUBSCRIPTION_COLUMN_COUNT, SUBSCRIPTION_COLUMNS as COLUMNS},
    tx::{events, read},
};
use crate::{
    clock::now_ms,
    domain::{EventKind, ids},
    error::{Error, Result},
};

/// The stored names of `kinds`, as a JSON array for `json_each`.
fn kinds_json(kinds: &[EventKind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    serde_json::to_string(&names).expect("kinds encode")
}

fn load(conn: &Connection, id: &str) -> Result<Subscription> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE id = ?1 AND removed_at IS NULL"
    ))?
    .query_row([id], rows::subscription)
    .optional()?
    .ok_or_else(|| Error::not_found("subscription", id))
}

impl Store {
    /// Creates a subscription to a task's terminal events from now on.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn subscribe(&self, mut new: Subscription) -> Result<Subscription> {
        self.write_quietly(move |tx, _| {
            read::task(tx, &new.task_id)?;
            new.id = ids::fresh(ids::SUBSCRIPTION);
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
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn unsubscribe(&self, id: String) -> Result<()> {
        self.write_quietly(move |tx, _| {
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
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn subscriptions(&self, owner: String) -> Result<Vec<Subscription>> {
        self.call(move |conn| {
            let list = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM subscriptions
                     WHERE owner_profile = ?1 AND removed_at IS NULL ORDER BY created_at, id"
                ))?
                .query_map([owner], rows::subscription)?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
        .await
    }

    /// Up to `limit` undelivered notifications for the profiles' subscriptions with event ids
    /// above `after`, in event order.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn pending_notifications(
        &self,
        profiles: Vec<String>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(Subscription, Event)>> {
        self.call(move |conn| {
            let columns = rows::qualified("s", COLUMNS);
            let event_columns = rows::qualified("e", EVENT_COLUMNS);
            let sql = format!(
                "SELECT {columns}, {event_columns}
                 FROM subscriptions s JOIN events e ON e.task_id = s.task_id AND e.id > s.cursor
                 WHERE s.removed_at IS NULL
                   AND s.owner_profile IN (SELECT value FROM json_each(?1))
                   AND e.id > ?2
                   AND e.kind IN (SELECT value FROM json_each(CASE s.mode WHEN 'final' THEN ?3 ELSE ?4 END))
                 ORDER BY e.id, s.id LIMIT ?5"
            );
            let found = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        rows::list_json(&profiles),
                        after,
                        kinds_json(Mode::Final.kinds()),
                        kinds_json(Mode::Every.kinds()),
                        limit
                    ],
                    |row| Ok((rows::subscription(row)?, rows::event_at(row, SUBSCRIPTION_COLUMN_COUNT)?)),
                )?
                .collect::<Result<_, _>>()?;
            Ok(found)
        })
        .await
    }

    /// Acknowledges delivery up to `event_id`; returns the new cursor and whether the
    /// subscription was removed (a `final` one whose end was acknowledged).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn ack(&self, id: String, event_id: i64) -> Result<(i64, bool)> {
        self.write_quietly(move |tx, _| {
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
                            kinds_json(EventKind::FINAL)
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
