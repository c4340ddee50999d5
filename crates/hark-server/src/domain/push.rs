//! Web Push: a user's browser subscriptions, and the fate of one event pushed to one of them
//! (pending, then delivered or dead, or the subscription gone).

use super::ids::PushSubscriptionId;
use super::{LoggedEvent, Timestamp, UserId};

/// A browser's push subscription: the push service's endpoint and the browser's keys
/// (base64url, checked when it was registered).
#[derive(Debug, Clone, PartialEq)]
pub struct PushSubscription {
    pub id: PushSubscriptionId,
    pub owner_id: UserId,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at: Timestamp,
}

/// One event handed to a sender to push, under a lease: until it expires, no other sender
/// takes this message.
#[derive(Debug, Clone)]
pub struct ClaimedPush {
    pub subscription_id: PushSubscriptionId,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    /// The event (its audience is not read).
    pub event: LoggedEvent,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub lease_id: String,
}

/// What comes after an attempt to push a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PushFate {
    Delivered,
    RetryAt(Timestamp),
    /// Failed for good; the subscription's other messages go on.
    Dead,
    /// The push service no longer knows the subscription: it is deleted.
    Gone,
}

/// One attempt, as recorded on its message.
#[derive(Debug, Clone, PartialEq)]
pub struct PushAttempt {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub fate: PushFate,
}
