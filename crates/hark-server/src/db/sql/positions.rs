//! Consumers of the event log with a durable position: webhook deliveries and push messages
//! are made by one pass each, which reads the events after its position and moves it past
//! them in the transaction that makes their rows.

use sqlx::{Executor, IntoArguments};

use super::{Backend, SqlRepo};
use crate::db::{DbError, Dispatched};
use crate::domain::Timestamp;

impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
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
            sqlx::query(
                "INSERT INTO consumer_positions (name, seq) \
                 SELECT $1, COALESCE(MAX(seq), 0) FROM events ON CONFLICT (name) DO NOTHING",
            )
            .bind(consumer.to_owned())
            .execute(&mut *conn)
            .await?;
        }
        Err(DbError::Corrupt(format!("no position for {consumer}")))
    }

    /// In one transaction: reads up to `limit` events after the consumer's position, runs
    /// `fan_out` over them and moves the position past them. `fan_out` is an `INSERT` of the
    /// consumer's rows for the events with `$1 < seq <= $2`, due at `$3` (now); it MUST
    /// ignore rows that exist already.
    pub(super) async fn dispatch_from_log(
        &self,
        consumer: &str,
        limit: i64,
        fan_out: &str,
    ) -> Result<Dispatched, DbError> {
        let mut tx = self.pool.begin().await?;
        let position = Self::lock_position(&mut tx, consumer).await?;
        // Every event up to `last` is committed already (the log never lets a later commit
        // take a lower seq), so the next statement sees them all.
        let (last, events): (Option<i64>, i64) = sqlx::query_as(
            "SELECT MAX(seq), COUNT(*) FROM \
             (SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) batch",
        )
        .bind(position)
        .bind(limit)
        .fetch_one(&mut *tx)
        .await?;
        let Some(last) = last else {
            tx.rollback().await?;
            return Ok(Dispatched::default());
        };
        let made = sqlx::query(sqlx::AssertSqlSafe(fan_out.to_owned()))
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
}
