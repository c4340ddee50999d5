use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hark_push::{PushError, Subscription, build_request};
use p256::SecretKey;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;

use crate::{SUBJECT, noon, options, vapid_key};
use hark_testkit::push::Browser;

const ENDPOINT: &str = "https://push.example.net/wpush/v2/abc";

fn valid() -> Subscription {
    crate::subscription(&Browser::new(), ENDPOINT)
}

/// The field named by a validation error.
fn faulty_field(subscription: &Subscription) -> &'static str {
    match subscription.validate() {
        Err(PushError::InvalidSubscription { field, .. }) => field,
        other => panic!("expected an invalid subscription, got {other:?}"),
    }
}

#[test]
fn a_browsers_push_subscription_json_is_accepted() {
    let json = Browser::new().subscription_json(ENDPOINT);
    let subscription: Subscription = serde_json::from_str(&json).expect("extra fields are ignored");
    assert_eq!(subscription.endpoint, ENDPOINT);
    assert_eq!(subscription.validate(), Ok(()));
}

#[test]
fn padded_base64url_keys_are_accepted() {
    let mut subscription = valid();
    let p256dh = URL_SAFE_NO_PAD
        .decode(&subscription.keys.p256dh)
        .expect("base64url");
    let auth = URL_SAFE_NO_PAD
        .decode(&subscription.keys.auth)
        .expect("base64url");
    subscription.keys.p256dh = URL_SAFE.encode(p256dh);
    subscription.keys.auth = URL_SAFE.encode(auth);
    assert!(subscription.keys.auth.ends_with("=="));
    assert_eq!(subscription.validate(), Ok(()));
}

#[test]
fn endpoints_must_be_absolute_http_or_https_urls() {
    for endpoint in [
        "",
        "push.example.net/x",
        "/wpush/abc",
        "ftp://push.example.net/x",
        "mailto:a@b",
    ] {
        let mut subscription = valid();
        subscription.endpoint = endpoint.to_owned();
        assert_eq!(faulty_field(&subscription), "endpoint", "{endpoint:?}");
    }
    let mut local = valid();
    local.endpoint = "http://127.0.0.1:8080/push/1".to_owned();
    assert_eq!(local.validate(), Ok(()));
}

#[test]
fn p256dh_must_be_an_uncompressed_point_on_the_curve() {
    let point = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
    let compressed = URL_SAFE_NO_PAD.encode(point.to_sec1_point(true).as_bytes());
    let off_curve = URL_SAFE_NO_PAD.encode([[0x04].as_slice(), &[0x01; 64]].concat());
    let short = URL_SAFE_NO_PAD.encode([0x04; 64]);
    for p256dh in ["", "not base64!", &compressed, &off_curve, &short] {
        let mut subscription = valid();
        subscription.keys.p256dh = p256dh.to_owned();
        assert_eq!(faulty_field(&subscription), "keys.p256dh", "{p256dh:?}");
    }
}

#[test]
fn auth_must_be_16_bytes() {
    for auth in [
        URL_SAFE_NO_PAD.encode([1; 12]),
        URL_SAFE_NO_PAD.encode([1; 17]),
        "*".to_owned(),
    ] {
        let mut subscription = valid();
        subscription.keys.auth = auth.clone();
        assert_eq!(faulty_field(&subscription), "keys.auth", "{auth:?}");
    }
}

#[test]
fn errors_say_in_words_what_is_wrong() {
    let mut subscription = valid();
    subscription.keys.auth = URL_SAFE_NO_PAD.encode([1; 12]);
    let message = subscription.validate().expect_err("too short").to_string();
    assert_eq!(
        message,
        "the push subscription's keys.auth must be 16 bytes, not 12"
    );

    subscription = valid();
    subscription.keys.p256dh = URL_SAFE_NO_PAD.encode([0x04; 33]);
    let message = subscription
        .validate()
        .expect_err("wrong length")
        .to_string();
    assert_eq!(
        message,
        "the push subscription's keys.p256dh must be an uncompressed P-256 public key \
         (65 bytes starting with 0x04), not 33 bytes"
    );
}

#[test]
fn no_request_is_built_for_an_invalid_subscription() {
    let mut subscription = valid();
    subscription.endpoint = "ftp://push.example.net/x".to_owned();
    let refused = build_request(
        &vapid_key(),
        SUBJECT,
        &subscription,
        b"{}",
        &options(),
        noon(),
    );
    assert_eq!(refused, Err(subscription.validate().expect_err("invalid")));
}
