//! `hark notifier`'s push messages, against the real RabbitMQ and NATS JetStream: a server that
//! leaves push to notifiers publishes every event, and a notifier on another machine (a data
//! directory of its own, the servers' VAPID key from the configuration) makes and sends each
//! browser's message once, however often the broker hands it the event.

use std::time::Duration;

use hark_api::{EventData, PushKey};
use hark_broker::{BrokerConfig, consume};
use hark_push::VapidKey;
use hark_server::broker::GROUP;
use hark_server::push::KEY_FILE;
use hark_testkit::push::Browser;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, on_broker, publishing_to};
use crate::helpers::{Backend, spawn_app_with};
use crate::push::{
    eventually, local_and_quick, message_states, send_note, subscribe, vapid_claims,
};
use crate::receiver::{Answer, PATIENCE, Received, Receiver};

/// How long an event taken and not acknowledged stays with its taker on NATS (RabbitMQ hands
/// it on as soon as the taker's connection ends).
const ACK_WAIT: Duration = Duration::from_secs(1);

on_brokers! {
    sqlite_rabbitmq: Sqlite, RabbitMq => [
        a_notifier_pushes_each_message_once_however_often_its_event_comes,
    ];
    sqlite_nats: Sqlite, Nats => [
        a_notifier_pushes_each_message_once_however_often_its_event_comes,
    ];
    postgres_rabbitmq: Postgres, RabbitMq => [
        a_notifier_pushes_each_message_once_however_often_its_event_comes,
    ];
    postgres_nats: Postgres, Nats => [
        a_notifier_pushes_each_message_once_however_often_its_event_comes,
    ];
}

/// The note a push message carries, read as the browser reads it; checks the message is
/// signed with `public_key`.
fn pushed_note(request: &Received, browser: &Browser, public_key: &str) -> String {
    vapid_claims(request, public_key);
    let event: hark_api::Event =
        serde_json::from_slice(&browser.read(&request.body)).expect("the event's JSON");
    match event.data {
        EventData::NoteReceived(received) => received.note_id,
        other => panic!("expected note.received, got {other:?}"),
    }
}

async fn a_notifier_pushes_each_message_once_however_often_its_event_comes(
    backend: Backend,
    mut broker: BrokerConfig,
) {
    broker.ack_wait = ACK_WAIT;
    let key = VapidKey::generate();
    let app = spawn_app_with(backend, |config| {
        publishing_to(&broker)(config);
        local_and_quick(config);
        config.push.in_process = false;
        config.webhooks.in_process = false;
        config.push.vapid_private_key = key.to_base64url().into();
    })
    .await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    // The configured key is the one browsers subscribe with; the server makes none of its own.
    let published: PushKey = bob
        .get("/api/v1/push/key")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("key");
    assert_eq!(published.public_key, key.public_key_base64url());
    assert!(!app.config.data_dir.join(KEY_FILE).exists());
    let service = Receiver::start(|_| Answer::Status(201)).await;
    let browser = Browser::new();
    let subscription = subscribe(&bob, &browser, &service.url).await;

    // A notifier on another machine: nothing in its data directory, the key from the config.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let mut config = app.config.clone();
    config.data_dir = elsewhere.path().to_owned();
    let repos = hark_server::db::connect(config.database_url.expose_secret(), false)
        .await
        .expect("database");
    let notifier =
        hark_server::app::notifier(&config, repos.clone(), broker.clone()).expect("notifier");

    // A member of the group takes the first note's events and goes away without acknowledging
    // them, as a notifier that dies does: the broker hands them to the notifier.
    let mut taker = consume(&broker, GROUP).await.expect("joins the group");
    let first = send_note(&ann, &bob).await;
    let taking = async {
        loop {
            let delivery = taker.next().await.expect("a delivery");
            let event: hark_api::Event = serde_json::from_slice(&delivery.body).expect("event");
            if matches!(event.data, EventData::NoteReceived(_)) {
                break;
            }
        }
    };
    tokio::time::timeout(PATIENCE, taking)
        .await
        .expect("the note's events reached the group");
    drop(taker);
    let stop = CancellationToken::new();
    let running = tokio::spawn(notifier.run(stop.clone()));
    let request = service.wait_for(1).await.remove(0);
    assert_eq!(
        pushed_note(&request, &browser, &published.public_key),
        first
    );

    // The relay publishes the first note's events again (as after a lost acknowledgement;
    // NATS under new ids, since its stream drops a repeated id), then the second note's. The
    // one member takes them in order: when the second note is pushed, the repeats were handled.
    let events = repos.events.events_after(0, 1000).await.expect("the log");
    let publisher = hark_broker::connect(&broker).await.expect("the broker");
    for event in events.iter().map(|event| event.to_wire()) {
        let body = serde_json::to_vec(&event).expect("json");
        let id = format!("{}-again", event.id);
        publisher
            .publish(event.data.kind().as_str(), &id, &body)
            .await
            .expect("published again");
    }
    let second = send_note(&ann, &bob).await;
    service.wait_for(2).await;
    eventually(
        || message_states(&app, &subscription.id),
        |states| states == &["delivered", "delivered"],
    )
    .await;
    let notes: Vec<String> = service
        .received()
        .iter()
        .map(|request| pushed_note(request, &browser, &published.public_key))
        .collect();
    assert_eq!(notes, [first, second], "each note pushed once, in order");
    // `hark serve` left push to the notifier: its dispatcher never moved.
    let dispatched = repos
        .positions
        .open_position(hark_server::push::CONSUMER)
        .await;
    assert_eq!(dispatched.expect("the dispatcher's position"), 0);
    stop.cancel();
    running.await.expect("the notifier stops");
    app.stop().await;
}
