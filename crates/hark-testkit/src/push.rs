//! A browser's side of Web Push: it subscribes with a fresh key pair and auth secret, and reads a
//! message the way RFC 8291 §3.4 and RFC 8188 §2 describe, with the crypto crates used directly so
//! that it checks hark-push's encryption rather than repeating it.

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, Key, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use rand::Rng;
use sha2::Sha256;

/// A subscribed browser: its P-256 key pair and auth secret.
pub struct Browser {
    secret: SecretKey,
    auth: [u8; 16],
}

/// The `aes128gcm` header fields (RFC 8188 §2.1) and the record after them.
pub struct Message<'a> {
    pub salt: &'a [u8],
    pub record_size: u32,
    pub key_id: &'a [u8],
    pub ciphertext: &'a [u8],
}

impl Default for Browser {
    fn default() -> Browser {
        Browser::new()
    }
}

impl Browser {
    /// A browser with a fresh key pair and auth secret.
    pub fn new() -> Browser {
        let mut auth = [0u8; 16];
        rand::rng().fill_bytes(&mut auth);
        Browser {
            secret: SecretKey::generate_from_rng(&mut rand::rng()),
            auth,
        }
    }

    pub fn from_parts(secret: SecretKey, auth: [u8; 16]) -> Browser {
        Browser { secret, auth }
    }

    fn public_bytes(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    /// What `PushSubscription.toJSON()` gives the page, with its extra field.
    pub fn subscription_json(&self, endpoint: &str) -> String {
        serde_json::json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": self.p256dh(),
                "auth": self.auth(),
            }
        })
        .to_string()
    }

    /// The browser's public key (`keys.p256dh`), base64url.
    pub fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_bytes())
    }

    /// The browser's auth secret (`keys.auth`), base64url.
    pub fn auth(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }

    /// Decrypts a one-record `aes128gcm` body and strips its padding.
    pub fn read(&self, body: &[u8]) -> Vec<u8> {
        let message = parse(body);
        assert_eq!(
            message.key_id.len(),
            65,
            "the key id is the sender's public key"
        );
        assert!(
            message.ciphertext.len() <= message.record_size as usize,
            "one record holds the whole message"
        );
        let sender =
            PublicKey::from_sec1_bytes(message.key_id).expect("the key id is a P-256 point");

        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(&self.public_bytes());
        key_info.extend_from_slice(message.key_id);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&key_info, &mut ikm)
            .expect("32 bytes");

        let hkdf = Hkdf::<Sha256>::new(Some(message.salt), &ikm);
        let mut cek = [0u8; 16];
        let mut nonce = [0u8; 12];
        hkdf.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .expect("16 bytes");
        hkdf.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .expect("12 bytes");
        let mut plaintext = Aes128Gcm::new(&Key::<Aes128Gcm>::from(cek))
            .decrypt(&Nonce::<Aes128Gcm>::from(nonce), message.ciphertext)
            .expect("the record decrypts with the browser's keys");

        // RFC 8188 §2: padding is zeros after a delimiter, which is 0x02 in the last record.
        while plaintext.last() == Some(&0) {
            plaintext.pop();
        }
        assert_eq!(
            plaintext.pop(),
            Some(2),
            "the last record ends with delimiter 0x02"
        );
        plaintext
    }
}

/// Splits an `aes128gcm` body into its header fields and record.
pub fn parse(body: &[u8]) -> Message<'_> {
    assert!(body.len() > 21, "the body holds an aes128gcm header");
    let (salt, rest) = body.split_at(16);
    let (record_size, rest) = rest.split_at(4);
    let (id_len, rest) = rest.split_at(1);
    let (key_id, ciphertext) = rest.split_at(usize::from(id_len[0]));
    Message {
        salt,
        record_size: u32::from_be_bytes(record_size.try_into().expect("4 bytes")),
        key_id,
        ciphertext,
    }
}
