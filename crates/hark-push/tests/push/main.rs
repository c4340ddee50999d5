//! Web Push messages checked from the other side: a push service written here from the RFCs, and
//! the browser of `hark_testkit::push`, which uses the crypto crates directly rather than
//! hark-push's own code.

mod encryption;
mod outcome;
mod subscription;
mod vapid;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hark_push::{PushOptions, Subscription, Urgency, VapidKey};
use hark_testkit::push::Browser;

pub const SUBJECT: &str = "mailto:hark@localhost";

/// A fixed clock, so token times can be compared exactly.
pub fn noon() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

pub fn options() -> PushOptions {
    PushOptions {
        ttl_seconds: 3600,
        urgency: Urgency::High,
        topic: None,
    }
}

pub fn vapid_key() -> VapidKey {
    VapidKey::generate()
}

/// The subscription a browser gives its page, read as the server reads it.
pub fn subscription(browser: &Browser, endpoint: &str) -> Subscription {
    serde_json::from_str(&browser.subscription_json(endpoint)).expect("a subscription")
}
