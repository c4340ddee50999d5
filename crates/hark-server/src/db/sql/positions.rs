//! Consumers' durable positions in the event log, and the leases that keep the position of a
//! consumer that must run once at a time (the broker relay) in one process's hands. A lease is
//! taken with one conditional `UPDATE`, never a transaction held open while the holder works:
//! on SQLite that would hold the one write lock, and every upload with it.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::{Backend, SqlRepo};
use crate::db::{DbError, PositionLeases};
use crate::domain::Timestamp;

impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Gives a consumer that has no position one at the log's end: it gets the events that
    /// commit from now on.
    pub(super) async fn create_position(
        conn: &mut DB::Connection,
        consumer: &str,
    ) -> Result<(), DbError> {
        // SQLite reads `ON` after `FROM events` as a join's unless a `WHERE` comes between.
        sqlx::query(
            "INSERT INTO consumer_positions (name, seq) \
             SELECT $1, COALESCE(MAX(seq), 0) FROM events WHERE true \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(consumer.to_owned())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The position, when `owner` may hold it (free, expired or its own), leased to `owner`.
    async fn take_lease(
        &self,
        consumer: &str,
        owner: &str,
        until: Timestamp,
    ) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "UPDATE consumer_positions SET lease_owner = $2, lease_until = $3 \
             WHERE name = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $4) \
             RETURNING seq",
        )
        .bind(consumer.to_owned())
        .bind(owner.to_owned())
        .bind(until.micros())
        .bind(Timestamp::now().micros())
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[async_trait]
impl<DB> PositionLeases for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn open_position(&self, consumer: &str) -> Result<i64, DbError> {
        let mut conn = self.pool.acquire().await?;
        Self::create_position(&mut conn, consumer).await?;
        Ok(
            sqlx::query_scalar("SELECT seq FROM consumer_positions WHERE name = $1")
                .bind(consumer.to_owned())
                .fetch_one(&mut *conn)
                .await?,
        )
    }

    async fn lease_position(
        &self,
        consumer: &str,
        owner: &str,
        until: Timestamp,
    ) -> Result<Option<i64>, DbError> {
        if let Some(position) = self.take_lease(consumer, owner, until).await? {
            return Ok(Some(position));
        }
        // Held by another, or no position yet.
        let mut conn = self.pool.acquire().await?;
        Self::create_position(&mut conn, consumer).await?;
        drop(conn);
        self.take_lease(consumer, owner, until).await
    }

    async fn advance_position(
        &self,
        consumer: &str,
        owner: &str,
        seq: i64,
        until: Timestamp,
    ) -> Result<bool, DbError> {
        let moved = sqlx::query(
            "UPDATE consumer_positions SET seq = $3, lease_until = $4 \
             WHERE name = $1 AND lease_owner = $2",
        )
        .bind(consumer.to_owned())
        .bind(owner.to_owned())
        .bind(seq)
        .bind(until.micros())
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&moved) > 0)
    }

    async fn release_position(&self, consumer: &str, owner: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE consumer_positions SET lease_owner = NULL, lease_until = NULL \
             WHERE name = $1 AND lease_owner = $2",
        )
        .bind(consumer.to_owned())
        .bind(owner.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
