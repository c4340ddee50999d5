//! The push message as an HTTP request (RFC 8030 §5), ready for the server's HTTP client.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::encrypt::{MAX_PAYLOAD_LEN, encrypt};
use crate::{PushError, Subscription, VapidKey};

const AUTHORIZATION: &str = "Authorization";
const CONTENT_ENCODING: &str = "Content-Encoding";
const CONTENT_TYPE: &str = "Content-Type";
const TTL: &str = "TTL";
const TOPIC: &str = "Topic";
const URGENCY: &str = "Urgency";

/// How soon the browser should be woken for a message (RFC 8030 §5.3); a phone on battery may
/// hold back anything below `High`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    /// The `Urgency` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// What the push service is asked to do with a message it cannot deliver at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    /// How long the push service keeps the message for an offline browser; 0 means deliver now or
    /// never.
    pub ttl_seconds: u32,
    pub urgency: Urgency,
    /// A message with the same topic replaces one still waiting, so an offline browser gets only
    /// the latest (RFC 8030 §5.4).
    pub topic: Option<String>,
}

/// One POST to the subscription's endpoint: send `body` with exactly these headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    pub endpoint: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Builds the encrypted, VAPID-signed push message carrying `payload` to `subscription`.
///
/// `subject` is the `mailto:` or `https:` contact put in the token; `now` dates the token. Each
/// call encrypts with a fresh key and salt, so two requests for the same payload never match.
pub fn build_request(
    key: &VapidKey,
    subject: &str,
    subscription: &Subscription,
    payload: &[u8],
    options: &PushOptions,
    now: SystemTime,
) -> Result<PushRequest, PushError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(PushError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    if let Some(topic) = &options.topic {
        check_topic(topic)?;
    }
    let target = subscription.parse()?;
    let authorization = key.authorization(&target.endpoint, subject, now)?;

    let mut headers = vec![
        (CONTENT_ENCODING, "aes128gcm".to_owned()),
        (CONTENT_TYPE, "application/octet-stream".to_owned()),
        (TTL, options.ttl_seconds.to_string()),
        (URGENCY, options.urgency.as_str().to_owned()),
        (AUTHORIZATION, authorization),
    ];
    if let Some(topic) = &options.topic {
        headers.push((TOPIC, topic.clone()));
    }
    Ok(PushRequest {
        endpoint: subscription.endpoint.clone(),
        headers,
        body: encrypt(payload, &target.ua_public, &target.auth_secret),
    })
}

/// RFC 8030 §5.4: at most 32 characters of the URL- and filename-safe base64 alphabet.
fn check_topic(topic: &str) -> Result<(), PushError> {
    let valid = (1..=32).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(PushError::InvalidTopic(topic.to_owned()))
    }
}
