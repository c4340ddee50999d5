//! A browser's push subscription, as `PushSubscription.toJSON()` gives it.

use p256::PublicKey;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{PushError, base64url};

/// Where and for whom a push message goes: the push service's URL for one browser, and that
/// browser's keys. Fields the browser adds (such as `expirationTime`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

/// The browser's half of the encryption (RFC 8291 §2): its P-256 public key and the auth secret it
/// shares with no one but the sender, both base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A subscription decoded into what the encryption and the token need.
pub(crate) struct ParsedSubscription {
    pub endpoint: Url,
    pub ua_public: PublicKey,
    pub auth_secret: [u8; 16],
}

impl Subscription {
    /// Checks that a message can be built for this subscription, so a bad one is refused when it
    /// is registered rather than on every event. Errors name the field at fault.
    pub fn validate(&self) -> Result<(), PushError> {
        self.parse().map(|_| ())
    }

    pub(crate) fn parse(&self) -> Result<ParsedSubscription, PushError> {
        Ok(ParsedSubscription {
            endpoint: parse_endpoint(&self.endpoint)?,
            ua_public: parse_p256dh(&self.keys.p256dh)?,
            auth_secret: parse_auth(&self.keys.auth)?,
        })
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> PushError {
    PushError::InvalidSubscription {
        field,
        reason: reason.into(),
    }
}

fn parse_endpoint(endpoint: &str) -> Result<Url, PushError> {
    let url = Url::parse(endpoint)
        .map_err(|e| invalid("endpoint", format!("is not an absolute URL ({e})")))?;
    // http is allowed for push services on a private network; the address rules are the server's.
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid(
            "endpoint",
            format!("must be an https:// or http:// URL, not {}:", url.scheme()),
        ));
    }
    Ok(url)
}

fn parse_p256dh(p256dh: &str) -> Result<PublicKey, PushError> {
    const FIELD: &str = "keys.p256dh";
    let bytes = base64url::decode(p256dh).map_err(|_| invalid(FIELD, "is not base64url"))?;
    // RFC 8291 §3.1 sends the key uncompressed; browsers never give another form.
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return Err(invalid(
            FIELD,
            format!(
                "must be an uncompressed P-256 public key (65 bytes starting with 0x04), not {} bytes",
                bytes.len()
            ),
        ));
    }
    PublicKey::from_sec1_bytes(&bytes)
        .map_err(|_| invalid(FIELD, "is not a point on the P-256 curve"))
}

fn parse_auth(auth: &str) -> Result<[u8; 16], PushError> {
    const FIELD: &str = "keys.auth";
    let bytes = base64url::decode(auth).map_err(|_| invalid(FIELD, "is not base64url"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| invalid(FIELD, format!("must be 16 bytes, not {len}")))
}
