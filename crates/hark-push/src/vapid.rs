//! VAPID (RFC 8292): the server's identity towards push services.
//!
//! Browsers bind a subscription to the server's public key (`applicationServerKey`); each message
//! then carries a short-lived ES256 token signed with the private key, so only this server can push
//! to its subscriptions.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use serde::Serialize;
use url::Url;

use crate::{PushError, base64url};

/// How long a token is valid. Push services refuse more than 24 hours (RFC 8292 §2); half a day
/// leaves room for a sender whose clock runs ahead.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// `{"typ":"JWT","alg":"ES256"}`, the only header RFC 8292 §2 allows.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ES256"}"#;

/// The server's VAPID key pair: a P-256 private key.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

impl VapidKey {
    /// A new random key, made once when the server first starts and kept in its data directory.
    pub fn generate() -> VapidKey {
        VapidKey {
            signing: SigningKey::generate_from_rng(&mut rand::rng()),
        }
    }

    /// Reads a key written by [`VapidKey::to_base64url`]: the raw 32-byte private scalar.
    pub fn from_base64url(private: &str) -> Result<VapidKey, PushError> {
        let bytes = base64url::decode(private.trim())
            .map_err(|_| PushError::InvalidVapidKey("it is not base64url"))?;
        if bytes.len() != 32 {
            return Err(PushError::InvalidVapidKey("it is not 32 bytes long"));
        }
        let signing = SigningKey::from_slice(&bytes)
            .map_err(|_| PushError::InvalidVapidKey("it is not a P-256 private key"))?;
        Ok(VapidKey { signing })
    }

    /// The private scalar, base64url without padding: what the server stores.
    pub fn to_base64url(&self) -> String {
        base64url::encode(self.signing.to_bytes())
    }

    /// The uncompressed public point, base64url without padding: the `applicationServerKey` a
    /// browser subscribes with, and the `k` parameter of every message.
    pub fn public_key_base64url(&self) -> String {
        base64url::encode(self.signing.verifying_key().to_sec1_point(false).as_bytes())
    }

    /// The `Authorization` header value for a message to `endpoint` (RFC 8292 §3).
    pub(crate) fn authorization(
        &self,
        endpoint: &Url,
        subject: &str,
        now: SystemTime,
    ) -> Result<String, PushError> {
        check_subject(subject)?;
        let expires = now.duration_since(UNIX_EPOCH).unwrap_or_default() + TOKEN_LIFETIME;
        let claims = Claims {
            // The origin leaves out a port that is the scheme's default, as RFC 6454 serializes it.
            aud: endpoint.origin().ascii_serialization(),
            exp: expires.as_secs(),
            sub: subject,
        };
        let token = self.sign_jwt(&claims);
        Ok(format!(
            "vapid t={token}, k={}",
            self.public_key_base64url()
        ))
    }

    /// A compact JWS. Built here rather than with a JWT library, which would want the key as
    /// PKCS#8 DER only to decode it again; ES256 is the raw 64-byte `r | s` (RFC 7518 §3.4).
    fn sign_jwt(&self, claims: &Claims<'_>) -> String {
        let claims = serde_json::to_vec(claims).expect("the claims are plain strings and numbers");
        let signing_input = format!(
            "{}.{}",
            base64url::encode(JWT_HEADER),
            base64url::encode(claims)
        );
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            base64url::encode(signature.to_bytes())
        )
    }
}

/// Never prints the private key.
impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key_base64url())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: String,
    exp: u64,
    sub: &'a str,
}

/// Checks a VAPID subject (RFC 8292 §2.1): a `mailto:` or `https:` URL by which the push
/// service's operator can reach the sender.
pub fn check_subject(subject: &str) -> Result<(), PushError> {
    let reachable = Url::parse(subject).is_ok_and(|url| match url.scheme() {
        "mailto" => !url.path().is_empty(),
        "https" => url.host().is_some(),
        _ => false,
    });
    if reachable {
        Ok(())
    } else {
        Err(PushError::InvalidSubject(subject.to_owned()))
    }
}
