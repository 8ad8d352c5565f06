//! Bearer tokens, kept as hashes: what [`crate::auth::TokenBook`] loads at start-up and writes
//! through when a token is created or revoked.

use tokio_rusqlite::rusqlite::{self, OptionalExtension as _, Row, params};

use super::{Store, model::TokenRecord, rows};
use crate::{
    auth::Role,
    clock::now_ms,
    error::{Error, Result},
};

const COLUMNS: &str =
    "id, name, role, machine_id, profiles, created_at, revoked_at, expires_at, hash";

/// A token row selected with [`COLUMNS`], with its hash.
fn token(row: &Row<'_>) -> rusqlite::Result<(TokenRecord, String)> {
    let role: String = row.get(2)?;
    let role = Role::parse(&role).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            format!("unknown role {role:?}").into(),
        )
    })?;
    Ok((
        TokenRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            role,
            machine_id: row.get(3)?,
            profiles: rows::json(row, 4)?,
            created_at: row.get(5)?,
            revoked_at: row.get(6)?,
            expires_at: row.get(7)?,
        },
        row.get(8)?,
    ))
}

impl Store {
    /// Every token, revoked ones included, with its hash; oldest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn tokens(&self) -> Result<Vec<(TokenRecord, String)>> {
        self.call(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM tokens ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([], token)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Stores a new token by its hash; a token of the same name that is not revoked (expired
    /// or not) is refused.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn insert_token(&self, record: TokenRecord, hash: String) -> Result<TokenRecord> {
        self.write_quietly(move |tx, _| {
            let taken: Option<(String, Option<i64>)> = tx
                .query_row(
                    "SELECT id, expires_at FROM tokens WHERE name = ?1 AND revoked_at IS NULL",
                    [&record.name],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            if let Some((id, expires_at)) = taken {
                let which = match expires_at {
                    Some(at) if at <= record.created_at => "an expired token",
                    _ => "a live token",
                };
                return Err(Error::AlreadyExists(format!(
                    "{which} is already named {:?} ({id}); revoke it (kanbanctl token revoke \
                     {id}) or pick another name",
                    record.name
                )));
            }
            tx.execute(
                &format!(
                    "INSERT INTO tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)"
                ),
                params![
                    record.id,
                    record.name,
                    record.role.as_str(),
                    record.machine_id,
                    rows::list_json(&record.profiles),
                    record.created_at,
                    record.expires_at,
                    hash
                ],
            )?;
            Ok(record)
        })
        .await
    }

    /// Marks the token with this id (or, failing that, this name) revoked, if it is not yet
    /// (an expired token may be revoked, which frees its name); returns it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn revoke_token(&self, id_or_name: String) -> Result<(TokenRecord, String)> {
        self.write_quietly(move |tx, _| {
            let found = tx
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM tokens WHERE revoked_at IS NULL
                         AND (id = ?1 OR name = ?1) ORDER BY id = ?1 DESC LIMIT 1"
                    ),
                    [&id_or_name],
                    token,
                )
                .optional()?;
            let Some((mut record, hash)) = found else {
                return Err(Error::not_found("unrevoked token", id_or_name));
            };
            let now = now_ms();
            tx.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1",
                params![record.id, now],
            )?;
            record.revoked_at = Some(now);
            Ok((record, hash))
        })
        .await
    }
}

impl Store {
    /// The task of the claim `token`, live or ended (`None` if no claim ever had it): a claim
    /// token is its worker's credential, fenced by the holder verbs themselves.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn claim_task(&self, token: String) -> Result<Option<String>> {
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT task_id FROM claims WHERE token = ?1",
                    [token],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }
}
