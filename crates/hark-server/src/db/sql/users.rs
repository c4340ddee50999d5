//! Users and their personal API keys.

use async_trait::async_trait;
use hark_api::Role;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};

use super::{Backend, SqlRepo, unique_violation};
use crate::db::rows::{ApiKeyRow, NoteRow, UserRow};
use crate::db::{
    ApiKeyRecord, ApiKeyRepo, DbError, DeletedNote, EffectsOf, NewApiKeyRecord, NewSession,
    NewUser, SessionRepo, UserRepo,
};
use crate::domain::ids::ApiKeyId;
use crate::domain::{Effects, NoteId, Timestamp, User, UserId};

#[async_trait]
impl<DB> UserRepo for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> UserRow: FromRow<'r, DB::Row>,
    for<'r> NoteRow: FromRow<'r, DB::Row>,
{
    #[tracing::instrument(skip_all)]
    async fn create_user(&self, user: NewUser) -> Result<User, DbError> {
        let row: UserRow = sqlx::query_as(
            "INSERT INTO users (id, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, email, password_hash, role, created_at",
        )
        .bind(user.id.to_string())
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.role.as_str().to_owned())
        .bind(user.created_at.micros())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                DbError::Conflict("email".into())
            } else {
                e.into()
            }
        })?;
        row.try_into()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, role, created_at FROM users WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, role, created_at FROM users WHERE email = $1",
        )
        .bind(email.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, DbError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, role, created_at FROM users ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(password_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(role.as_str().to_owned())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    #[tracing::instrument(skip_all, fields(user = %id))]
    async fn delete_user(
        &self,
        id: UserId,
        effects: &EffectsOf<'_, DeletedNote>,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        // A write first: on SQLite it takes the write lock at once.
        sqlx::query("DELETE FROM api_keys WHERE user_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let notes: Vec<String> = sqlx::query_scalar("SELECT id FROM notes WHERE owner_id = $1")
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        let mut caused = Effects::none();
        for note in notes.iter().filter_map(|n| NoteId::parse(n)) {
            if let Some(deleted) = Self::delete_note_in(&mut tx, note, id).await? {
                caused.extend(effects(&deleted));
            }
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        Self::commit_effects(&mut tx, &caused).await?;
        tx.commit().await?;
        self.announce_commit();
        Ok(DB::rows_affected(&done) > 0)
    }
}

#[async_trait]
impl<DB> ApiKeyRepo for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> UserRow: FromRow<'r, DB::Row>,
    for<'r> ApiKeyRow: FromRow<'r, DB::Row>,
{
    async fn create_api_key(&self, key: NewApiKeyRecord) -> Result<ApiKeyRecord, DbError> {
        let row: ApiKeyRow = sqlx::query_as(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, name, prefix, created_at, last_used_at",
        )
        .bind(key.id.to_string())
        .bind(key.user_id.to_string())
        .bind(key.name)
        .bind(key.prefix)
        .bind(key.key_hash)
        .bind(key.created_at.micros())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    async fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRecord>, DbError> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT id, name, prefix, created_at, last_used_at FROM api_keys \
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_api_key(&self, user: UserId, id: ApiKeyId) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, DbError> {
        let found: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT user_id, last_used_at FROM api_keys WHERE key_hash = $1")
                .bind(key_hash.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        let Some((user_id, last_used)) = found else {
            return Ok(None);
        };
        let now = Timestamp::now();
        // Record the use at most once a minute: reads must not each cost a write.
        if last_used.is_none_or(|t| t < now.plus_seconds(-60).micros()) {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1")
                .bind(key_hash.to_owned())
                .bind(now.micros())
                .execute(&self.pool)
                .await?;
        }
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, role, created_at FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }
}

#[async_trait]
impl<DB> SessionRepo for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> UserRow: FromRow<'r, DB::Row>,
{
    async fn create_session(&self, session: NewSession) -> Result<(), DbError> {
        let user = session.user_id.to_string();
        let mut tx = self.pool.begin().await?;
        // Sign-ins are rare next to reads: a good moment to forget ended sessions.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(session.created_at.micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(session.id_hash)
        .bind(user)
        .bind(session.created_at.micros())
        .bind(session.expires_at.micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<User>, DbError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.password_hash, u.role, u.created_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash.to_owned())
        .bind(now.micros())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_sessions_of(&self, user: UserId) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
