//! Signing deliveries per the Standard Webhooks convention, so that a receiver's existing
//! library verifies them: `v1,` and the base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`,
//! keyed with the bytes the secret's base64 (after `whsec_`) stands for.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hark_api::WEBHOOK_SECRET_PREFIX;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

/// Random bytes in a new secret (the convention asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// A new secret: `whsec_` and the base64 of fresh random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{WEBHOOK_SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header of one attempt; `None` when the secret is no base64 key.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(WEBHOOK_SECRET_PREFIX).unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example the Standard Webhooks reference libraries are tested with.
    #[test]
    fn signatures_reproduce_the_reference_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn new_secrets_are_random_base64_keys() {
        let (one, two) = (new_secret(), new_secret());
        assert_ne!(one, two);
        let key = STANDARD
            .decode(one.strip_prefix("whsec_").expect("prefix"))
            .expect("base64");
        assert_eq!(key.len(), SECRET_BYTES);
        assert!(sign(&one, "id", 1, b"{}").is_some());
        assert_eq!(sign("whsec_not base64!", "id", 1, b"{}"), None);
    }
}
