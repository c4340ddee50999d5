//! Web Push messages checked from the other side: a push service and a browser written here from
//! the RFCs, with the crypto crates used directly rather than through hark-push's own code.

mod browser;
mod encryption;
mod outcome;
mod subscription;
mod vapid;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hark_push::{PushOptions, Urgency, VapidKey};

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
