//! Hark's broker port: hands every event to RabbitMQ or NATS JetStream, and lets `hark notifier`
//! processes share the work of consuming them.
//!
//! Delivery is at least once: [`Broker::publish`] returns only once the broker has the message
//! (a publisher confirm, a JetStream PubAck), and a consumer's event counts as done only once it
//! acknowledges it. Both sides survive the broker going away: calls fail within
//! [`BrokerConfig::timeout`] while it is gone, and work again once it is back.
//!
//! ```no_run
//! # async fn run() -> Result<(), hark_broker::BrokerError> {
//! use hark_broker::{BrokerConfig, connect, consume};
//!
//! let config = BrokerConfig::new("nats://127.0.0.1:4222");
//! let broker = connect(&config).await?;
//! broker.publish("note.created", "0190f1c2-0000-7000-8000-000000000001", b"{}").await?;
//!
//! let mut consumer = consume(&config, "notifier").await?;
//! let delivery = consumer.next().await?;
//! consumer.ack(&delivery).await?;
//! # Ok(())
//! # }
//! ```

mod amqp;
mod config;
mod consumer;
mod error;
mod nats;

use std::sync::Arc;

use async_trait::async_trait;

pub use config::{BrokerConfig, DEFAULT_ACK_WAIT, DEFAULT_NAMESPACE, DEFAULT_TIMEOUT};
pub use consumer::{Consumer, Delivery};
pub use error::BrokerError;

use consumer::Backend;

/// Where events are published.
///
/// Implementations MUST return `Ok` from `publish` only after the broker acknowledged the
/// message as stored, MUST fail within the configured timeout instead of waiting for a broker
/// that is gone, and MUST reconnect by themselves on a later call once it is back.
#[async_trait]
pub trait Broker: Send + Sync {
    /// Publishes one event as `<namespace>.<event_type>` and waits for the broker to take it.
    ///
    /// `event_id` travels with the message (AMQP `message_id`, NATS `Nats-Msg-Id`). JetStream
    /// drops a second publish of the same id within two minutes, so a retry after a lost
    /// acknowledgement does not store the event twice; consumers must still expect duplicates.
    async fn publish(
        &self,
        event_type: &str,
        event_id: &str,
        body: &[u8],
    ) -> Result<(), BrokerError>;

    /// Whether the broker can be reached now (for `/readyz`). Never waits longer than the
    /// configured timeout.
    async fn healthy(&self) -> bool;
}

enum Scheme {
    Amqp,
    Nats,
}

fn scheme(config: &BrokerConfig) -> Result<Scheme, BrokerError> {
    let scheme = config
        .url
        .split_once("://")
        .map_or("", |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "amqp" => Ok(Scheme::Amqp),
        "nats" => Ok(Scheme::Nats),
        _ => Err(BrokerError::UnsupportedScheme {
            scheme: scheme.to_owned(),
        }),
    }
}

/// Connects to the broker the URL's scheme names, and declares the namespace's exchange
/// (RabbitMQ) or creates or updates its stream (JetStream).
pub async fn connect(config: &BrokerConfig) -> Result<Arc<dyn Broker>, BrokerError> {
    config.validate(None)?;
    Ok(match scheme(config)? {
        Scheme::Amqp => Arc::new(amqp::AmqpBroker::connect(config).await?),
        Scheme::Nats => Arc::new(nats::NatsBroker::connect(config).await?),
    })
}

/// Joins consumer group `group`: a durable queue `<namespace>.<group>` bound to every event
/// (RabbitMQ), or a durable pull consumer named `group` (JetStream), created if it does not
/// exist. A new group receives the events published after it was created.
pub async fn consume(config: &BrokerConfig, group: &str) -> Result<Consumer, BrokerError> {
    config.validate(Some(group))?;
    let backend = match scheme(config)? {
        Scheme::Amqp => Backend::Amqp(amqp::AmqpConsumer::subscribe(config, group).await?),
        Scheme::Nats => Backend::Nats(nats::NatsConsumer::subscribe(config, group).await?),
    };
    Ok(Consumer { backend })
}
