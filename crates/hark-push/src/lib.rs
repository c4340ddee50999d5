//! Web Push for Hark: what to send to a browser's push subscription, and what the push service's
//! answer means.
//!
//! The crate does no HTTP. [`build_request`] turns an event payload into a [`PushRequest`] (URL,
//! headers, encrypted body) that the server sends with its own client, and [`classify`] turns the
//! status it gets back into a [`PushOutcome`]. Keeping the network out makes every step here a pure
//! function of its inputs, testable byte for byte against the RFCs:
//!
//! - RFC 8030: the push message and its `TTL`, `Urgency` and `Topic` headers;
//! - RFC 8291 with RFC 8188: the `aes128gcm` encryption only the subscriber's browser can undo;
//! - RFC 8292: VAPID, the signed token that tells the push service who is sending.

mod base64url;
mod encrypt;
mod outcome;
mod request;
mod subscription;
mod vapid;

pub use encrypt::MAX_PAYLOAD_LEN;
pub use outcome::{PushOutcome, classify};
pub use request::{PushOptions, PushRequest, Urgency, build_request};
pub use subscription::{Subscription, SubscriptionKeys};
pub use vapid::{VapidKey, check_subject};

/// What can be wrong with the inputs of a push message. Every variant is the caller's input, never
/// a transient failure: retrying with the same inputs gives the same error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    /// The stored VAPID private key cannot be read.
    #[error("the VAPID private key is unusable: {0}")]
    InvalidVapidKey(&'static str),
    /// One field of a browser's push subscription is wrong; `field` is its JSON path.
    #[error("the push subscription's {field} {reason}")]
    InvalidSubscription { field: &'static str, reason: String },
    /// The VAPID `sub` claim must let the push service's operator reach the sender.
    #[error("the push subject must be a mailto: or https: URL, not {0:?}")]
    InvalidSubject(String),
    /// RFC 8030 topics are at most 32 characters of the base64url alphabet.
    #[error("the push topic must be 1 to 32 characters from A-Z a-z 0-9 - _, not {0:?}")]
    InvalidTopic(String),
    /// The encrypted message would not fit the 4096 bytes every push service must accept.
    #[error("the push payload is {len} bytes, more than the {max} that fit one push message")]
    PayloadTooLarge { len: usize, max: usize },
}
