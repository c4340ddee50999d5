//! Consumers' durable positions in the event log. Webhook deliveries and push messages are
//! made by one pass each, which reads the events after its position and moves it past them in
//! the transaction that makes their rows; the same rows of one event can be made apart from the
//! log (for an event that comes from the broker) without moving a position.
//!
//! A pass that would make no rows writes nothing until a whole batch of events is behind it:
//! most events are for no webhook and no subscription, and a write per pass would take
//! SQLite's one write lock, and a WAL sync, from the uploads that made those events.
//!
//! A consumer that must run once at a time (the broker relay) holds its position under a
//! lease, taken with one conditional `UPDATE`, never a transaction held open while the holder
//! works: on SQLite that would hold the one write lock, and every upload with it.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::{Backend, SqlRepo};
use crate::db::{DbError, Dispatched, PositionLeases};
use crate::domain::Timestamp;

/// A consumer's fan-out: `rows` is a `SELECT` of the rows to make of the events it picks, with
/// `$3` now; `into` is the table and columns they go to. Making them MUST ignore rows that
/// exist already, so that running it again over the same events makes nothing more.
pub(super) struct FanOut {
    pub into: &'static str,
    pub rows: String,
}

impl FanOut {
    /// The statement that makes the rows.
    fn insert(&self) -> String {
        format!(
            "INSERT INTO {} {} ON CONFLICT DO NOTHING",
            self.into, self.rows
        )
    }

    /// A query answering 1 when there is a row to make, else 0.
    fn any(&self) -> String {
        format!("SELECT COUNT(*) FROM ({} LIMIT 1) fan_out", self.rows)
    }
}

impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Decode<'q, DB> + Type<DB>,
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

    /// The consumer's position, locked until the transaction ends (a write, so that on
    /// SQLite the transaction holds the write lock from here on). A new consumer starts at
    /// the log's end.
    async fn lock_position(conn: &mut DB::Connection, consumer: &str) -> Result<i64, DbError> {
        for _ in 0..2 {
            let position: Option<i64> = sqlx::query_scalar(
                "UPDATE consumer_positions SET seq = seq WHERE name = $1 RETURNING seq",
            )
            .bind(consumer.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(position) = position {
                return Ok(position);
            }
            Self::create_position(conn, consumer).await?;
        }
        Err(DbError::Corrupt(format!("no position for {consumer}")))
    }

    /// Up to `limit` events after `position`: the last one's `seq` and how many.
    async fn batch_after<'e, E>(
        executor: E,
        position: i64,
        limit: i64,
    ) -> Result<(Option<i64>, i64), DbError>
    where
        E: Executor<'e, Database = DB>,
    {
        Ok(sqlx::query_as(
            "SELECT MAX(seq), COUNT(*) FROM \
             (SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) batch",
        )
        .bind(position)
        .bind(limit)
        .fetch_one(executor)
        .await?)
    }

    /// Reads up to `limit` events after the consumer's position and, in one transaction, makes
    /// their rows by `fan_out` (over the events with `$1 < seq <= $2`) and moves the position
    /// past them. When they make no rows and are fewer than `limit`, it only reads: the next
    /// pass reads them again, until rows are to be made or a whole batch is behind.
    pub(super) async fn dispatch_from_log(
        &self,
        consumer: &str,
        limit: i64,
        fan_out: &FanOut,
    ) -> Result<Dispatched, DbError> {
        if let Some(read) = self.read_ahead(consumer, limit, fan_out).await? {
            return Ok(read);
        }
        let mut tx = self.pool.begin().await?;
        let position = Self::lock_position(&mut tx, consumer).await?;
        // Every event up to `last` is committed already (the log never lets a later commit
        // take a lower seq), so the next statement sees them all.
        let (last, events) = Self::batch_after(&mut *tx, position, limit).await?;
        let Some(last) = last else {
            tx.rollback().await?;
            return Ok(Dispatched::default());
        };
        let made = sqlx::query(sqlx::AssertSqlSafe(fan_out.insert()))
            .bind(position)
            .bind(last)
            .bind(Timestamp::now().micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE consumer_positions SET seq = $1 WHERE name = $2")
            .bind(last)
            .bind(consumer.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Dispatched {
            events: u64::try_from(events).unwrap_or_default(),
            deliveries: DB::rows_affected(&made),
        })
    }

    /// The pass, when it may only read: the events after the position are fewer than `limit`
    /// and make no rows. `None` when it must write (or the consumer has no position yet).
    async fn read_ahead(
        &self,
        consumer: &str,
        limit: i64,
        fan_out: &FanOut,
    ) -> Result<Option<Dispatched>, DbError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM consumer_positions WHERE name = $1")
                .bind(consumer.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        let Some(position) = position else {
            return Ok(None);
        };
        let (last, events) = Self::batch_after(&self.pool, position, limit).await?;
        let Some(last) = last else {
            return Ok(Some(Dispatched::default()));
        };
        if events >= limit {
            return Ok(None);
        }
        let any: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(fan_out.any()))
            .bind(position)
            .bind(last)
            .bind(Timestamp::now().micros())
            .fetch_one(&self.pool)
            .await?;
        Ok((any == 0).then(|| Dispatched {
            events: u64::try_from(events).unwrap_or_default(),
            deliveries: 0,
        }))
    }

    /// Runs `fan_out` for the one event with this `seq` and `id`, moving no position: the
    /// consumer's `INSERT` as `dispatch_from_log` runs it, but of the event with `seq = $1`
    /// and `id = $2`, due at `$3` (now). Answers how many rows it made: none when they exist
    /// already or the log has no such event.
    pub(super) async fn dispatch_one(
        &self,
        seq: i64,
        id: &str,
        fan_out: &FanOut,
    ) -> Result<u64, DbError> {
        let made = sqlx::query(sqlx::AssertSqlSafe(fan_out.insert()))
            .bind(seq)
            .bind(id.to_owned())
            .bind(Timestamp::now().micros())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&made))
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
    for<'q> Option<i64>: Decode<'q, DB> + Type<DB>,
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
