//! Webhooks: a user's endpoint for the events they are in the audience of, and the state
//! machine of delivering one event to it (pending, then delivered or dead, each attempt kept).

use hark_api::{AttemptState, EventType};

use super::ids::WebhookId;
use super::{LoggedEvent, Timestamp, UserId};

/// A webhook, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub owner_id: UserId,
    pub url: String,
    /// Sorted, without duplicates.
    pub events: Vec<EventType>,
    pub created_at: Timestamp,
}

/// One event handed to a sender to deliver, under a lease: until it expires, no other sender
/// takes this delivery or a later one of the same webhook.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub webhook_id: WebhookId,
    pub url: String,
    pub secret: String,
    /// The event (its audience is not read).
    pub event: LoggedEvent,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub lease_id: String,
}

/// What comes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Delivered,
    RetryAt(Timestamp),
    /// Failed for good: the webhook's later deliveries go on.
    Dead,
}

/// One attempt, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub attempted_at: Timestamp,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub next: Next,
}

impl Attempt {
    pub fn state(&self) -> AttemptState {
        match self.next {
            Next::Delivered => AttemptState::Delivered,
            Next::RetryAt(_) => AttemptState::Retrying,
            Next::Dead => AttemptState::Dead,
        }
    }

    pub fn next_attempt_at(&self) -> Option<Timestamp> {
        match self.next {
            Next::RetryAt(at) => Some(at),
            Next::Delivered | Next::Dead => None,
        }
    }
}

/// A recorded attempt with the event it tried to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub event_id: String,
    pub event_seq: i64,
    pub event_type: EventType,
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub attempted_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    pub state: AttemptState,
}
