//! Webhooks: signed deliveries to real receivers on 127.0.0.1, retries with the same id,
//! timeouts, endpoints that are down, final answers, dead letters, who gets what, the
//! private-address rule, managing webhooks, and durability across a restart.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hark_api::events::NoteCreated;
use hark_api::{AttemptState, CreatedWebhook, DeliveryAttempt, EventData, EventType};
use hark_client::UploadOptions;
use hark_server::Config;
use hark_server::domain::ids::WebhookId;
use hark_server::domain::{Effects, Timestamp, UserId, Webhook};
use secrecy::ExposeSecret;
use sqlx::Connection;

use crate::helpers::{
    Backend, TestApp, TestUser, assert_problem, sample_wav, spawn_app, spawn_app_with,
};
use crate::receiver::{Answer, PATIENCE, Receiver, free_port, signed_by};

/// Receivers run on 127.0.0.1, and retries come quickly.
fn local_and_quick(config: &mut Config) {
    config.webhooks.allow_private_targets = true;
    config.webhooks.timeout_seconds = 5.0;
    config.webhooks.retry_base_seconds = 0.05;
    config.webhooks.retry_max_seconds = 0.2;
}

async fn create_webhook(user: &TestUser, url: &str, events: &[&str]) -> CreatedWebhook {
    let response = user
        .post("/api/v1/webhooks")
        .json(&serde_json::json!({"url": url, "events": events}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    response.json().await.expect("webhook")
}

async fn attempts(user: &TestUser, webhook: &str) -> Vec<DeliveryAttempt> {
    let response = user
        .get(&format!("/api/v1/webhooks/{webhook}/deliveries"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let list: hark_api::DeliveryAttemptList = response.json().await.expect("attempts");
    list.items
}

/// Waits until the webhook's attempts (newest first) satisfy `done`.
async fn attempts_until(
    user: &TestUser,
    webhook: &str,
    done: impl Fn(&[DeliveryAttempt]) -> bool,
) -> Vec<DeliveryAttempt> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let attempts = attempts(user, webhook).await;
        if done(&attempts) {
            return attempts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the attempts never got there: {attempts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn final_count(attempts: &[DeliveryAttempt]) -> usize {
    attempts
        .iter()
        .filter(|a| a.state != AttemptState::Retrying)
        .count()
}

async fn upload(user: &TestUser) -> String {
    user.client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload")
        .id
}

/// Rows of a table in the app's database that belong to a webhook or a user.
async fn rows(app: &TestApp, sql: &str, key: &str) -> i64 {
    let url = app.config.database_url.expose_secret();
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(key.to_owned())
            .fetch_one(&mut conn)
            .await
            .expect("count")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(key.to_owned())
            .fetch_one(&mut conn)
            .await
            .expect("count")
    }
}

async fn deliveries_are_signed_with_the_secret_shown_once(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let ann = app.user("ann@example.com").await;
    let receiver = Receiver::start(|_| Answer::Status(204)).await;
    let created = create_webhook(&ann, &receiver.url, &["note.created"]).await;
    let key = STANDARD
        .decode(created.secret.strip_prefix("whsec_").expect("prefix"))
        .expect("base64");
    assert!(key.len() >= 24, "{} key bytes", key.len());
    assert_eq!(created.events, [EventType::NoteCreated]);
    // Only the creation's answer carries the secret.
    let listed: serde_json::Value = ann
        .get("/api/v1/webhooks")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"][0]["id"], created.id.as_str());
    assert_eq!(listed["items"][0]["url"], receiver.url.as_str());
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");
    let one: serde_json::Value = ann
        .get(&format!("/api/v1/webhooks/{}", created.id))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(one.get("secret").is_none(), "{one}");

    let note = upload(&ann).await;
    let request = receiver.wait_for(1).await.remove(0);
    assert_eq!(request.content_type, "application/json");
    let event = request.event();
    assert_eq!(event.id, request.id, "webhook-id is the event's id");
    match &event.data {
        EventData::NoteCreated(created) => assert_eq!(created.note_id, note),
        other => panic!("expected note.created, got {other:?}"),
    }
    assert!(request.timestamp.parse::<i64>().expect("unix seconds") > 1_600_000_000);
    assert!(signed_by(&created.secret, &request), "{request:?}");
    // The check can fail: another body, or another secret, does not verify.
    let mut tampered = request.clone();
    tampered.body.push(b' ');
    assert!(!signed_by(&created.secret, &tampered));
    let other = create_webhook(&ann, &receiver.url, &["note.deleted"]).await;
    assert!(!signed_by(&other.secret, &request));

    let recorded = attempts_until(&ann, &created.id, |a| a.len() == 1).await;
    let attempt = &recorded[0];
    assert_eq!(
        (attempt.attempt, attempt.status_code, attempt.state),
        (1, Some(204), AttemptState::Delivered)
    );
    assert_eq!(attempt.event_id, event.id);
    assert_eq!(attempt.event_type, EventType::NoteCreated);
    assert_eq!(attempt.next_attempt_at, None);
    app.stop().await;
}

async fn failed_attempts_are_retried_with_the_same_id_until_delivered(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let ann = app.user("ann@example.com").await;
    let receiver = Receiver::start(|n| Answer::Status(if n < 2 { 500 } else { 200 })).await;
    let webhook = create_webhook(&ann, &receiver.url, &["note.created"]).await;
    upload(&ann).await;
    let received = receiver.wait_for(3).await;
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "{received:?}"
    );
    assert!(received.iter().all(|r| signed_by(&webhook.secret, r)));
    let recorded = attempts_until(&ann, &webhook.id, |a| final_count(a) == 1).await;
    let summary: Vec<(u32, Option<u16>, AttemptState)> = recorded
        .iter()
        .map(|a| (a.attempt, a.status_code, a.state))
        .collect();
    assert_eq!(
        summary,
        [
            (3, Some(200), AttemptState::Delivered),
            (2, Some(500), AttemptState::Retrying),
            (1, Some(500), AttemptState::Retrying),
        ]
    );
    assert!(recorded[1..].iter().all(|a| a.next_attempt_at.is_some()));
    assert!(recorded.iter().all(|a| a.event_id == received[0].id));
    // Delivered is final: the next event comes next, and the first never again.
    upload(&ann).await;
    let received = receiver.wait_for(4).await;
    assert_ne!(received[3].id, received[0].id);
    attempts_until(&ann, &webhook.id, |a| final_count(a) == 2).await;
    assert_eq!(
        receiver
            .received()
            .iter()
            .filter(|r| r.id == received[0].id)
            .count(),
        3
    );
    app.stop().await;
}

async fn an_endpoint_that_hangs_past_the_timeout_is_retried(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        local_and_quick(config);
        config.webhooks.timeout_seconds = 1.0;
    })
    .await;
    let ann = app.user("ann@example.com").await;
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Answer::Hang
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let webhook = create_webhook(&ann, &receiver.url, &["note.created"]).await;
    upload(&ann).await;
    let received = receiver.wait_for(2).await;
    assert_eq!(received[0].id, received[1].id);
    let recorded = attempts_until(&ann, &webhook.id, |a| final_count(a) == 1).await;
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].state, AttemptState::Delivered);
    let timed_out = &recorded[1];
    assert_eq!(
        (timed_out.attempt, timed_out.status_code, timed_out.state),
        (1, None, AttemptState::Retrying)
    );
    let error = timed_out.error.as_deref().unwrap_or_default();
    assert!(error.contains("no answer"), "{error}");
    app.stop().await;
}

async fn an_endpoint_that_was_down_gets_every_event_once_in_order(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        local_and_quick(config);
        config.webhooks.max_attempts = 10_000;
    })
    .await;
    let ann = app.user("ann@example.com").await;
    let port = free_port();
    let webhook = create_webhook(
        &ann,
        &format!("http://127.0.0.1:{port}/hook"),
        &["note.created"],
    )
    .await;
    let mut notes = Vec::new();
    for _ in 0..3 {
        notes.push(upload(&ann).await);
    }
    let failed = attempts_until(&ann, &webhook.id, |a| a.len() >= 2).await;
    let error = failed[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("connection"), "{error}");
    assert!(failed.iter().all(|a| a.state == AttemptState::Retrying));
    // Only the oldest event is tried while it fails: the later ones wait their turn.
    assert!(failed.iter().all(|a| a.event_id == failed[0].event_id));

    let receiver = Receiver::start_on(port, |_| Answer::Status(200)).await;
    receiver.wait_for(3).await;
    let recorded = attempts_until(&ann, &webhook.id, |a| {
        a.iter()
            .filter(|a| a.state == AttemptState::Delivered)
            .count()
            == 3
    })
    .await;
    let received = receiver.received();
    let arrived: Vec<String> = received
        .iter()
        .map(|r| match r.event().data {
            EventData::NoteCreated(created) => created.note_id,
            other => panic!("expected note.created, got {other:?}"),
        })
        .collect();
    assert_eq!(arrived, notes, "every event once, in order");
    let seqs: Vec<i64> = received.iter().map(|r| r.event().seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(recorded.iter().all(|a| a.state != AttemptState::Dead));
    app.stop().await;
}

async fn a_client_error_is_final(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let ann = app.user("ann@example.com").await;
    let receiver = Receiver::start(|_| Answer::Status(400)).await;
    let webhook = create_webhook(&ann, &receiver.url, &["note.created"]).await;
    upload(&ann).await;
    upload(&ann).await;
    // The second event is sent only once the first is final: its arrival says the first was
    // not retried.
    let received = receiver.wait_for(2).await;
    assert_ne!(received[0].id, received[1].id);
    let recorded = attempts_until(&ann, &webhook.id, |a| final_count(a) == 2).await;
    let summary: Vec<(u32, Option<u16>, AttemptState)> = recorded
        .iter()
        .map(|a| (a.attempt, a.status_code, a.state))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Some(400), AttemptState::Dead),
            (1, Some(400), AttemptState::Dead)
        ]
    );
    assert_eq!(receiver.received().len(), 2);
    app.stop().await;
}

async fn the_last_failed_attempt_dead_letters_and_later_events_go_on(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        local_and_quick(config);
        config.webhooks.max_attempts = 3;
    })
    .await;
    let ann = app.user("ann@example.com").await;
    let receiver = Receiver::start(|n| Answer::Status(if n < 3 { 503 } else { 200 })).await;
    let webhook = create_webhook(&ann, &receiver.url, &["note.created"]).await;
    upload(&ann).await;
    upload(&ann).await;
    let received = receiver.wait_for(4).await;
    assert!(received[..3].iter().all(|r| r.id == received[0].id));
    assert_ne!(received[3].id, received[0].id);
    let recorded = attempts_until(&ann, &webhook.id, |a| final_count(a) == 2).await;
    let summary: Vec<(u32, Option<u16>, AttemptState)> = recorded
        .iter()
        .map(|a| (a.attempt, a.status_code, a.state))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Some(200), AttemptState::Delivered),
            (3, Some(503), AttemptState::Dead),
            (2, Some(503), AttemptState::Retrying),
            (1, Some(503), AttemptState::Retrying),
        ]
    );
    app.stop().await;
}

async fn a_webhook_gets_only_the_event_types_it_asked_for(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let ann = app.user("ann@example.com").await;
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let webhook = create_webhook(&ann, &receiver.url, &["note.deleted"]).await;
    let note = upload(&ann).await;
    ann.client.delete_note(&note).await.expect("delete");
    // Deliveries go out in event order: a note.created would have come first.
    let first = receiver.wait_for(1).await.remove(0).event();
    match first.data {
        EventData::NoteDeleted(deleted) => assert_eq!(deleted.note_id, note),
        other => panic!("expected note.deleted, got {other:?}"),
    }
    let recorded = attempts_until(&ann, &webhook.id, |a| final_count(a) == 1).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].event_type, EventType::NoteDeleted);
    app.stop().await;
}

async fn a_webhook_gets_only_events_its_owner_may_see(backend: Backend) {
    let app = spawn_app_with(backend, local_and_quick).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let anns = Receiver::start(|_| Answer::Status(200)).await;
    let bobs = Receiver::start(|_| Answer::Status(200)).await;
    create_webhook(&ann, &anns.url, &["note.created", "note.received"]).await;
    let bob_webhook = create_webhook(&bob, &bobs.url, &["note.created", "note.received"]).await;
    let private = upload(&ann).await;
    let shared = ann
        .client
        .upload_bytes(
            sample_wav(),
            &UploadOptions {
                to: vec![bob.email.clone()],
                ..UploadOptions::default()
            },
        )
        .await
        .expect("upload")
        .id;
    let own = upload(&bob).await;
    // Bob's webhook gets its events in log order: had ann's private note reached it, it
    // would have come first.
    let bob_got: Vec<(EventType, String)> = bobs
        .wait_for(2)
        .await
        .iter()
        .map(|r| {
            let data = r.event().data;
            (data.kind(), data.note_id().to_owned())
        })
        .collect();
    assert_eq!(
        bob_got[..2],
        [
            (EventType::NoteReceived, shared.clone()),
            (EventType::NoteCreated, own)
        ]
    );
    let ann_got: Vec<(EventType, String)> = anns
        .wait_for(2)
        .await
        .iter()
        .map(|r| {
            let data = r.event().data;
            (data.kind(), data.note_id().to_owned())
        })
        .collect();
    assert_eq!(
        ann_got[..2],
        [
            (EventType::NoteCreated, private),
            (EventType::NoteCreated, shared)
        ]
    );
    attempts_until(&bob, &bob_webhook.id, |a| final_count(a) == 2).await;
    assert_eq!(bobs.received().len(), 2);
    app.stop().await;
}

async fn webhooks_to_non_public_addresses_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    assert!(!app.config.webhooks.allow_private_targets);
    let ann = app.user("ann@example.com").await;
    for url in [
        "http://127.0.0.1:1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://10.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/hook",
    ] {
        let response = ann
            .post("/api/v1/webhooks")
            .json(&serde_json::json!({"url": url, "events": ["note.created"]}))
            .send()
            .await
            .expect("send");
        let detail = assert_problem(response, 400, "validation").await;
        assert!(detail.contains("address"), "{url}: {detail}");
    }
    // A webhook whose address became non-public after its creation (a name moved, say) is
    // checked again on delivery, on the address connected to: refused, recorded, not retried.
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .expect("port")
        .trim_end_matches("/hook");
    let repos = hark_server::db::connect(app.config.database_url.expose_secret(), false)
        .await
        .expect("database");
    let mut planted = Vec::new();
    for url in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
    ] {
        let webhook = Webhook {
            id: WebhookId::generate(),
            owner_id: UserId::parse(&ann.id).expect("user id"),
            url,
            events: vec![EventType::NoteCreated],
            created_at: Timestamp::now(),
        };
        repos
            .webhooks
            .create_webhook(&webhook, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .await
            .expect("planted");
        planted.push(webhook.id.to_string());
    }
    upload(&ann).await;
    for webhook in &planted {
        let recorded = attempts_until(&ann, webhook, |a| final_count(a) == 1).await;
        assert_eq!(recorded.len(), 1, "not retried");
        let attempt = &recorded[0];
        assert_eq!(
            (attempt.status_code, attempt.state),
            (None, AttemptState::Dead)
        );
        let error = attempt.error.as_deref().unwrap_or_default();
        assert!(error.contains("loopback"), "{error}");
    }
    assert!(receiver.received().is_empty());
    app.stop().await;
}

async fn webhooks_are_managed_by_their_owner_alone(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        local_and_quick(config);
        config.webhooks.max_attempts = 10_000;
    })
    .await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let webhook = create_webhook(&ann, &url, &["note.ready", "note.created", "note.ready"]).await;
    assert_eq!(
        webhook.events,
        [EventType::NoteCreated, EventType::NoteReady]
    );
    let listed: hark_api::WebhookList = ann
        .get("/api/v1/webhooks")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, webhook.id);
    let one: hark_api::Webhook = ann
        .get(&format!("/api/v1/webhooks/{}", webhook.id))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("webhook");
    assert_eq!((one.url.as_str(), one.events.len()), (url.as_str(), 2));
    // Another user sees nothing of it, exactly as if it did not exist.
    let bobs: hark_api::WebhookList = bob
        .get("/api/v1/webhooks")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("list");
    assert!(bobs.items.is_empty());
    let this = format!("/api/v1/webhooks/{}", webhook.id);
    for response in [
        bob.get(&this).send().await.expect("send"),
        bob.delete(&this).send().await.expect("send"),
        bob.get(&format!("{this}/deliveries"))
            .send()
            .await
            .expect("send"),
        ann.get("/api/v1/webhooks/not-an-id")
            .send()
            .await
            .expect("send"),
        ann.get(&format!("/api/v1/webhooks/{}", uuid::Uuid::now_v7()))
            .send()
            .await
            .expect("send"),
    ] {
        assert_problem(response, 404, "not_found").await;
    }
    // Bad requests.
    for body in [
        serde_json::json!({"url": url, "events": []}),
        serde_json::json!({"url": url, "events": ["note.nope"]}),
        serde_json::json!({"url": url}),
        serde_json::json!({"url": "ftp://example.com/", "events": ["note.created"]}),
        serde_json::json!({"url": "not a url", "events": ["note.created"]}),
        serde_json::json!({"url": "/relative", "events": ["note.created"]}),
    ] {
        let response = ann
            .post("/api/v1/webhooks")
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_problem(response, 400, "validation").await;
    }
    let limit = ann
        .get(&format!("{this}/deliveries?limit=0"))
        .send()
        .await
        .expect("send");
    assert_problem(limit, 400, "validation").await;
    // Deleting it drops its deliveries, so nothing more is sent.
    upload(&ann).await;
    attempts_until(&ann, &webhook.id, |a| !a.is_empty()).await;
    let deleted = ann.delete(&this).send().await.expect("send");
    assert_eq!(deleted.status(), 204);
    let deliveries = "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1";
    assert_eq!(rows(&app, deliveries, &webhook.id).await, 0);
    for response in [
        ann.get(&this).send().await.expect("send"),
        ann.delete(&this).send().await.expect("send"),
        ann.get(&format!("{this}/deliveries"))
            .send()
            .await
            .expect("send"),
    ] {
        assert_problem(response, 404, "not_found").await;
    }
    // Deleting a user deletes their webhooks.
    create_webhook(&bob, &url, &["note.created"]).await;
    let owned = "SELECT COUNT(*) FROM webhooks WHERE user_id = $1";
    assert_eq!(rows(&app, owned, &bob.id).await, 1);
    let gone = bob
        .delete(&format!("/api/v1/users/{}", bob.id))
        .send()
        .await
        .expect("send");
    assert_eq!(gone.status(), 204);
    assert_eq!(rows(&app, owned, &bob.id).await, 0);
    app.stop().await;
}

async fn two_servers_on_one_database_send_each_event_once_in_order(backend: Backend) {
    let first = spawn_app_with(backend, local_and_quick).await;
    let database_url = first.config.database_url.clone();
    let second = spawn_app_with(backend, |config| {
        local_and_quick(config);
        config.database_url = database_url.clone();
    })
    .await;
    let ann = first.user("ann@example.com").await;
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let webhooks = ["/a", "/b", "/c"];
    for path in webhooks {
        let url = receiver.url.replace("/hook", path);
        create_webhook(&ann, &url, &["note.created"]).await;
    }
    let mut notes = Vec::new();
    for _ in 0..10 {
        notes.push(upload(&ann).await);
    }
    receiver.wait_for(webhooks.len() * notes.len()).await;
    for path in webhooks {
        let arrived: Vec<String> = receiver
            .received()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.event().data.note_id().to_owned())
            .collect();
        assert_eq!(arrived, notes, "{path}: every event once, in order");
    }
    second.stop().await;
    first.stop().await;
}

async fn an_event_committed_while_no_server_runs_is_delivered_when_one_starts(backend: Backend) {
    let mut first = spawn_app_with(backend, local_and_quick).await;
    let ann = first.user("ann@example.com").await;
    let port = free_port();
    let webhook = create_webhook(
        &ann,
        &format!("http://127.0.0.1:{port}/hook"),
        &["note.created"],
    )
    .await;
    first.shut_down().await;
    // Acknowledged while no server runs: only the log knows of it.
    let database_url = first.config.database_url.clone();
    let repos = hark_server::db::connect(database_url.expose_secret(), false)
        .await
        .expect("database");
    let effects = Effects::none().event(
        EventData::NoteCreated(NoteCreated {
            note_id: uuid::Uuid::now_v7().to_string(),
            name: "offline.wav".into(),
            title: None,
        }),
        vec![UserId::parse(&ann.id).expect("user id")],
    );
    repos.events.append(&effects).await.expect("append");
    let receiver = Receiver::start_on(port, |_| Answer::Status(200)).await;
    let second = spawn_app_with(backend, |config| {
        local_and_quick(config);
        config.database_url = database_url.clone();
    })
    .await;
    let received = receiver.wait_for(1).await;
    match received[0].event().data {
        EventData::NoteCreated(created) => assert_eq!(created.name, "offline.wav"),
        other => panic!("expected note.created, got {other:?}"),
    }
    assert!(signed_by(&webhook.secret, &received[0]));
    second.stop().await;
    first.stop().await;
}

backend_tests!(
    deliveries_are_signed_with_the_secret_shown_once,
    failed_attempts_are_retried_with_the_same_id_until_delivered,
    an_endpoint_that_hangs_past_the_timeout_is_retried,
    an_endpoint_that_was_down_gets_every_event_once_in_order,
    a_client_error_is_final,
    the_last_failed_attempt_dead_letters_and_later_events_go_on,
    a_webhook_gets_only_the_event_types_it_asked_for,
    a_webhook_gets_only_events_its_owner_may_see,
    webhooks_to_non_public_addresses_are_refused,
    webhooks_are_managed_by_their_owner_alone,
    two_servers_on_one_database_send_each_event_once_in_order,
    an_event_committed_while_no_server_runs_is_delivered_when_one_starts,
);
