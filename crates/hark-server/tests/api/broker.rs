//! The outbox relay against the real RabbitMQ (127.0.0.1:5672) and NATS JetStream
//! (127.0.0.1:4222), each test under a namespace of its own: every event reaches the broker's
//! consumers once and in order, one server at a time publishes, and a broker that goes away (a
//! proxy between the server and the broker is cut) holds up no upload and loses no event.

use std::collections::HashSet;
use std::error::Error;
use std::time::Duration;

use hark_broker::{BrokerConfig, Consumer, consume};
use hark_server::Config;
use hark_server::domain::LoggedEvent;
use secrecy::ExposeSecret;

use crate::helpers::{Backend, TestApp, TestUser, sample_wav, spawn_app_with};
use hark_testkit::proxy::Proxy;

/// The consumer group the tests read the stream with.
const GROUP: &str = "reader";
/// Uploads per series; each makes a `note.created` and a `note.received`.
const UPLOADS: usize = 6;
/// How long a test waits for what must happen before calling it a hang. Only a guard against
/// a test that never ends: nothing here asserts on speed.
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Broker {
    RabbitMq,
    Nats,
}

impl Broker {
    fn url(self) -> &'static str {
        match self {
            Broker::RabbitMq => "amqp://guest:guest@127.0.0.1:5672/%2f",
            Broker::Nats => "nats://127.0.0.1:4222",
        }
    }
}

/// Runs each `async fn(Backend, BrokerConfig)` as a test on the given database and broker,
/// with `on_broker` and `Broker` in scope.
macro_rules! on_brokers {
    ($($module:ident: $backend:ident, $broker:ident => [$($scenario:ident),+ $(,)?];)+) => {
        $(mod $module {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                super::on_broker(super::Broker::$broker, |config| {
                    super::$scenario(crate::helpers::Backend::$backend, config)
                })
                .await;
            })+
        })+
    };
}

on_brokers! {
    sqlite_rabbitmq: Sqlite, RabbitMq => [
        every_event_reaches_the_broker_once_in_order,
        a_broker_that_goes_away_holds_up_no_upload_and_loses_no_event,
    ];
    sqlite_nats: Sqlite, Nats => [every_event_reaches_the_broker_once_in_order];
    postgres_rabbitmq: Postgres, RabbitMq => [
        every_event_reaches_the_broker_once_in_order,
        two_servers_on_one_database_publish_each_event_once_in_order,
    ];
    postgres_nats: Postgres, Nats => [
        every_event_reaches_the_broker_once_in_order,
        a_broker_that_goes_away_holds_up_no_upload_and_loses_no_event,
    ];
}

/// Runs `scenario` under a namespace of its own on `broker`, then removes what the namespace
/// declared there, whether the scenario passed or not.
pub(crate) async fn on_broker<F, Fut>(broker: Broker, scenario: F)
where
    F: FnOnce(BrokerConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let namespace = format!("hark-test-{}", uuid::Uuid::now_v7().simple());
    let config = BrokerConfig::new(broker.url()).with_namespace(namespace);
    let outcome = tokio::spawn(scenario(config.clone())).await;
    let removed = remove_namespace(&config).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
    if let Err(error) = removed {
        panic!("could not remove namespace {}: {error}", config.namespace);
    }
}

async fn remove_namespace(config: &BrokerConfig) -> Result<(), Box<dyn Error>> {
    if config.url.starts_with("amqp") {
        let connection =
            lapin::Connection::connect(&config.url, lapin::ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        // Deleting a queue that was never declared succeeds.
        for group in [GROUP, hark_server::broker::GROUP] {
            channel
                .queue_delete(config.queue_name(group).into(), Default::default())
                .await?;
        }
        channel
            .exchange_delete(config.exchange_name().into(), Default::default())
            .await?;
        connection.close(200, "OK".into()).await?;
    } else {
        let client = async_nats::connect(config.url.as_str()).await?;
        async_nats::jetstream::new(client)
            .delete_stream(config.stream_name())
            .await?;
    }
    Ok(())
}

/// The server publishes to `broker`; no job runs, so the uploads' events are all there is.
pub(crate) fn publishing_to(broker: &BrokerConfig) -> impl Fn(&mut Config) {
    let broker = broker.clone();
    move |config: &mut Config| {
        config.broker.url = broker.url.clone().into();
        config.broker.namespace = broker.namespace.clone();
        config.broker.timeout_seconds = 2.0;
        config.jobs.in_process = false;
    }
}

/// Uploads `count` notes as `sender` through the server at `base`, each to `recipient`,
/// asserting each is answered 201; their ids.
async fn upload_series(
    base: &str,
    sender: &TestUser,
    recipient: &TestUser,
    count: usize,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let response = reqwest::Client::new()
            .post(format!(
                "{base}/api/v1/notes?name=series-{n}.wav&to={}",
                recipient.id
            ))
            .bearer_auth(&sender.token)
            .header("content-type", "audio/wav")
            .body(sample_wav())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 201, "upload {n}");
        let note: hark_api::Note = response.json().await.expect("a note");
        ids.push(note.id);
    }
    ids
}

/// Every event in the app's log, in `seq` order.
async fn logged_events(app: &TestApp) -> Vec<LoggedEvent> {
    let repos = hark_server::db::connect(app.config.database_url.expose_secret(), false)
        .await
        .expect("database");
    repos.events.events_after(0, 10_000).await.expect("the log")
}

/// Takes events from the group, acknowledging each, until `enough` says so; checks that each
/// message is the event as the API shows it, under its own type and id.
async fn receive(
    consumer: &mut Consumer,
    enough: impl Fn(&[hark_api::Event]) -> bool,
) -> Vec<hark_api::Event> {
    let receiving = async {
        let mut received: Vec<hark_api::Event> = Vec::new();
        while !enough(&received) {
            let delivery = consumer.next().await.expect("a delivery");
            consumer.ack(&delivery).await.expect("the ack goes out");
            let event: hark_api::Event =
                serde_json::from_slice(&delivery.body).expect("the body is an event");
            assert_eq!(delivery.event_id, event.id);
            assert_eq!(delivery.event_type, event.data.kind().as_str());
            received.push(event);
        }
        received
    };
    tokio::time::timeout(PATIENCE, receiving)
        .await
        .expect("the events never all arrived")
}

/// What `/readyz` says of the broker.
async fn broker_readiness(app: &TestApp) -> String {
    let response = app.http.get(app.url("/readyz")).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let ready: serde_json::Value = response.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    ready["broker"]
        .as_str()
        .expect("the broker is reported")
        .to_owned()
}

/// Only one outage test runs at a time in this process.
static OUTAGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Publishes to the broker that failed in this process, as `/metrics` counts them.
async fn publish_failures(app: &TestApp) -> u64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix("hark_broker_publish_failures_total "))
        .map_or(0, |count| count.trim().parse().expect("a count"))
}

async fn readiness_becomes(app: &TestApp, broker: &str) {
    let waiting = async {
        while broker_readiness(app).await != broker {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap_or_else(|_| panic!("/readyz never said the broker is {broker}"));
}

fn wire(events: &[LoggedEvent]) -> Vec<hark_api::Event> {
    events.iter().map(LoggedEvent::to_wire).collect()
}

async fn every_event_reaches_the_broker_once_in_order(backend: Backend, broker: BrokerConfig) {
    // A new group gets what is published after it joins.
    let mut consumer = consume(&broker, GROUP).await.expect("joins the group");
    let mut app = spawn_app_with(backend, publishing_to(&broker)).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let notes = upload_series(&app.base, &ann, &bob, UPLOADS).await;

    let logged = logged_events(&app).await;
    assert_eq!(logged.len(), 2 * UPLOADS, "{logged:?}");
    let received = receive(&mut consumer, |received| received.len() == logged.len()).await;
    assert_eq!(received, wire(&logged));
    let created: Vec<&str> = received
        .iter()
        .filter(|event| event.data.kind().as_str() == "note.created")
        .map(|event| event.data.note_id())
        .collect();
    assert_eq!(created, notes);
    assert_eq!(broker_readiness(&app).await, "ok");
    app.shut_down().await;
    app.stop().await;
}

async fn a_broker_that_goes_away_holds_up_no_upload_and_loses_no_event(
    backend: Backend,
    broker: BrokerConfig,
) {
    let proxy = Proxy::start(&broker.url).await;
    let through_proxy = BrokerConfig {
        url: proxy.url(&broker.url),
        ..broker.clone()
    };
    // The test reads the broker directly: only the server loses it.
    let mut consumer = consume(&broker, GROUP).await.expect("joins the group");
    let mut app = spawn_app_with(backend, publishing_to(&through_proxy)).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    assert_eq!(broker_readiness(&app).await, "ok");
    upload_series(&app.base, &ann, &bob, UPLOADS).await;

    // Failures are counted process-wide: one outage at a time makes them this test's own.
    let _alone = OUTAGE.lock().await;
    let failures = publish_failures(&app).await;
    proxy.cut();
    readiness_becomes(&app, "unavailable").await;
    upload_series(&app.base, &ann, &bob, UPLOADS).await;
    // The relay has tried, and failed, to publish them (a NATS client holds what it publishes
    // while disconnected and sends it on reconnecting: only its timeout fails the publish).
    let waiting = async {
        while publish_failures(&app).await == failures {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("no publish failed while the broker was away");
    assert_eq!(
        broker_readiness(&app).await,
        "unavailable",
        "the broker is still away"
    );

    proxy.restore();
    readiness_becomes(&app, "ok").await;
    upload_series(&app.base, &ann, &bob, UPLOADS).await;

    let logged = logged_events(&app).await;
    assert_eq!(logged.len(), 3 * 2 * UPLOADS);
    let wanted: HashSet<&str> = logged.iter().map(|event| event.id.as_str()).collect();
    let received = receive(&mut consumer, |received| {
        let seen: HashSet<&str> = received.iter().map(|event| event.id.as_str()).collect();
        wanted.is_subset(&seen)
    })
    .await;
    // At least once: an event may come twice, but each first comes in the log's order.
    let mut seen = HashSet::new();
    let first_arrivals: Vec<hark_api::Event> = received
        .into_iter()
        .filter(|event| seen.insert(event.id.clone()))
        .collect();
    assert_eq!(first_arrivals, wire(&logged));
    app.shut_down().await;
    app.stop().await;
}

async fn two_servers_on_one_database_publish_each_event_once_in_order(
    backend: Backend,
    broker: BrokerConfig,
) {
    let mut consumer = consume(&broker, GROUP).await.expect("joins the group");
    let mut first = spawn_app_with(backend, publishing_to(&broker)).await;
    let database_url = first.config.database_url.clone();
    let mut second = spawn_app_with(backend, |config| {
        publishing_to(&broker)(config);
        config.database_url = database_url.clone();
    })
    .await;
    let ann = first.user("ann@example.com").await;
    let bob = first.user("bob@example.com").await;
    for round in 0..UPLOADS {
        let server = if round % 2 == 0 { &first } else { &second };
        upload_series(&server.base, &ann, &bob, 1).await;
    }

    let logged = logged_events(&first).await;
    assert_eq!(logged.len(), 2 * UPLOADS);
    let received = receive(&mut consumer, |received| received.len() == logged.len()).await;
    assert_eq!(received, wire(&logged), "each event once, in order");
    second.shut_down().await;
    first.shut_down().await;
    second.stop().await;
    first.stop().await;
}
