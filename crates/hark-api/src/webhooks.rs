//! Webhooks on the wire: a user's endpoints, the event types each wants, and the record of
//! every delivery attempt.
//!
//! Each event is POSTed to the endpoint as the JSON of [`crate::Event`], signed per the
//! Standard Webhooks convention: `webhook-id` (the event's id, the same on every attempt),
//! `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature` (`v1,` and the
//! base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, keyed with the base64-decoded part of the
//! secret after `whsec_`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::EventType;

/// The headers every delivery carries.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";
/// What a webhook secret starts with; the rest is the base64 key.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// The largest page of `GET /api/v1/webhooks/{id}/deliveries`.
pub const MAX_DELIVERIES_PAGE: u32 = 500;

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewWebhook {
    /// An absolute `http` or `https` URL, at most 2048 characters, on a public address.
    #[schema(max_length = 2048)]
    pub url: String,
    /// The event types to deliver; at least one.
    #[schema(value_type = Vec<EventType>, min_items = 1)]
    pub events: Vec<String>,
}

/// A webhook as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A webhook just created: the only answer that ever carries its `secret`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `whsec_` and the base64 signing key: keep it to verify `webhook-signature`.
    pub secret: String,
}

/// `GET /api/v1/webhooks`: the caller's webhooks, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// Where a delivery stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// The endpoint answered 2xx: the event is never sent again.
    Delivered,
    /// It failed and is tried again at `next_attempt_at`.
    Retrying,
    /// It failed for good (a 4xx other than 408, 425 and 429, a refused address, or the last
    /// attempt): the webhook's later events go on.
    Dead,
}

impl AttemptState {
    pub const ALL: [AttemptState; 3] = [Self::Delivered, Self::Retrying, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Dead => "dead",
        }
    }
}

string_forms!(AttemptState);

/// One attempt to deliver one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub event_id: String,
    pub event_seq: i64,
    pub event_type: EventType,
    /// 1 for the first attempt of this event.
    pub attempt: u32,
    /// The endpoint's answer, when it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed without an answer (timeout, connection, refused address).
    pub error: Option<String>,
    /// RFC 3339, UTC.
    pub attempted_at: String,
    /// When the next attempt is due; `null` unless `state` is `retrying`.
    pub next_attempt_at: Option<String>,
    pub state: AttemptState,
}

/// `GET /api/v1/webhooks/{id}/deliveries`: attempts, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttemptList {
    pub items: Vec<DeliveryAttempt>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}
