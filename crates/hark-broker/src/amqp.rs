//! RabbitMQ: a durable topic exchange per namespace, publisher confirms, and a durable queue per
//! consumer group.
//!
//! lapin does not reconnect on its own (its opt-in recovery keeps a channel "recovering" rather
//! than failing it, which would turn an outage into a hang), so both sides keep their connection
//! and throw it away when it breaks: the next call opens a fresh one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use crate::consumer::{AckHandle, Reconnect};
use crate::error::within;
use crate::{Broker, BrokerConfig, BrokerError, Delivery};

/// Unacknowledged deliveries one consumer may hold; more would only sit in its memory while
/// another consumer of the group is idle.
const PREFETCH: u16 = 32;

/// Marks a message as persistent, so a durable queue keeps it across a broker restart.
const PERSISTENT: u8 = 2;

/// A connection with one channel on it, dropped (and so closed) together.
struct Link {
    // Held so the connection lives as long as its channel; dropping it closes the connection.
    _connection: Connection,
    channel: Channel,
    /// Set when a publish on it failed: a connection that stopped answering still looks open.
    broken: AtomicBool,
}

impl Link {
    async fn open(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let properties = ConnectionProperties::default().with_connection_name("hark".into());
        // With lapin's `tokio` feature this runs on the caller's Tokio runtime.
        let connection = Connection::connect(&config.url, properties)
            .await
            .map_err(|source| BrokerError::Connect {
                url: config.redacted_url(),
                source: source.into(),
            })?;
        let channel = connection.create_channel().await?;
        channel
            .exchange_declare(
                config.exchange_name().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            _connection: connection,
            channel,
            broken: AtomicBool::new(false),
        })
    }

    fn is_open(&self) -> bool {
        !self.broken.load(Ordering::Relaxed) && self.channel.status().connected()
    }
}

/// Publishes on a confirm-mode channel, opening a new connection whenever the last one broke.
pub(crate) struct AmqpBroker {
    config: BrokerConfig,
    link: Mutex<Option<Arc<Link>>>,
}

impl AmqpBroker {
    pub(crate) async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let broker = Self {
            config: config.clone(),
            link: Mutex::new(None),
        };
        within(config.timeout, "connect", broker.link()).await?;
        Ok(broker)
    }

    /// The open link, or a new one if there is none or it broke (the old one is dropped, and so
    /// closed, once no publish uses it any more).
    async fn link(&self) -> Result<Arc<Link>, BrokerError> {
        let mut current = self.link.lock().await;
        if let Some(link) = current.as_ref().filter(|link| link.is_open()) {
            return Ok(link.clone());
        }
        *current = None;
        let link = Link::open(&self.config).await?;
        link.channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let link = Arc::new(link);
        *current = Some(link.clone());
        Ok(link)
    }

    async fn publish_on(
        &self,
        link: &Link,
        event_type: &str,
        event_id: &str,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_message_id(event_id.into());
        let confirmation = link
            .channel
            .basic_publish(
                self.config.exchange_name().into(),
                self.config.subject(event_type).into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await?;
        if confirmation.is_ack() {
            Ok(())
        } else {
            Err(BrokerError::Refused {
                reason: "RabbitMQ answered the publish with a nack".to_owned(),
            })
        }
    }
}

#[async_trait]
impl Broker for AmqpBroker {
    async fn publish(
        &self,
        event_type: &str,
        event_id: &str,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let mut used = None;
        // One deadline for everything, waiting for the lock and reconnecting included.
        let outcome = within(self.config.timeout, "publish", async {
            let link = used.insert(self.link().await?);
            self.publish_on(link, event_type, event_id, body).await
        })
        .await;
        // A nack leaves the channel fine; anything else, a timeout included (a connection
        // that stopped answering), means the next publish should start on a new one.
        if let (Err(error), Some(link)) = (&outcome, &used)
            && !matches!(error, BrokerError::Refused { .. })
        {
            link.broken.store(true, Ordering::Relaxed);
        }
        outcome
    }

    async fn healthy(&self) -> bool {
        within(self.config.timeout, "connect", self.link())
            .await
            .is_ok()
    }
}

/// A subscription to a group's queue, and the connection it lives on.
struct Subscription {
    _link: Link,
    deliveries: lapin::Consumer,
}

impl Subscription {
    async fn open(config: &BrokerConfig, group: &str) -> Result<Self, BrokerError> {
        let link = Link::open(config).await?;
        let queue = config.queue_name(group);
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let channel = &link.channel;
        channel
            .queue_declare(queue.as_str().into(), durable, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                config.exchange_name().into(),
                format!("{}.#", config.namespace).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        // Manual acknowledgement (no_ack = false): what a consumer took but never acked goes
        // back to the queue when its connection ends.
        let deliveries = channel
            .basic_consume(
                queue.as_str().into(),
                group.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            _link: link,
            deliveries,
        })
    }
}

/// Consumes a group's queue, resubscribing on a new connection after the old one broke.
pub(crate) struct AmqpConsumer {
    config: BrokerConfig,
    group: String,
    subscription: Option<Subscription>,
    reconnect: Reconnect,
}

impl AmqpConsumer {
    pub(crate) async fn subscribe(config: &BrokerConfig, group: &str) -> Result<Self, BrokerError> {
        let subscription = within(
            config.timeout,
            "subscribe",
            Subscription::open(config, group),
        )
        .await?;
        Ok(Self {
            config: config.clone(),
            group: group.to_owned(),
            subscription: Some(subscription),
            reconnect: Reconnect::default(),
        })
    }

    pub(crate) async fn next(&mut self) -> Result<Delivery, BrokerError> {
        self.reconnect.pause().await;
        let subscription = match &mut self.subscription {
            Some(subscription) => subscription,
            None => {
                let opened = within(
                    self.config.timeout,
                    "subscribe",
                    Subscription::open(&self.config, &self.group),
                )
                .await;
                self.subscription.insert(self.reconnect.outcome(opened)?)
            }
        };
        let received = match subscription.deliveries.next().await {
            Some(Ok(delivery)) => Ok(delivery),
            Some(Err(error)) => Err(BrokerError::from(error)),
            None => Err(BrokerError::SubscriptionEnded),
        };
        match received {
            Ok(delivery) => {
                self.reconnect.succeeded();
                Ok(self.delivery(delivery))
            }
            Err(error) => {
                // Dropping the subscription closes its connection; RabbitMQ requeues whatever
                // was not acked, and the next call subscribes afresh.
                self.subscription = None;
                self.reconnect.failed();
                Err(error)
            }
        }
    }

    fn delivery(&self, delivery: lapin::message::Delivery) -> Delivery {
        let event_type = self
            .config
            .event_type(delivery.routing_key.as_str())
            .unwrap_or(delivery.routing_key.as_str())
            .to_owned();
        let event_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        Delivery {
            event_type,
            event_id,
            body: delivery.data,
            ack: AckHandle::Amqp(delivery.acker),
        }
    }
}
