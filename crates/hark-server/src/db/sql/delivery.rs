//! Channels, their members, and inboxes. Inbox entries are written as effects (see
//! `events.rs`); here they are read and marked listened.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Type};

use super::{Backend, SqlRepo, missing_reference, unique_violation};
use crate::db::rows::{InboxRow, NoteRow};
use crate::db::{DbError, DeliveryRepo, EffectsOf};
use crate::domain::{Channel, InboxEntry, InboxQuery, Listened, NoteId, Timestamp, UserId};

#[async_trait]
impl<DB> DeliveryRepo for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> InboxRow: FromRow<'r, DB::Row>,
    for<'r> NoteRow: FromRow<'r, DB::Row>,
{
    async fn create_channel(&self, name: &str, creator: UserId) -> Result<Channel, DbError> {
        let created_at = Timestamp::now();
        sqlx::query("INSERT INTO channels (name, creator_id, created_at) VALUES ($1, $2, $3)")
            .bind(name.to_owned())
            .bind(creator.to_string())
            .bind(created_at.micros())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if unique_violation(&e) {
                    DbError::Conflict("channel".into())
                } else {
                    missing_reference(e.into())
                }
            })?;
        // Read back with the creator's email.
        self.channel(name)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("channel {name} just made is missing")))
    }

    async fn channel(&self, name: &str) -> Result<Option<Channel>, DbError> {
        let mut channels = self.channels_where("c.name = $1", name.to_owned()).await?;
        Ok(channels.pop())
    }

    async fn channels_of(&self, user: UserId) -> Result<Vec<Channel>, DbError> {
        self.channels_where(
            "c.creator_id = $1 OR c.name IN \
             (SELECT channel FROM channel_members WHERE user_id = $1)",
            user.to_string(),
        )
        .await
    }

    async fn add_member(&self, channel: &str, user: UserId) -> Result<bool, DbError> {
        let done = sqlx::query(
            "INSERT INTO channel_members (channel, user_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(channel.to_owned())
        .bind(user.to_string())
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(|e| missing_reference(e.into()))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn remove_member(&self, channel: &str, user: UserId) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM channel_members WHERE channel = $1 AND user_id = $2")
            .bind(channel.to_owned())
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, DbError> {
        let mut select = QueryBuilder::<DB>::new(
            "SELECT * FROM (SELECT n.*, i.sender_id AS inbox_sender_id, \
             u.email AS inbox_sender_email, i.channel AS inbox_channel, \
             i.delivered_at AS inbox_delivered_at, i.listened_at AS inbox_listened_at, \
             i.seq AS inbox_seq \
             FROM inbox_entries i JOIN notes n ON n.id = i.note_id \
             JOIN users u ON u.id = i.sender_id \
             WHERE i.seq IS NOT NULL AND i.recipient_id = ",
        );
        select.push_bind(query.recipient.to_string());
        if let Some(since) = query.since {
            select.push(" AND i.seq > ").push_bind(since);
        }
        if let Some(sender) = query.sender {
            select
                .push(" AND i.sender_id = ")
                .push_bind(sender.to_string());
        }
        if query.unlistened {
            select.push(" AND i.listened_at IS NULL");
        }
        // After a position, the oldest entries past it, so that paging on never skips one.
        select.push(if query.since.is_some() {
            " ORDER BY i.seq, n.id LIMIT "
        } else {
            " ORDER BY i.seq DESC, n.id DESC LIMIT "
        });
        select.push_bind(i64::from(query.limit));
        select.push(") page ORDER BY inbox_seq DESC, id DESC");
        let rows: Vec<InboxRow> = select.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn inbox_position(&self, recipient: UserId) -> Result<i64, DbError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM inbox_entries WHERE recipient_id = $1")
                .bind(recipient.to_string())
                .fetch_one(&self.pool)
                .await?;
        Ok(position.unwrap_or(0))
    }

    async fn readers_of(&self, note: NoteId) -> Result<Vec<UserId>, DbError> {
        let readers: Vec<String> = sqlx::query_scalar(
            "SELECT owner_id FROM notes WHERE id = $1 \
             UNION SELECT recipient_id FROM inbox_entries WHERE note_id = $1",
        )
        .bind(note.to_string())
        .fetch_all(&self.pool)
        .await?;
        readers
            .iter()
            .map(|id| UserId::parse(id).ok_or_else(|| DbError::Corrupt(format!("user id {id}"))))
            .collect()
    }

    async fn mark_listened(
        &self,
        note: NoteId,
        listener: UserId,
        effects: &EffectsOf<'_, Listened>,
    ) -> Result<Option<bool>, DbError> {
        let mut tx = self.pool.begin().await?;
        // A write first: on SQLite it takes the write lock at once.
        let first: Option<String> = sqlx::query_scalar(
            "UPDATE inbox_entries SET listened_at = $1 \
             WHERE note_id = $2 AND recipient_id = $3 AND listened_at IS NULL \
             RETURNING sender_id",
        )
        .bind(Timestamp::now().micros())
        .bind(note.to_string())
        .bind(listener.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(sender) = first else {
            let received: Option<String> = sqlx::query_scalar(
                "SELECT note_id FROM inbox_entries WHERE note_id = $1 AND recipient_id = $2",
            )
            .bind(note.to_string())
            .bind(listener.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(received.map(|_| false));
        };
        let sender_id =
            UserId::parse(&sender).ok_or_else(|| DbError::Corrupt(format!("sender {sender}")))?;
        let listened = Listened {
            note_id: note,
            sender_id,
            listener_id: listener,
        };
        Self::commit_effects(&mut tx, &effects(&listened)).await?;
        tx.commit().await?;
        self.announce_commit();
        Ok(Some(true))
    }
}

impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Channels matching `condition` (on `c`, with `$1` bound to `value`), with their members.
    async fn channels_where(
        &self,
        condition: &str,
        value: String,
    ) -> Result<Vec<Channel>, DbError> {
        type Row = (String, String, String, i64, Option<String>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.name, c.creator_id, cu.email, c.created_at, m.user_id, mu.email \
             FROM channels c JOIN users cu ON cu.id = c.creator_id \
             LEFT JOIN channel_members m ON m.channel = c.name \
             LEFT JOIN users mu ON mu.id = m.user_id \
             WHERE {condition} ORDER BY c.name, m.added_at, m.user_id"
        )))
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        let mut channels: Vec<Channel> = Vec::new();
        for (name, creator, creator_email, created_at, member, member_email) in rows {
            if channels.last().is_none_or(|c| c.name != name) {
                let creator_id = UserId::parse(&creator)
                    .ok_or_else(|| DbError::Corrupt(format!("channel creator {creator}")))?;
                channels.push(Channel {
                    name,
                    creator_id,
                    creator_email,
                    created_at: Timestamp(created_at),
                    members: Vec::new(),
                    member_emails: Vec::new(),
                });
            }
            if let (Some(channel), Some(member), Some(email)) =
                (channels.last_mut(), member, member_email)
            {
                let member = UserId::parse(&member)
                    .ok_or_else(|| DbError::Corrupt(format!("channel member {member}")))?;
                channel.members.push(member);
                channel.member_emails.push(email);
            }
        }
        Ok(channels)
    }
}
