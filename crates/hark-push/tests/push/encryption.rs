use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hark_push::{MAX_PAYLOAD_LEN, PushError, Subscription, build_request};
use p256::SecretKey;

use crate::{SUBJECT, noon, options, vapid_key};
use hark_testkit::push::{Browser, parse};

const ENDPOINT: &str = "https://push.example.net/wpush/v2/abc";

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_test_browser_reads_the_rfc_8291_example() {
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text).expect("base64url");
    let browser = Browser::from_parts(
        SecretKey::from_slice(&decode("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).expect("key"),
        decode("BTBZMqHH6r4Tts7J_aSIgg")
            .try_into()
            .expect("16 bytes"),
    );
    let body = decode(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );
    assert_eq!(
        browser.read(&body),
        b"When I grow up, I want to be a watermelon"
    );
}

#[test]
fn a_browser_decrypts_the_payload_it_was_sent() {
    let browser = Browser::new();
    let subscription: Subscription =
        serde_json::from_str(&browser.subscription_json(ENDPOINT)).expect("a PushSubscription");
    let payload = br#"{"type":"note.received","note_id":"n1","sender":"ada","title":"Hi"}"#;

    let request = build_request(
        &vapid_key(),
        SUBJECT,
        &subscription,
        payload,
        &options(),
        noon(),
    )
    .expect("a request");

    assert_eq!(request.endpoint, ENDPOINT);
    assert_eq!(
        header(&request.headers, "Content-Encoding"),
        Some("aes128gcm")
    );
    assert_eq!(
        header(&request.headers, "Content-Type"),
        Some("application/octet-stream")
    );
    assert_eq!(header(&request.headers, "TTL"), Some("3600"));
    assert_eq!(header(&request.headers, "Urgency"), Some("high"));
    assert_eq!(header(&request.headers, "Topic"), None);
    assert_eq!(parse(&request.body).record_size, 4096);
    assert_eq!(browser.read(&request.body), payload);
}

#[test]
fn the_largest_payload_fits_and_one_byte_more_is_refused() {
    let browser = Browser::new();
    let subscription = crate::subscription(&browser, ENDPOINT);
    let key = vapid_key();
    let largest = vec![b'a'; MAX_PAYLOAD_LEN];

    let request = build_request(&key, SUBJECT, &subscription, &largest, &options(), noon())
        .expect("3993 bytes fit");
    assert_eq!(request.body.len(), 4096);
    assert_eq!(browser.read(&request.body), largest);

    let too_large = vec![b'a'; 3994];
    assert_eq!(
        build_request(&key, SUBJECT, &subscription, &too_large, &options(), noon()),
        Err(PushError::PayloadTooLarge {
            len: 3994,
            max: 3993
        })
    );
}

#[test]
fn two_messages_with_the_same_payload_use_their_own_salt_and_key() {
    let browser = Browser::new();
    let subscription = crate::subscription(&browser, ENDPOINT);
    let key = vapid_key();
    let send = || {
        build_request(&key, SUBJECT, &subscription, b"same", &options(), noon()).expect("a request")
    };

    let (first, second) = (send(), send());

    let (a, b) = (parse(&first.body), parse(&second.body));
    assert_ne!(a.salt, b.salt);
    assert_ne!(a.key_id, b.key_id);
    assert_ne!(a.ciphertext, b.ciphertext);
    assert_eq!(browser.read(&first.body), b"same");
    assert_eq!(browser.read(&second.body), b"same");
}

#[test]
fn a_topic_is_sent_when_set_and_a_malformed_one_is_refused() {
    let subscription = crate::subscription(&Browser::new(), ENDPOINT);
    let key = vapid_key();
    let with_topic = |topic: &str| {
        let mut options = options();
        options.topic = Some(topic.to_owned());
        build_request(&key, SUBJECT, &subscription, b"{}", &options, noon())
    };

    let request = with_topic("note_n1-ready").expect("a valid topic");
    assert_eq!(header(&request.headers, "Topic"), Some("note_n1-ready"));

    for bad in ["", "has space", "a.b", &"x".repeat(33)] {
        assert_eq!(
            with_topic(bad),
            Err(PushError::InvalidTopic(bad.to_owned()))
        );
    }
}

#[test]
fn every_urgency_has_its_rfc_8030_header_value() {
    use hark_push::Urgency;
    let values: Vec<_> = [
        Urgency::VeryLow,
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
    ]
    .into_iter()
    .map(Urgency::as_str)
    .collect();
    assert_eq!(values, ["very-low", "low", "normal", "high"]);
}
