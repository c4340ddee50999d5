//! NATS JetStream: one file-backed stream per namespace, deduplicated by event id, and a durable
//! pull consumer per consumer group.
//!
//! The NATS client reconnects by itself (and buffers what is published meanwhile), so this side
//! only bounds every wait and reopens a pull subscription that failed.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self as js, Context};
use async_nats::{ConnectOptions, connection::State, header::NATS_MESSAGE_ID};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::consumer::{AckHandle, Reconnect};
use crate::error::within;
use crate::{Broker, BrokerConfig, BrokerError, Delivery};

/// A republish of an event whose acknowledgement was lost is dropped by JetStream if it comes
/// within this window; the outbox relay retries well within it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Messages one consumer pulls at a time, like RabbitMQ's prefetch.
const PULL_BATCH: usize = 32;

/// How often the server tells an idle pull subscription it is still there; two missed in a row
/// end the subscription and the next call reopens it.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(5);

async fn connect_client(config: &BrokerConfig) -> Result<Context, BrokerError> {
    let connecting = async {
        ConnectOptions::new()
            .name("hark")
            .connection_timeout(config.timeout)
            .connect(config.url.as_str())
            .await
            .map_err(|source| BrokerError::Connect {
                url: config.redacted_url(),
                source: source.into(),
            })
    };
    let client = within(config.timeout, "connect", connecting).await?;
    // Bounds every JetStream request and publish acknowledgement.
    Ok(js::ContextBuilder::new()
        .timeout(config.timeout)
        .build(client))
}

/// Creates the namespace's stream, or brings an existing one to this configuration.
async fn ensure_stream(jetstream: &Context, config: &BrokerConfig) -> Result<(), BrokerError> {
    let stream = stream::Config {
        name: config.stream_name(),
        subjects: vec![format!("{}.>", config.namespace)],
        storage: StorageType::File,
        // Like RabbitMQ's queues: a message stays until every group has acked it.
        retention: RetentionPolicy::Interest,
        duplicate_window: DUPLICATE_WINDOW,
        ..stream::Config::default()
    };
    jetstream
        .create_or_update_stream(stream)
        .await
        .map_err(BrokerError::nats)?;
    Ok(())
}

/// Publishes to JetStream and waits for its PubAck.
pub(crate) struct NatsBroker {
    config: BrokerConfig,
    jetstream: Context,
}

impl NatsBroker {
    pub(crate) async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let jetstream = connect_client(config).await?;
        within(
            config.timeout,
            "stream creation",
            ensure_stream(&jetstream, config),
        )
        .await?;
        Ok(Self {
            config: config.clone(),
            jetstream,
        })
    }
}

#[async_trait]
impl Broker for NatsBroker {
    async fn publish(
        &self,
        event_type: &str,
        event_id: &str,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let message = PublishMessage::build()
            .payload(Bytes::copy_from_slice(body))
            .message_id(event_id);
        let timed_out = || BrokerError::TimedOut {
            operation: "publish",
            after: self.config.timeout,
        };
        within(self.config.timeout, "publish", async {
            let acknowledgement = self
                .jetstream
                .send_publish(self.config.subject(event_type), message)
                .await
                .map_err(BrokerError::nats)?;
            match acknowledgement.await {
                Ok(_) => Ok(()),
                Err(error) if error.kind() == PublishErrorKind::TimedOut => Err(timed_out()),
                Err(error) => Err(BrokerError::nats(error)),
            }
        })
        .await
    }

    async fn healthy(&self) -> bool {
        self.jetstream.client().connection_state() == State::Connected
    }
}

/// Pulls a group's durable consumer, reopening the pull subscription when it fails.
pub(crate) struct NatsConsumer {
    config: BrokerConfig,
    group: String,
    jetstream: Context,
    messages: Option<pull::Stream>,
    reconnect: Reconnect,
}

impl NatsConsumer {
    pub(crate) async fn subscribe(config: &BrokerConfig, group: &str) -> Result<Self, BrokerError> {
        let jetstream = connect_client(config).await?;
        let messages = within(
            config.timeout,
            "subscribe",
            open_messages(&jetstream, config, group),
        )
        .await?;
        Ok(Self {
            config: config.clone(),
            group: group.to_owned(),
            jetstream,
            messages: Some(messages),
            reconnect: Reconnect::default(),
        })
    }

    pub(crate) async fn next(&mut self) -> Result<Delivery, BrokerError> {
        self.reconnect.pause().await;
        let messages = match &mut self.messages {
            Some(messages) => messages,
            None => {
                let opened = within(
                    self.config.timeout,
                    "subscribe",
                    open_messages(&self.jetstream, &self.config, &self.group),
                )
                .await;
                self.messages.insert(self.reconnect.outcome(opened)?)
            }
        };
        let received = match messages.next().await {
            Some(Ok(message)) => Ok(message),
            Some(Err(error)) => Err(BrokerError::nats(error)),
            None => Err(BrokerError::SubscriptionEnded),
        };
        match received {
            Ok(message) => {
                self.reconnect.succeeded();
                Ok(self.delivery(message))
            }
            Err(error) => {
                // What the old subscription pulled but never handed out comes back after the
                // ack wait; the next call pulls afresh.
                self.messages = None;
                self.reconnect.failed();
                Err(error)
            }
        }
    }

    fn delivery(&self, message: js::Message) -> Delivery {
        let (message, acker) = message.split();
        let event_type = self
            .config
            .event_type(message.subject.as_str())
            .unwrap_or(message.subject.as_str())
            .to_owned();
        let event_id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(NATS_MESSAGE_ID))
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        Delivery {
            event_type,
            event_id,
            body: message.payload.to_vec(),
            ack: AckHandle::Nats(Box::new(acker)),
        }
    }
}

async fn open_messages(
    jetstream: &Context,
    config: &BrokerConfig,
    group: &str,
) -> Result<pull::Stream, BrokerError> {
    ensure_stream(jetstream, config).await?;
    let durable = pull::Config {
        durable_name: Some(group.to_owned()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        // A new group starts with the events published after it was created, as a new
        // RabbitMQ queue does.
        deliver_policy: DeliverPolicy::New,
        ..pull::Config::default()
    };
    let consumer = jetstream
        .create_consumer_on_stream(durable, config.stream_name())
        .await
        .map_err(BrokerError::nats)?;
    consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .heartbeat(IDLE_HEARTBEAT)
        .messages()
        .await
        .map_err(BrokerError::nats)
}
