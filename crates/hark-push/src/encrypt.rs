//! RFC 8291 message encryption in the RFC 8188 `aes128gcm` content coding.
//!
//! The sender makes a one-time P-256 key pair and salt per message; ECDH with the browser's key,
//! mixed with the browser's auth secret, gives a key only that browser can derive again. The body
//! is `salt (16) | record size (4) | key id length (1) | sender public key (65) | one record`.

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use p256::ecdh::diffie_hellman;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use rand::Rng;
use sha2::Sha256;

/// The record size written in the header. Push services must accept bodies of 4096 bytes
/// (RFC 8030 §7.2), so the one record never needs to be larger.
const RECORD_SIZE: u32 = 4096;
/// `salt | rs | idlen | keyid` with the 65-byte uncompressed sender key as key id.
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
const TAG_LEN: usize = 16;
/// Ends the last (here the only) record's plaintext (RFC 8188 §2); no padding follows it.
const LAST_RECORD_DELIMITER: u8 = 0x02;

/// The largest payload whose message fits 4096 bytes: header, delimiter and tag come off first.
pub const MAX_PAYLOAD_LEN: usize = RECORD_SIZE as usize - HEADER_LEN - 1 - TAG_LEN;

/// Encrypts with a fresh sender key and salt, so no two messages share a content key.
/// The caller keeps the payload within [`MAX_PAYLOAD_LEN`].
pub(crate) fn encrypt(payload: &[u8], ua_public: &PublicKey, auth_secret: &[u8; 16]) -> Vec<u8> {
    let mut rng = rand::rng();
    let ephemeral = SecretKey::generate_from_rng(&mut rng);
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    encrypt_with(payload, ua_public, auth_secret, &ephemeral, &salt)
}

/// The deterministic core of [`encrypt`]: every input given, so the RFC 8291 Appendix A example
/// can be reproduced exactly.
pub(crate) fn encrypt_with(
    payload: &[u8],
    ua_public: &PublicKey,
    auth_secret: &[u8; 16],
    ephemeral_private: &SecretKey,
    salt: &[u8; 16],
) -> Vec<u8> {
    let ua_public_bytes = ua_public.to_sec1_point(false);
    let as_public_bytes = ephemeral_private.public_key().to_sec1_point(false);

    // RFC 8291 §3.3: the ECDH secret, keyed by the auth secret and bound to both public keys.
    let ecdh_secret = diffie_hellman(ephemeral_private.to_nonzero_scalar(), ua_public.as_affine());
    let key_info = [
        b"WebPush: info\0".as_slice(),
        ua_public_bytes.as_bytes(),
        as_public_bytes.as_bytes(),
    ];
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), ecdh_secret.raw_secret_bytes())
        .expand_multi_info(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");

    // RFC 8188 §2.2 and §2.3: content key and nonce from the salt; one record, so no sequence XOR.
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA256 output length");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA256 output length");

    let mut record = Vec::with_capacity(payload.len() + 1);
    record.extend_from_slice(payload);
    record.push(LAST_RECORD_DELIMITER);
    let ciphertext = Aes128Gcm::new(&Key::<Aes128Gcm>::from(cek))
        .encrypt(&Nonce::<Aes128Gcm>::from(nonce), record.as_slice())
        .expect("AES-GCM takes any plaintext shorter than 64 GiB");

    let mut body = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public_bytes.len() as u8);
    body.extend_from_slice(as_public_bytes.as_bytes());
    body.extend_from_slice(&ciphertext);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base64url;

    fn decoded(text: &str) -> Vec<u8> {
        base64url::decode(text).expect("the RFC's values are base64url")
    }

    /// RFC 8291 Appendix A, every value as the RFC prints it.
    #[test]
    fn the_rfc_8291_example_encrypts_to_the_rfcs_bytes() {
        let plaintext = b"When I grow up, I want to be a watermelon";
        let as_private = decoded("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        let ua_public = decoded(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let auth_secret = decoded("BTBZMqHH6r4Tts7J_aSIgg");
        let salt = decoded("DGv6ra1nlYgDCS1FRnbzlw");
        let expected = decoded(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
        );

        let body = encrypt_with(
            plaintext,
            &PublicKey::from_sec1_bytes(&ua_public).expect("the RFC's key is a point"),
            &auth_secret.try_into().expect("16 bytes"),
            &SecretKey::from_slice(&as_private).expect("the RFC's key is a scalar"),
            &salt.try_into().expect("16 bytes"),
        );

        assert_eq!(base64url::encode(&body), base64url::encode(&expected));
    }

    #[test]
    fn the_largest_payload_makes_a_message_of_exactly_4096_bytes() {
        let ua_public = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let body = encrypt(&[b'x'; MAX_PAYLOAD_LEN], &ua_public, &[7; 16]);
        assert_eq!(MAX_PAYLOAD_LEN, 3993);
        assert_eq!(body.len(), 4096);
    }
}
