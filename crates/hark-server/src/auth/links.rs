//! Signed links: a note's audio URL that carries its own authority, an HMAC over the note, the
//! rendition and the expiry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;

use super::{HmacSha256, keyed_mac};

use crate::domain::{NoteId, Timestamp};

/// The signature parameters of a link's query string.
#[derive(Debug, Clone)]
pub struct LinkSignature {
    pub expires: i64,
    pub sig: String,
}

pub struct SignedLinks {
    key: Vec<u8>,
}

impl SignedLinks {
    /// Link keys are derived from the server secret, so they rotate with it and never equal it.
    pub fn new(secret: &[u8]) -> SignedLinks {
        let mut mac = keyed_mac(secret);
        mac.update(b"hark signed links v1");
        SignedLinks {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, note: NoteId, rendition: Option<&str>, expires: i64) -> HmacSha256 {
        let mut mac = keyed_mac(&self.key);
        mac.update(format!("{note}\n{}\n{expires}", rendition.unwrap_or("")).as_bytes());
        mac
    }

    /// The query string (without `?`) that authorises `note` until `expires`.
    pub fn sign(&self, note: NoteId, rendition: Option<&str>, expires: Timestamp) -> String {
        let expires = expires.unix_seconds();
        let sig =
            URL_SAFE_NO_PAD.encode(self.mac(note, rendition, expires).finalize().into_bytes());
        match rendition {
            Some(r) => format!("rendition={r}&expires={expires}&sig={sig}"),
            None => format!("expires={expires}&sig={sig}"),
        }
    }

    /// Whether the signature is genuine and `now` is before its expiry (no grace period).
    pub fn verify(
        &self,
        note: NoteId,
        rendition: Option<&str>,
        link: &LinkSignature,
        now: Timestamp,
    ) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(&link.sig) else {
            return false;
        };
        let genuine = self
            .mac(note, rendition, link.expires)
            .verify_slice(&sig)
            .is_ok();
        genuine && now.unix_seconds() < link.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_verifies_until_it_expires_and_not_when_tampered() {
        let links = SignedLinks::new(b"secret");
        let note = NoteId::generate();
        let now = Timestamp::now();
        let query = links.sign(note, None, now.plus_seconds(60));
        let params: std::collections::HashMap<_, _> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let link = LinkSignature {
            expires: params["expires"].parse().expect("number"),
            sig: params["sig"].into(),
        };
        assert!(links.verify(note, None, &link, now));
        assert!(
            !links.verify(note, None, &link, now.plus_seconds(60)),
            "valid from expires_at on"
        );
        assert!(
            !links.verify(NoteId::generate(), None, &link, now),
            "another note"
        );
        assert!(
            !links.verify(note, Some("mp3"), &link, now),
            "another rendition"
        );
        let later = LinkSignature {
            expires: link.expires + 3600,
            ..link.clone()
        };
        assert!(!links.verify(note, None, &later, now), "extended expiry");
    }
}
