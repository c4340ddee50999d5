use std::time::UNIX_EPOCH;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hark_push::{PushError, PushRequest, VapidKey, build_request};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::{SUBJECT, noon, options, vapid_key};
use hark_testkit::push::Browser;

#[derive(Debug, Deserialize)]
struct Claims {
    aud: String,
    exp: u64,
    sub: String,
}

fn request_to(key: &VapidKey, endpoint: &str, subject: &str) -> Result<PushRequest, PushError> {
    let subscription = crate::subscription(&Browser::new(), endpoint);
    build_request(key, subject, &subscription, b"{}", &options(), noon())
}

/// Splits `vapid t=<jwt>, k=<key>` (RFC 8292 §3).
fn token_and_key(request: &PushRequest) -> (String, String) {
    let (_, value) = request
        .headers
        .iter()
        .find(|(name, _)| *name == "Authorization")
        .expect("an Authorization header");
    let rest = value.strip_prefix("vapid t=").expect("the vapid scheme");
    let (token, key) = rest.split_once(", k=").expect("t and k parameters");
    (token.to_owned(), key.to_owned())
}

/// Verifies a token as a push service would: ES256 with the public key sent as `k`.
fn verify(token: &str, k: &str) -> jsonwebtoken::errors::Result<Claims> {
    let point = URL_SAFE_NO_PAD.decode(k).expect("k is base64url");
    assert_eq!(
        (point.len(), point[0]),
        (65, 0x04),
        "k is an uncompressed point"
    );
    let decoding = DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    )?;
    let mut validation = Validation::new(Algorithm::ES256);
    // The token is dated by the fixed test clock; its claims are compared exactly instead.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    Ok(jsonwebtoken::decode::<Claims>(token, &decoding, &validation)?.claims)
}

fn verified_claims(request: &PushRequest) -> Claims {
    let (token, k) = token_and_key(request);
    verify(&token, &k).expect("the signature verifies with k")
}

#[test]
fn the_token_is_signed_by_the_key_browsers_subscribed_with() {
    let key = vapid_key();
    let request =
        request_to(&key, "https://push.example.net/wpush/abc", SUBJECT).expect("a request");

    let (_, k) = token_and_key(&request);
    assert_eq!(k, key.public_key_base64url());
    let claims = verified_claims(&request);
    assert_eq!(claims.aud, "https://push.example.net");
    assert_eq!(claims.sub, SUBJECT);
    let now = noon()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert_eq!(claims.exp, now + 12 * 60 * 60);
}

#[test]
fn a_token_from_another_key_does_not_verify_with_ours() {
    let ours = vapid_key();
    let request =
        request_to(&vapid_key(), "https://push.example.net/x", SUBJECT).expect("a request");
    let (token, _) = token_and_key(&request);
    assert!(verify(&token, &ours.public_key_base64url()).is_err());
}

#[test]
fn the_audience_is_the_endpoints_origin_with_a_port_only_when_not_the_default() {
    let key = vapid_key();
    let audience = |endpoint: &str| {
        verified_claims(&request_to(&key, endpoint, SUBJECT).expect("a request")).aud
    };

    assert_eq!(
        audience("https://push.example.net:443/a?b=c"),
        "https://push.example.net"
    );
    assert_eq!(
        audience("https://push.example.net:8443/a"),
        "https://push.example.net:8443"
    );
    assert_eq!(
        audience("http://127.0.0.1:8080/push/1"),
        "http://127.0.0.1:8080"
    );
    assert_eq!(audience("http://push.local:80/x"), "http://push.local");
    assert_eq!(
        audience("HTTPS://Push.Example.NET/x"),
        "https://push.example.net"
    );
}

#[test]
fn subjects_other_than_mailto_or_https_urls_are_refused() {
    let key = vapid_key();
    for good in ["mailto:hark@localhost", "https://hark.example.org/contact"] {
        assert!(
            request_to(&key, "https://push.example.net/x", good).is_ok(),
            "{good}"
        );
    }
    for bad in [
        "",
        "hark@localhost",
        "mailto:",
        "http://hark.example.org",
        "ftp://x",
        "https://",
    ] {
        assert_eq!(
            request_to(&key, "https://push.example.net/x", bad),
            Err(PushError::InvalidSubject(bad.to_owned())),
            "{bad:?}"
        );
    }
}

#[test]
fn a_stored_key_reads_back_as_the_same_key() {
    let key = vapid_key();
    let stored = key.to_base64url();
    assert_eq!(stored.len(), 43, "32 bytes, base64url without padding");

    let read = VapidKey::from_base64url(&stored).expect("a stored key");

    assert_eq!(read.public_key_base64url(), key.public_key_base64url());
    let public = URL_SAFE_NO_PAD
        .decode(key.public_key_base64url())
        .expect("base64url");
    assert_eq!(
        (public.len(), public[0]),
        (65, 0x04),
        "an uncompressed point"
    );
}

#[test]
fn unusable_stored_keys_are_refused() {
    let zero = URL_SAFE_NO_PAD.encode([0u8; 32]);
    let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
    // The group order n is not a valid scalar.
    let order = "_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE";
    for bad in ["not base64!", zero.as_str(), short.as_str(), order] {
        assert!(
            matches!(
                VapidKey::from_base64url(bad),
                Err(PushError::InvalidVapidKey(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn the_debug_form_shows_the_public_key_only() {
    let key = vapid_key();
    let debug = format!("{key:?}");
    assert!(debug.contains(&key.public_key_base64url()));
    assert!(!debug.contains(&key.to_base64url()));
}
