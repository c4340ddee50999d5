//! Webhooks and their deliveries. A dispatcher turns the event log into pending deliveries,
//! moving its durable position in the same transaction; senders claim them under a lease, one
//! webhook's oldest pending delivery at a time (PostgreSQL skips rows another claim is taking;
//! SQLite has one writer), and record each attempt only while they hold the claim.

use async_trait::async_trait;
use hark_api::{AttemptState, EventData, EventType};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::positions::FanOut;
use super::{Backend, SqlRepo, missing_reference};
use crate::db::rows::corrupt;
use crate::db::{DbError, Dispatched, WebhookRepo};
use crate::domain::ids::WebhookId;
use crate::domain::{
    Attempt, AttemptRecord, ClaimedDelivery, LoggedEvent, Next, Timestamp, UserId, Webhook,
};

/// A delivery a claim may take now: pending, due, held by no live lease, and the oldest
/// pending one of its webhook (`$3` is now).
const CLAIMABLE: &str = "d.status = 'pending' AND d.next_attempt_at <= $3 \
     AND (d.lease_expires_at IS NULL OR d.lease_expires_at < $3) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.webhook_id = d.webhook_id \
     AND p.status = 'pending' AND p.seq < d.seq)";

/// A pending delivery of each event `events` picks (`$3` is now) to every webhook that wants
/// its type, whose owner is in its audience, and that existed before it.
fn deliveries_of(events: &str) -> FanOut {
    FanOut {
        into: "webhook_deliveries (webhook_id, seq, status, attempts, next_attempt_at)",
        rows: format!(
            "SELECT w.id, e.seq, 'pending', 0, $3 FROM events e \
             JOIN event_audience a ON a.seq = e.seq \
             JOIN webhooks w ON w.user_id = a.user_id AND w.after_seq < e.seq \
             JOIN webhook_event_types t ON t.webhook_id = w.id AND t.event_type = e.type \
             WHERE {events}"
        ),
    }
}

/// A webhook's row joined with one of its event types.
type WebhookRow = (String, String, String, i64, Option<String>);

/// A claimed delivery's row: webhook, url, secret, seq, attempts, and the event.
type ClaimRow = (
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

/// An attempt's row with its event's id and type.
type AttemptRow = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
    String,
);

/// Folds rows of webhooks joined with their event types, in webhook order.
fn webhooks_from(rows: Vec<WebhookRow>) -> Result<Vec<Webhook>, DbError> {
    let mut webhooks: Vec<Webhook> = Vec::new();
    for (id, owner, url, created_at, event_type) in rows {
        if webhooks.last().is_none_or(|w| w.id.to_string() != id) {
            webhooks.push(Webhook {
                id: WebhookId::parse(&id).ok_or_else(|| corrupt("webhook id", &id))?,
                owner_id: UserId::parse(&owner).ok_or_else(|| corrupt("webhook owner", &owner))?,
                url,
                events: Vec::new(),
                created_at: Timestamp(created_at),
            });
        }
        if let (Some(webhook), Some(kind)) = (webhooks.last_mut(), event_type) {
            let kind = EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?;
            webhook.events.push(kind);
        }
    }
    Ok(webhooks)
}

fn claimed_delivery(row: ClaimRow, lease_id: &str) -> Result<ClaimedDelivery, DbError> {
    let (webhook, url, secret, seq, attempts, event_id, kind, payload, created_at) = row;
    let payload = serde_json::from_str(&payload).map_err(|_| corrupt("payload", &payload))?;
    let data = EventData::from_parts(&kind, payload).map_err(|_| corrupt("event", &kind))?;
    Ok(ClaimedDelivery {
        webhook_id: WebhookId::parse(&webhook).ok_or_else(|| corrupt("webhook id", &webhook))?,
        url,
        secret,
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

fn attempt_record(row: AttemptRow) -> Result<AttemptRecord, DbError> {
    let (seq, event_id, kind, attempt, status, error, attempted_at, next, state) = row;
    Ok(AttemptRecord {
        event_id,
        event_seq: seq,
        event_type: EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?,
        attempt: u32::try_from(attempt).unwrap_or_default(),
        status_code: status.and_then(|s| u16::try_from(s).ok()),
        error,
        attempted_at: Timestamp(attempted_at),
        next_attempt_at: next.map(Timestamp),
        state: AttemptState::parse(&state).ok_or_else(|| corrupt("attempt state", &state))?,
    })
}

impl<DB> SqlRepo<DB>
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
    /// The owner's webhooks (only `id`, when given), with their event types.
    async fn webhooks_owned(
        &self,
        owner: UserId,
        id: Option<WebhookId>,
    ) -> Result<Vec<Webhook>, DbError> {
        let mut select = QueryBuilder::<DB>::new(
            "SELECT w.id, w.user_id, w.url, w.created_at, t.event_type FROM webhooks w \
             LEFT JOIN webhook_event_types t ON t.webhook_id = w.id WHERE w.user_id = ",
        );
        select.push_bind(owner.to_string());
        if let Some(id) = id {
            select.push(" AND w.id = ").push_bind(id.to_string());
        }
        select.push(" ORDER BY w.created_at, w.id, t.event_type");
        let rows: Vec<WebhookRow> = select.build_query_as().fetch_all(&self.pool).await?;
        webhooks_from(rows)
    }
}

#[async_trait]
impl<DB> WebhookRepo for SqlRepo<DB>
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
    async fn create_webhook(&self, webhook: &Webhook, secret: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        // No event commits between reading the log's end and this commit: the webhook gets
        // exactly the events after it.
        DB::lock_event_log(&mut tx).await?;
        sqlx::query(
            "INSERT INTO webhooks (id, user_id, url, secret, after_seq, created_at) \
             SELECT $1, $2, $3, $4, COALESCE(MAX(seq), 0), $5 FROM events",
        )
        .bind(webhook.id.to_string())
        .bind(webhook.owner_id.to_string())
        .bind(webhook.url.clone())
        .bind(secret.to_owned())
        .bind(webhook.created_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(|e| missing_reference(e.into()))?;
        let mut insert =
            QueryBuilder::<DB>::new("INSERT INTO webhook_event_types (webhook_id, event_type) ");
        insert.push_values(&webhook.events, |mut row, kind| {
            row.push_bind(webhook.id.to_string())
                .push_bind(kind.as_str().to_owned());
        });
        insert.push(" ON CONFLICT DO NOTHING");
        insert.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhooks_of(&self, owner: UserId) -> Result<Vec<Webhook>, DbError> {
        self.webhooks_owned(owner, None).await
    }

    async fn webhook(&self, id: WebhookId, owner: UserId) -> Result<Option<Webhook>, DbError> {
        let mut found = self.webhooks_owned(owner, Some(id)).await?;
        Ok(found.pop())
    }

    async fn delete_webhook(&self, id: WebhookId, owner: UserId) -> Result<bool, DbError> {
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&deleted) > 0)
    }

    async fn attempts(
        &self,
        webhook: WebhookId,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, DbError> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT a.seq, e.id, e.type, a.attempt, a.status_code, a.error, a.attempted_at, \
             a.next_attempt_at, a.state FROM webhook_attempts a JOIN events e ON e.seq = a.seq \
             WHERE a.webhook_id = $1 \
             ORDER BY a.attempted_at DESC, a.seq DESC, a.attempt DESC LIMIT $2",
        )
        .bind(webhook.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(attempt_record).collect()
    }

    async fn dispatch_events(&self, consumer: &str, limit: i64) -> Result<Dispatched, DbError> {
        self.dispatch_from_log(
            consumer,
            limit,
            &deliveries_of("e.seq > $1 AND e.seq <= $2"),
        )
        .await
    }

    async fn dispatch_event(&self, seq: i64, id: &str) -> Result<u64, DbError> {
        self.dispatch_one(seq, id, &deliveries_of("e.seq = $1 AND e.id = $2"))
            .await
    }

    async fn claim_deliveries(
        &self,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, DbError> {
        let lease_id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_id = $1, \
             lease_expires_at = $2 \
             WHERE (webhook_id, seq) IN (SELECT d.webhook_id, d.seq FROM webhook_deliveries d \
             WHERE {CLAIMABLE} ORDER BY d.next_attempt_at, d.seq LIMIT $4{skip_locked})",
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
            "SELECT w.id, w.url, w.secret, d.seq, d.attempts, e.id, e.type, e.payload, \
             e.created_at FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             JOIN events e ON e.seq = d.seq WHERE d.lease_id = $1 ORDER BY d.seq",
        )
        .bind(lease_id.clone())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| claimed_delivery(row, &lease_id))
            .collect()
    }

    async fn record_attempt(
        &self,
        claim: &ClaimedDelivery,
        attempt: &Attempt,
    ) -> Result<bool, DbError> {
        let (status, next_attempt_at) = match attempt.next {
            Next::Delivered => ("delivered", attempt.attempted_at),
            Next::RetryAt(at) => ("pending", at),
            Next::Dead => ("dead", attempt.attempted_at),
        };
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, lease_id = NULL, \
             lease_expires_at = NULL WHERE webhook_id = $3 AND seq = $4 AND lease_id = $5 \
             AND status = 'pending'",
        )
        .bind(status.to_owned())
        .bind(next_attempt_at.micros())
        .bind(claim.webhook_id.to_string())
        .bind(claim.event.seq)
        .bind(claim.lease_id.clone())
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&moved) == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (webhook_id, seq, attempt, status_code, error, \
             attempted_at, next_attempt_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(claim.webhook_id.to_string())
        .bind(claim.event.seq)
        .bind(i64::from(claim.attempt))
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.clone())
        .bind(attempt.attempted_at.micros())
        .bind(attempt.next_attempt_at().map(Timestamp::micros))
        .bind(attempt.state().as_str().to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>, DbError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN d.lease_expires_at IS NULL THEN d.next_attempt_at \
             ELSE d.lease_expires_at END) FROM webhook_deliveries d \
             WHERE d.status = 'pending' AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
             WHERE p.webhook_id = d.webhook_id AND p.status = 'pending' AND p.seq < d.seq)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(due.map(Timestamp))
    }
}
