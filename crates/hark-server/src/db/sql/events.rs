//! The event log: appended inside the transaction of the change it describes (the outbox),
//! with the other effects of that change.

use async_trait::async_trait;
use std::collections::HashMap;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::{Backend, ROWS_PER_STATEMENT, SqlRepo};
use crate::db::rows::EventRow;
use crate::db::{DbError, EventLog, Health};
use hark_api::events::{EventData, NoteReceived};

use crate::domain::{Delivery, Effects, LoggedEvent, NewEvent, Timestamp, UserId};

impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Appends `effects` inside the caller's transaction, a statement for many events at once
    /// (each statement is a round trip to the database). Call it last before the commit: on
    /// PostgreSQL it holds the event log's lock until then.
    pub(super) async fn commit_effects(
        conn: &mut DB::Connection,
        effects: &Effects,
    ) -> Result<(), DbError> {
        Self::queue_pipelines(conn, &effects.pipelines).await?;
        if effects.events.is_empty() && effects.deliveries.is_empty() {
            return Ok(());
        }
        DB::lock_event_log(conn).await?;
        let now = Timestamp::now().micros();
        Self::append_events(conn, &effects.events, now).await?;
        for delivery in &effects.deliveries {
            Self::deliver(conn, delivery, now).await?;
        }
        DB::announce_appends(conn).await?;
        Ok(())
    }

    /// Appends events with their audience; returns their `seq`s, in order.
    async fn append_events(
        conn: &mut DB::Connection,
        events: &[NewEvent],
        now: i64,
    ) -> Result<Vec<i64>, DbError> {
        let mut seqs = Vec::with_capacity(events.len());
        for events in events.chunks(ROWS_PER_STATEMENT) {
            let ids: Vec<String> = events
                .iter()
                .map(|_| uuid::Uuid::now_v7().to_string())
                .collect();
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO events (id, type, note_id, payload, created_at) ",
            );
            insert.push_values(events.iter().zip(&ids), |mut row, (event, id)| {
                row.push_bind(id.clone())
                    .push_bind(event.data.kind().as_str().to_owned())
                    .push_bind(Some(event.data.note_id().to_owned()))
                    .push_bind(event.data.payload_json().to_string())
                    .push_bind(now);
            });
            insert.push(" RETURNING id, seq");
            let appended: HashMap<String, i64> = insert
                .build_query_as::<(String, i64)>()
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect();
            let mut audience: Vec<(String, i64)> = Vec::new();
            for (event, id) in events.iter().zip(&ids) {
                let seq = appended.get(id).copied().ok_or_else(|| {
                    DbError::Corrupt(format!("event {id} was appended without a seq"))
                })?;
                seqs.push(seq);
                audience.extend(event.audience.iter().map(|user| (user.to_string(), seq)));
            }
            for rows in audience.chunks(ROWS_PER_STATEMENT) {
                let mut insert =
                    QueryBuilder::<DB>::new("INSERT INTO event_audience (user_id, seq) ");
                insert.push_values(rows, |mut row, (user, seq)| {
                    row.push_bind(user.clone()).push_bind(*seq);
                });
                insert.push(" ON CONFLICT DO NOTHING");
                insert.build().execute(&mut *conn).await?;
            }
        }
        Ok(seqs)
    }

    /// Gives the note an inbox entry with each recipient who does not have it yet, and those
    /// recipients one `note.received`, whose `seq` their entries keep.
    async fn deliver(
        conn: &mut DB::Connection,
        delivery: &Delivery,
        now: i64,
    ) -> Result<(), DbError> {
        let note = delivery.note_id.to_string();
        let mut reached: Vec<UserId> = Vec::new();
        for recipients in delivery.recipients.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO inbox_entries (recipient_id, note_id, sender_id, channel, delivered_at) ",
            );
            insert.push_values(recipients, |mut row, recipient| {
                row.push_bind(recipient.to_string())
                    .push_bind(note.clone())
                    .push_bind(delivery.sender_id.to_string())
                    .push_bind(delivery.channel.clone())
                    .push_bind(now);
            });
            insert.push(" ON CONFLICT DO NOTHING RETURNING recipient_id");
            let new: Vec<String> = insert.build_query_scalar().fetch_all(&mut *conn).await?;
            reached.extend(new.iter().filter_map(|id| UserId::parse(id)));
        }
        if reached.is_empty() {
            return Ok(());
        }
        let received = NewEvent {
            data: EventData::NoteReceived(NoteReceived {
                note_id: note.clone(),
                sender_id: delivery.sender_id.to_string(),
                title: delivery.title.clone(),
                channel: delivery.channel.clone(),
            }),
            audience: reached,
        };
        let seqs = Self::append_events(conn, std::slice::from_ref(&received), now).await?;
        let seq = seqs.first().copied().unwrap_or_default();
        sqlx::query("UPDATE inbox_entries SET seq = $1 WHERE note_id = $2 AND seq IS NULL")
            .bind(seq)
            .bind(note)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Commits `effects` in a transaction of their own, once `hold` resolves: lets a caller
    /// keep the transaction open (tests use it to commit appends out of order).
    pub async fn append_holding(
        &self,
        effects: &Effects,
        hold: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        Self::commit_effects(&mut tx, effects).await?;
        hold.await;
        tx.commit().await?;
        self.announce_commit();
        Ok(())
    }
}

#[async_trait]
impl<DB> EventLog for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> EventRow: sqlx::FromRow<'r, DB::Row>,
{
    async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<LoggedEvent>, DbError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT seq, id, type, payload, created_at FROM events \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let Some(last) = rows.last().map(|row| row.seq) else {
            return Ok(Vec::new());
        };
        let audience: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, user_id FROM event_audience WHERE seq > $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(seq)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let users = audience
                    .iter()
                    .filter(|(s, _)| *s == row.seq)
                    .filter_map(|(_, u)| UserId::parse(u))
                    .collect();
                row.into_event(users)
            })
            .collect()
    }

    async fn events_for(
        &self,
        user: UserId,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<LoggedEvent>, DbError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT e.seq, e.id, e.type, e.payload, e.created_at \
             FROM event_audience a JOIN events e ON e.seq = a.seq \
             WHERE a.user_id = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3",
        )
        .bind(user.to_string())
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| row.into_event(vec![user]))
            .collect()
    }

    async fn last_seq(&self) -> Result<i64, DbError> {
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(last.unwrap_or(0))
    }

    async fn append(&self, effects: &Effects) -> Result<(), DbError> {
        self.append_holding(effects, std::future::ready(())).await
    }

    fn appends(&self) -> std::sync::Arc<tokio::sync::Notify> {
        SqlRepo::appends(self)
    }
}

#[async_trait]
impl<DB> Health for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
