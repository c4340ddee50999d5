//! Web Push: the test plays a browser (its own key pair and auth secret, and a decryption
//! written apart from hark-push's) subscribed through a push service on 127.0.0.1 that records
//! every request. Covered: the payload and headers of a message, the VAPID token, a subscription
//! that is gone, retries, refused subscriptions, and who manages which.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hark_api::{EventData, PushKey, PushSubscription, PushSubscriptionList};
use hark_client::UploadOptions;
use hark_server::Config;
use hark_testkit::push::Browser;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sqlx::Connection;

use crate::helpers::{Backend, TestApp, TestUser, assert_problem, sample_wav, spawn_app_with};
use crate::receiver::{Answer, PATIENCE, Received, Receiver};

/// Push services run on 127.0.0.1, retries come quickly, and no worker runs, so the only
/// events pushed are those a test causes.
pub(crate) fn local_and_quick(config: &mut Config) {
    config.webhooks.allow_private_targets = true;
    config.webhooks.timeout_seconds = 5.0;
    config.webhooks.retry_base_seconds = 0.05;
    config.webhooks.retry_max_seconds = 0.2;
    config.jobs.in_process = false;
}

pub(crate) async fn subscribe(
    user: &TestUser,
    browser: &Browser,
    endpoint: &str,
) -> PushSubscription {
    let response = user
        .post("/api/v1/push/subscriptions")
        .header("content-type", "application/json")
        .body(browser.subscription_json(endpoint))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    response.json().await.expect("subscription")
}

async fn subscriptions(user: &TestUser) -> Vec<PushSubscription> {
    let response = user
        .get("/api/v1/push/subscriptions")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let list: PushSubscriptionList = response.json().await.expect("list");
    list.items
}

/// `from` sends a new note to `to`: `to` gets a `note.received`. Answers the note's id.
pub(crate) async fn send_note(from: &TestUser, to: &TestUser) -> String {
    from.client
        .upload_bytes(
            sample_wav(),
            &UploadOptions {
                to: vec![to.email.clone()],
                ..UploadOptions::default()
            },
        )
        .await
        .expect("upload")
        .id
}

/// The states of a subscription's messages, read from the app's database.
pub(crate) async fn message_states(app: &TestApp, subscription: &str) -> Vec<String> {
    let sql = "SELECT status FROM push_messages WHERE subscription_id = $1 ORDER BY seq";
    let url = app.config.database_url.expose_secret();
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        sqlx::query_scalar(sql)
            .bind(subscription.to_owned())
            .fetch_all(&mut conn)
            .await
            .expect("states")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
        sqlx::query_scalar(sql)
            .bind(subscription.to_owned())
            .fetch_all(&mut conn)
            .await
            .expect("states")
    }
}

/// Waits until `done` holds of what `read` answers, and answers that.
pub(crate) async fn eventually<T: std::fmt::Debug, F: Future<Output = T>>(
    read: impl Fn() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "it never got there: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    pub aud: String,
    pub exp: u64,
    pub sub: String,
}

/// Verifies the `Authorization: vapid t=..., k=...` of a request as a push service would:
/// `k` must be the server's published key, and the token ES256-signed by it.
pub(crate) fn vapid_claims(request: &Received, public_key: &str) -> Claims {
    let value = request.header("authorization");
    let rest = value.strip_prefix("vapid t=").expect("the vapid scheme");
    let (token, k) = rest.split_once(", k=").expect("t and k parameters");
    assert_eq!(k, public_key, "k is the key browsers subscribed with");
    let point = URL_SAFE_NO_PAD.decode(k).expect("base64url");
    assert_eq!((point.len(), point[0]), (65, 0x04), "an uncompressed point");
    let key = DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    )
    .expect("a P-256 key");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .expect("the token verifies with the published key")
        .claims
}

fn origin(url: &str) -> String {
    let url = url::Url::parse(url).expect("a URL");
    url.origin().ascii_serialization()
}

async fn a_browser_reads_each_event_it_is_pushed(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let key: PushKey = bob
        .get("/api/v1/push/key")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("key");
    let (bobs_service, anns_service) = (
        Receiver::start(|_| Answer::Status(201)).await,
        Receiver::start(|_| Answer::Status(201)).await,
    );
    let (bobs_browser, anns_browser) = (Browser::new(), Browser::new());
    let subscription = subscribe(&bob, &bobs_browser, &bobs_service.url).await;
    assert_eq!(subscription.endpoint, bobs_service.url);
    subscribe(&ann, &anns_browser, &anns_service.url).await;

    let note = send_note(&ann, &bob).await;
    let request = bobs_service.wait_for(1).await.remove(0);
    assert_eq!(request.header("content-encoding"), "aes128gcm");
    assert_eq!(request.header("ttl"), "86400");
    assert_eq!(request.header("urgency"), "high");
    let claims = vapid_claims(&request, &key.public_key);
    assert_eq!(claims.aud, origin(&bobs_service.url));
    assert_eq!(claims.sub, "mailto:hark@localhost");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(
        claims.exp > now && claims.exp <= now + 24 * 3600,
        "{claims:?}"
    );
    let event: hark_api::Event =
        serde_json::from_slice(&bobs_browser.read(&request.body)).expect("the event's JSON");
    match &event.data {
        EventData::NoteReceived(received) => {
            assert_eq!(received.note_id, note);
            assert_eq!(received.sender_id, ann.id);
        }
        other => panic!("expected note.received, got {other:?}"),
    }
    // Only the browser it was encrypted for can read it.
    let stranger = std::panic::catch_unwind(|| Browser::new().read(&request.body));
    assert!(stranger.is_err(), "another browser read the message");

    // Bob listens: ann, the sender, is told, less urgently.
    bob.client.mark_listened(&note).await.expect("listened");
    let request = anns_service.wait_for(1).await.remove(0);
    assert_eq!(request.header("urgency"), "normal");
    let event: hark_api::Event =
        serde_json::from_slice(&anns_browser.read(&request.body)).expect("the event's JSON");
    match &event.data {
        EventData::NoteListened(listened) => {
            assert_eq!(listened.note_id, note);
            assert_eq!(listened.listener_id, bob.id);
        }
        other => panic!("expected note.listened, got {other:?}"),
    }
    eventually(
        || message_states(&app, &subscription.id),
        |states| states == &["delivered"],
    )
    .await;
    assert_eq!(bobs_service.received().len(), 1);
    app.stop().await;
}

async fn the_configured_vapid_key_signs_every_message(backend: Backend) {
    let key = hark_push::VapidKey::generate();
    let app = spawn_app_with(backend, |config| {
        local_and_quick(config);
        config.push.vapid_private_key = key.to_base64url().into();
    })
    .await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let published: PushKey = bob
        .get("/api/v1/push/key")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("key");
    assert_eq!(published.public_key, key.public_key_base64url());
    // It wins over the data directory's key, which is never made.
    assert!(
        !app.config
            .data_dir
            .join(hark_server::push::KEY_FILE)
            .exists()
    );
    let service = Receiver::start(|_| Answer::Status(201)).await;
    let browser = Browser::new();
    subscribe(&bob, &browser, &service.url).await;
    let note = send_note(&ann, &bob).await;
    let request = service.wait_for(1).await.remove(0);
    vapid_claims(&request, &key.public_key_base64url());
    let event: hark_api::Event =
        serde_json::from_slice(&browser.read(&request.body)).expect("the event's JSON");
    assert_eq!(event.data.note_id(), note);
    app.stop().await;
}

async fn a_subscription_the_push_service_calls_gone_ends(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let service = Receiver::start(|_| Answer::Status(410)).await;
    let subscription = subscribe(&bob, &Browser::new(), &service.url).await;
    assert_eq!(subscriptions(&bob).await.len(), 1);
    send_note(&ann, &bob).await;
    service.wait_for(1).await;
    eventually(|| subscriptions(&bob), Vec::is_empty).await;
    assert!(message_states(&app, &subscription.id).await.is_empty());
    // Gone means no more messages: the next note reaches only a browser still subscribed.
    let other = Receiver::start(|_| Answer::Status(201)).await;
    let still = subscribe(&bob, &Browser::new(), &other.url).await;
    send_note(&ann, &bob).await;
    other.wait_for(1).await;
    eventually(
        || message_states(&app, &still.id),
        |states| states == &["delivered"],
    )
    .await;
    assert_eq!(service.received().len(), 1);
    app.stop().await;
}

async fn a_failed_push_is_sent_again_until_delivered(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let service = Receiver::start(|n| Answer::Status(if n == 0 { 500 } else { 201 })).await;
    let browser = Browser::new();
    let subscription = subscribe(&bob, &browser, &service.url).await;
    let note = send_note(&ann, &bob).await;
    let received = service.wait_for(2).await;
    for request in &received {
        let event: hark_api::Event =
            serde_json::from_slice(&browser.read(&request.body)).expect("the event's JSON");
        assert_eq!(event.data.note_id(), note);
    }
    // Each attempt is encrypted afresh: the same event, never the same bytes.
    assert_ne!(received[0].body, received[1].body);
    eventually(
        || message_states(&app, &subscription.id),
        |states| states == &["delivered"],
    )
    .await;
    assert_eq!(service.received().len(), 2);
    app.stop().await;
}

async fn a_subscription_with_a_bad_field_is_refused_naming_it(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let ann = app.user("ann@example.com").await;
    let browser = Browser::new();
    let good: serde_json::Value =
        serde_json::from_str(&browser.subscription_json("https://push.example.net/wpush/1"))
            .expect("json");
    let cases = [
        (
            "/keys/p256dh",
            serde_json::json!("not*base64"),
            "keys.p256dh",
        ),
        (
            "/keys/p256dh",
            serde_json::json!(URL_SAFE_NO_PAD.encode([4u8; 33])),
            "keys.p256dh",
        ),
        (
            "/keys/auth",
            serde_json::json!(URL_SAFE_NO_PAD.encode([1u8; 8])),
            "keys.auth",
        ),
        ("/endpoint", serde_json::json!("not a url"), "endpoint"),
        (
            "/endpoint",
            serde_json::json!("ftp://push.example.net/"),
            "endpoint",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut body = good.clone();
        *body.pointer_mut(pointer).expect("the field") = value.clone();
        let response = ann
            .post("/api/v1/push/subscriptions")
            .json(&body)
            .send()
            .await
            .expect("send");
        let detail = assert_problem(response, 400, "validation").await;
        assert!(detail.starts_with(field), "{value}: {detail}");
    }
    assert!(subscriptions(&ann).await.is_empty());
    app.stop().await;
}

async fn subscriptions_are_managed_by_their_owner_alone(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let browser = Browser::new();
    let anns = subscribe(&ann, &browser, "http://127.0.0.1:9/push/ann").await;
    // The same browser subscribing again keeps its subscription.
    let again = subscribe(&ann, &browser, "http://127.0.0.1:9/push/ann").await;
    assert_eq!(again.id, anns.id);
    assert_eq!(subscriptions(&ann).await, std::slice::from_ref(&anns));
    assert!(subscriptions(&bob).await.is_empty());
    let path = format!("/api/v1/push/subscriptions/{}", anns.id);
    let response = bob.delete(&path).send().await.expect("send");
    assert_problem(response, 404, "not_found").await;
    assert_eq!(subscriptions(&ann).await.len(), 1);
    let response = ann.delete(&path).send().await.expect("send");
    assert_eq!(response.status(), 204);
    assert!(subscriptions(&ann).await.is_empty());
    let response = ann.delete(&path).send().await.expect("send");
    assert_problem(response, 404, "not_found").await;
    app.stop().await;
}

async fn endpoints_on_non_public_addresses_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.jobs.in_process = false).await;
    assert!(!app.config.webhooks.allow_private_targets);
    let ann = app.user("ann@example.com").await;
    for endpoint in [
        "http://127.0.0.1:1/push",
        "http://[::1]/push",
        "http://169.254.169.254/push",
        "http://10.0.0.1/push",
        "http://localhost/push",
    ] {
        let response = ann
            .post("/api/v1/push/subscriptions")
            .header("content-type", "application/json")
            .body(Browser::new().subscription_json(endpoint))
            .send()
            .await
            .expect("send");
        let detail = assert_problem(response, 400, "validation").await;
        assert!(
            detail.starts_with("endpoint") && detail.contains("address"),
            "{endpoint}: {detail}"
        );
    }
    assert!(subscriptions(&ann).await.is_empty());
    app.stop().await;
}

backend_tests!(
    a_browser_reads_each_event_it_is_pushed,
    the_configured_vapid_key_signs_every_message,
    a_subscription_the_push_service_calls_gone_ends,
    a_failed_push_is_sent_again_until_delivered,
    a_subscription_with_a_bad_field_is_refused_naming_it,
    subscriptions_are_managed_by_their_owner_alone,
    endpoints_on_non_public_addresses_are_refused,
);
