//! The base64url forms Web Push uses: keys and tokens are written without padding (RFC 8291 §4,
//! RFC 8292 §3.2), but subscriptions from some clients carry it, so reading accepts both.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};

pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD_INDIFFERENT.decode(text)
}
