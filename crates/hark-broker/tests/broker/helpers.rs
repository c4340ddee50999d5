use std::collections::HashSet;
use std::error::Error;
use std::time::Duration;

use hark_broker::{Broker, BrokerConfig, Consumer, Delivery};

/// The consumer group every scenario uses (and clean-up removes).
pub const GROUP: &str = "notifier";

/// How long a scenario waits for something that must happen before it calls it a hang. Only a
/// guard against a test that never ends: nothing here asserts on speed.
pub const PATIENCE: Duration = Duration::from_secs(60);

const EVENT_TYPES: [&str; 6] = [
    "note.created",
    "note.received",
    "note.ready",
    "note.failed",
    "note.listened",
    "note.deleted",
];

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    RabbitMq,
    Nats,
}

impl Backend {
    pub fn url(self) -> &'static str {
        match self {
            Self::RabbitMq => "amqp://guest:guest@127.0.0.1:5672/%2f",
            Self::Nats => "nats://127.0.0.1:4222",
        }
    }
}

/// Runs `scenario` against `backend` under a namespace of its own, then removes everything the
/// namespace declared, whether the scenario passed or not.
pub async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(BrokerConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let namespace = format!("hark-test-{}", uuid::Uuid::now_v7().simple());
    let config = BrokerConfig::new(backend.url()).with_namespace(namespace);
    let outcome = tokio::spawn(scenario(config.clone())).await;
    let cleaned = remove_namespace(&config).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
    if let Err(error) = cleaned {
        panic!("could not remove namespace {}: {error}", config.namespace);
    }
}

async fn remove_namespace(config: &BrokerConfig) -> Result<(), Box<dyn Error>> {
    if config.url.starts_with("amqp") {
        let connection =
            lapin::Connection::connect(&config.url, lapin::ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .queue_delete(config.queue_name(GROUP).into(), Default::default())
            .await?;
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

/// An event as the outbox relay would publish it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_type: String,
    pub id: String,
    /// Text, so that a failing comparison shows it readably.
    pub body: String,
}

impl Event {
    pub fn numbered(n: usize) -> Self {
        let event_type = EVENT_TYPES[n % EVENT_TYPES.len()].to_owned();
        let id = uuid::Uuid::now_v7().to_string();
        let body = format!(r#"{{"id":"{id}","type":"{event_type}","n":{n}}}"#);
        Self {
            event_type,
            id,
            body,
        }
    }

    pub fn of(delivery: &Delivery) -> Self {
        Self {
            event_type: delivery.event_type.clone(),
            id: delivery.event_id.clone(),
            body: String::from_utf8_lossy(&delivery.body).into_owned(),
        }
    }

    pub async fn publish(&self, broker: &dyn Broker) -> Result<(), hark_broker::BrokerError> {
        broker
            .publish(&self.event_type, &self.id, self.body.as_bytes())
            .await
    }
}

/// Publishes `count` new events one after the other, each acknowledged.
pub async fn publish_events(broker: &dyn Broker, count: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(count);
    for n in 0..count {
        let event = Event::numbered(n);
        event
            .publish(broker)
            .await
            .unwrap_or_else(|error| panic!("publishing event {n} failed: {error:?}"));
        events.push(event);
    }
    events
}

/// Waits for `future`, failing the test if it hangs.
pub async fn patiently<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {PATIENCE:?}"))
}

/// Takes the next `count` deliveries, acknowledging each.
pub async fn receive_and_ack(consumer: &mut Consumer, count: usize) -> Vec<Event> {
    patiently("receiving events", async {
        let mut received = Vec::with_capacity(count);
        while received.len() < count {
            let delivery = consumer.next().await.expect("a delivery");
            consumer.ack(&delivery).await.expect("the ack goes out");
            received.push(Event::of(&delivery));
        }
        received
    })
    .await
}

pub fn ids(events: &[Event]) -> HashSet<String> {
    events.iter().map(|event| event.id.clone()).collect()
}
