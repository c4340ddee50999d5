//! Web Push on the wire: the server's VAPID public key, and a user's browser subscriptions.
//!
//! Each `note.received`, `note.ready` and `note.listened` event a user is in the audience of
//! is pushed to every one of their subscriptions as an RFC 8030 push message, encrypted per
//! RFC 8291 (`aes128gcm`) and signed per RFC 8292 (VAPID). Decrypted, its payload is the JSON
//! of [`crate::Event`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /api/v1/push/key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushKey {
    /// The server's VAPID public key: an uncompressed P-256 point, base64url without padding.
    /// Browsers subscribe with it as `applicationServerKey`.
    pub public_key: String,
}

/// `POST /api/v1/push/subscriptions`: what `PushSubscription.toJSON()` gives a page. Other
/// fields (such as `expirationTime`) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewPushSubscription {
    /// The push service's URL for this browser: `http` or `https`, on a public address.
    #[schema(max_length = 2048)]
    pub endpoint: String,
    pub keys: PushSubscriptionKeys,
}

/// The browser's half of the encryption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushSubscriptionKeys {
    /// The browser's P-256 public key, uncompressed, base64url.
    pub p256dh: String,
    /// The browser's 16-byte auth secret, base64url.
    pub auth: String,
}

/// A registered subscription (its keys are not shown again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushSubscription {
    pub id: String,
    pub endpoint: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// `GET /api/v1/push/subscriptions`: the caller's subscriptions, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushSubscriptionList {
    pub items: Vec<PushSubscription>,
}
