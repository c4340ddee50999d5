//! CSRF tokens of browser sessions. The web UI's cookie carries a session's random secret
//! (kept hashed on the server); every state-changing request made with it must also carry
//! the session's CSRF token, an HMAC of that secret that a page of this origin can read and
//! another site cannot.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;

use super::keyed_mac;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hark_session";

pub struct CsrfTokens {
    key: Vec<u8>,
}

impl CsrfTokens {
    /// The key is derived from the server secret, so it rotates with it and never equals it.
    pub fn new(secret: &[u8]) -> CsrfTokens {
        let mut mac = keyed_mac(secret);
        mac.update(b"hark csrf v1");
        CsrfTokens {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The CSRF token of a session.
    pub fn token(&self, session: &str) -> String {
        let mut mac = keyed_mac(&self.key);
        mac.update(session.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `given` is the session's CSRF token (compared in constant time).
    pub fn verify(&self, session: &str, given: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(given) else {
            return false;
        };
        let mut mac = keyed_mac(&self.key);
        mac.update(session.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_belongs_to_one_session_and_one_secret() {
        let tokens = CsrfTokens::new(b"secret");
        let token = tokens.token("session-a");
        assert!(tokens.verify("session-a", &token));
        assert!(!tokens.verify("session-b", &token));
        assert!(!tokens.verify("session-a", ""));
        assert!(!tokens.verify("session-a", "not base64!"));
        assert!(!CsrfTokens::new(b"other").verify("session-a", &token));
    }
}
