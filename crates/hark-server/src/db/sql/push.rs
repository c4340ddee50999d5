//! Push subscriptions and their messages. A dispatcher turns the event log into pending
//! messages, moving its durable position in the same transaction; senders claim due messages
//! under a lease (PostgreSQL skips rows another claim is taking; SQLite has one writer), and
//! record each attempt only while they hold the claim.

use async_trait::async_trait;
use hark_api::{EventData, EventType};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::positions::FanOut;
use super::{Backend, SqlRepo, missing_reference};
use crate::db::rows::corrupt;
use crate::db::{DbError, Dispatched, PushRepo};
use crate::domain::ids::PushSubscriptionId;
use crate::domain::{
    ClaimedPush, LoggedEvent, PushAttempt, PushFate, PushSubscription, Timestamp, UserId,
};

/// A subscription's row.
type SubscriptionRow = (String, String, String, String, String, i64);

/// A claimed message's row: subscription, endpoint, keys, seq, attempts, and the event.
type ClaimRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    i64,
);

/// A pending message of each event `events` picks (`$3` is now), when it is of the `types`, to
/// every subscription of each user in its audience made before it. `None` for no types.
fn messages_of(types: &[EventType], events: &str) -> Option<FanOut> {
    if types.is_empty() {
        return None;
    }
    // The type names are the server's own constants, never input.
    let types: Vec<String> = types.iter().map(|t| format!("'{}'", t.as_str())).collect();
    Some(FanOut {
        into: "push_messages (subscription_id, seq, status, attempts, next_attempt_at)",
        rows: format!(
            "SELECT s.id, e.seq, 'pending', 0, $3 FROM events e \
             JOIN event_audience a ON a.seq = e.seq \
             JOIN push_subscriptions s ON s.user_id = a.user_id AND s.after_seq < e.seq \
             WHERE {events} AND e.type IN ({})",
            types.join(", ")
        ),
    })
}

fn subscription(row: SubscriptionRow) -> Result<PushSubscription, DbError> {
    let (id, owner, endpoint, p256dh, auth, created_at) = row;
    Ok(PushSubscription {
        id: PushSubscriptionId::parse(&id).ok_or_else(|| corrupt("push subscription id", &id))?,
        owner_id: UserId::parse(&owner).ok_or_else(|| corrupt("subscription owner", &owner))?,
        endpoint,
        p256dh,
        auth,
        created_at: Timestamp(created_at),
    })
}

fn claimed_push(row: ClaimRow, lease_id: &str) -> Result<ClaimedPush, DbError> {
    let (id, endpoint, p256dh, auth, seq, attempts, event_id, kind, payload, created_at) = row;
    let payload = serde_json::from_str(&payload).map_err(|_| corrupt("payload", &payload))?;
    let data = EventData::from_parts(&kind, payload).map_err(|_| corrupt("event", &kind))?;
    Ok(ClaimedPush {
        subscription_id: PushSubscriptionId::parse(&id)
            .ok_or_else(|| corrupt("push subscription id", &id))?,
        endpoint,
        p256dh,
        auth,
        event: LoggedEvent {
            seq,
            id: event_id,
            created_at: Timestamp(created_at),
            data,
            audience: Vec::new(),
        },
        attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
        lease_id: lease_id.to_owned(),
    })
}

#[async_trait]
impl<DB> PushRepo for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn save_push_subscription(
        &self,
        new: &PushSubscription,
    ) -> Result<PushSubscription, DbError> {
        let mut tx = self.pool.begin().await?;
        // No event commits between reading the log's end and this commit: the subscription
        // gets exactly the events after it.
        DB::lock_event_log(&mut tx).await?;
        let row: SubscriptionRow = sqlx::query_as(
            "INSERT INTO push_subscriptions \
             (id, user_id, endpoint, p256dh, auth, after_seq, created_at) \
             SELECT $1, $2, $3, $4, $5, COALESCE(MAX(seq), 0), $6 FROM events WHERE true \
             ON CONFLICT (user_id, endpoint) \
             DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth \
             RETURNING id, user_id, endpoint, p256dh, auth, created_at",
        )
        .bind(new.id.to_string())
        .bind(new.owner_id.to_string())
        .bind(new.endpoint.clone())
        .bind(new.p256dh.clone())
        .bind(new.auth.clone())
        .bind(new.created_at.micros())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| missing_reference(e.into()))?;
        tx.commit().await?;
        subscription(row)
    }

    async fn push_subscriptions_of(&self, owner: UserId) -> Result<Vec<PushSubscription>, DbError> {
        let rows: Vec<SubscriptionRow> = sqlx::query_as(
            "SELECT id, user_id, endpoint, p256dh, auth, created_at FROM push_subscriptions \
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(owner.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(subscription).collect()
    }

    async fn delete_push_subscription(
        &self,
        id: PushSubscriptionId,
        owner: UserId,
    ) -> Result<bool, DbError> {
        let deleted = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&deleted) > 0)
    }

    async fn dispatch_push(
        &self,
        consumer: &str,
        types: &[EventType],
        limit: i64,
    ) -> Result<Dispatched, DbError> {
        let Some(fan_out) = messages_of(types, "e.seq > $1 AND e.seq <= $2") else {
            return Ok(Dispatched::default());
        };
        self.dispatch_from_log(consumer, limit, &fan_out).await
    }

    async fn dispatch_push_event(
        &self,
        types: &[EventType],
        seq: i64,
        id: &str,
    ) -> Result<u64, DbError> {
        let Some(fan_out) = messages_of(types, "e.seq = $1 AND e.id = $2") else {
            return Ok(0);
        };
        self.dispatch_one(seq, id, &fan_out).await
    }

    async fn claim_push_messages(
        &self,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedPush>, DbError> {
        let lease_id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE push_messages SET attempts = attempts + 1, lease_id = $1, \
             lease_expires_at = $2 \
             WHERE (subscription_id, seq) IN (SELECT m.subscription_id, m.seq \
             FROM push_messages m WHERE m.status = 'pending' AND m.next_attempt_at <= $3 \
             AND (m.lease_expires_at IS NULL OR m.lease_expires_at < $3) \
             ORDER BY m.next_attempt_at, m.seq LIMIT $4{skip_locked})",
            skip_locked = DB::SKIP_LOCKED
        )))
        .bind(lease_id.clone())
        .bind(lease_until.micros())
        .bind(Timestamp::now().micros())
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&claimed) == 0 {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "SELECT s.id, s.endpoint, s.p256dh, s.auth, m.seq, m.attempts, e.id, e.type, \
             e.payload, e.created_at FROM push_messages m \
             JOIN push_subscriptions s ON s.id = m.subscription_id \
             JOIN events e ON e.seq = m.seq WHERE m.lease_id = $1 ORDER BY m.seq",
        )
        .bind(lease_id.clone())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| claimed_push(row, &lease_id))
            .collect()
    }

    async fn record_push_attempt(
        &self,
        claim: &ClaimedPush,
        attempt: &PushAttempt,
    ) -> Result<bool, DbError> {
        let now = Timestamp::now();
        let (status, next_attempt_at) = match attempt.fate {
            PushFate::Delivered => ("delivered", now),
            PushFate::RetryAt(at) => ("pending", at),
            PushFate::Dead => ("dead", now),
            PushFate::Gone => {
                let deleted = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
                    .bind(claim.subscription_id.to_string())
                    .execute(&self.pool)
                    .await?;
                return Ok(DB::rows_affected(&deleted) > 0);
            }
        };
        let moved = sqlx::query(
            "UPDATE push_messages SET status = $1, next_attempt_at = $2, lease_id = NULL, \
             lease_expires_at = NULL, last_status_code = $3, last_error = $4 \
             WHERE subscription_id = $5 AND seq = $6 AND lease_id = $7 AND status = 'pending'",
        )
        .bind(status.to_owned())
        .bind(next_attempt_at.micros())
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.clone())
        .bind(claim.subscription_id.to_string())
        .bind(claim.event.seq)
        .bind(claim.lease_id.clone())
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&moved) > 0)
    }

    async fn next_push_due(&self) -> Result<Option<Timestamp>, DbError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_expires_at IS NULL THEN next_attempt_at \
             ELSE lease_expires_at END) FROM push_messages WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(due.map(Timestamp))
    }
}
