//! `hark notifier`: a member of the broker's consumer group `notifier`, which makes the webhook
//! deliveries and push messages of each event the group hands it and sends them, beside other
//! notifiers on one shared database. The group's members split the events. An event a notifier
//! took but never acknowledged (it died, or stopped first) goes to another member, and making
//! an event's deliveries and messages again makes none (one delivery per webhook and event, one
//! message per subscription and event): the broker's "at least once" reaches receivers once.

use std::sync::Arc;

use hark_broker::{BrokerConfig, Consumer, Delivery};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{retry_after, with_causes};
use crate::db::DbError;
use crate::push::PushService;
use crate::webhooks::WebhookService;

/// The consumer group every `hark notifier` joins.
pub const GROUP: &str = "notifier";

pub struct Notifier {
    webhooks: WebhookService,
    /// `None`: push messages are left to `hark serve` (this notifier has no VAPID key).
    push: Option<PushService>,
    broker: BrokerConfig,
    /// Wake the senders when an event made rows for them.
    deliveries_made: Arc<Notify>,
    messages_made: Arc<Notify>,
}

/// What one event made: rows that did not exist before.
struct Made {
    deliveries: u64,
    messages: u64,
}

impl Notifier {
    pub fn new(
        webhooks: WebhookService,
        push: Option<PushService>,
        broker: BrokerConfig,
    ) -> Notifier {
        Notifier {
            webhooks,
            push,
            broker,
            deliveries_made: Arc::new(Notify::new()),
            messages_made: Arc::new(Notify::new()),
        }
    }

    /// Consumes events and sends their deliveries and messages until `stop`; attempts under
    /// way finish.
    pub async fn run(self, stop: CancellationToken) {
        let mut senders = vec![tokio::spawn(
            self.webhooks
                .clone()
                .send(self.deliveries_made.clone(), stop.clone()),
        )];
        if let Some(push) = &self.push {
            senders.push(tokio::spawn(
                push.clone().send(self.messages_made.clone(), stop.clone()),
            ));
        }
        if let Some(mut consumer) = self.join(&stop).await {
            tracing::info!(
                group = GROUP,
                push = self.push.is_some(),
                "consuming events"
            );
            self.consume(&mut consumer, &stop).await;
        }
        for sender in senders {
            let _ = sender.await;
        }
    }

    /// Makes the webhook deliveries and push messages of one event, as the servers' dispatchers
    /// make those of each event they read, and wakes the senders. Only rows that do not exist
    /// yet are made: an event handled before makes none.
    async fn make(&self, event: &hark_api::Event) -> Result<Made, DbError> {
        let deliveries = self.webhooks.deliveries_of(event).await?;
        if deliveries > 0 {
            self.deliveries_made.notify_one();
        }
        let messages = match &self.push {
            Some(push) => push.messages_of(event).await?,
            None => 0,
        };
        if messages > 0 {
            self.messages_made.notify_one();
        }
        Ok(Made {
            deliveries,
            messages,
        })
    }

    /// Joins the group, trying again while the broker is unreachable; `None` once stopped.
    async fn join(&self, stop: &CancellationToken) -> Option<Consumer> {
        let mut failures = 0;
        loop {
            match hark_broker::consume(&self.broker, GROUP).await {
                Ok(consumer) => return Some(consumer),
                Err(e) => {
                    failures += 1;
                    let wait = retry_after(failures);
                    tracing::warn!(error = with_causes(&e), retry_in = ?wait, "joining the broker's consumer group failed");
                    tokio::select! {
                        () = stop.cancelled() => return None,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn consume(&self, consumer: &mut Consumer, stop: &CancellationToken) {
        loop {
            // Cancel-safe: an event being received when the notifier stops is not lost.
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = consumer.next() => received,
            };
            match received {
                Ok(delivery) => {
                    if !self.handle(consumer, &delivery, stop).await {
                        return;
                    }
                }
                // The next call reconnects, after a pause that grows with each failure.
                Err(e) => {
                    tracing::warn!(error = with_causes(&e), "receiving events from the broker")
                }
            }
        }
    }

    /// Makes the event's deliveries and messages, then acknowledges it. `false` when stopped
    /// first: the event, not acknowledged, goes to another member of the group.
    async fn handle(
        &self,
        consumer: &Consumer,
        delivery: &Delivery,
        stop: &CancellationToken,
    ) -> bool {
        let event: hark_api::Event = match serde_json::from_slice(&delivery.body) {
            Ok(event) => event,
            Err(e) => {
                // Nothing makes it one later: acknowledged, so it does not come back forever.
                tracing::warn!(error = %e, event_id = %delivery.event_id, event_type = %delivery.event_type, "dropped a message that is not a Hark event");
                acknowledge(consumer, delivery).await;
                return true;
            }
        };
        let mut failures = 0;
        loop {
            match self.make(&event).await {
                Ok(made) => {
                    tracing::debug!(seq = event.seq, event_id = %event.id, event_type = %delivery.event_type, deliveries = made.deliveries, messages = made.messages, "made the webhook deliveries and push messages of an event");
                    break;
                }
                Err(e) => {
                    failures += 1;
                    let wait = retry_after(failures);
                    tracing::warn!(error = %e, seq = event.seq, retry_in = ?wait, "making webhook deliveries and push messages failed");
                    tokio::select! {
                        () = stop.cancelled() => return false,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        acknowledge(consumer, delivery).await;
        true
    }
}

async fn acknowledge(consumer: &Consumer, delivery: &Delivery) {
    if let Err(e) = consumer.ack(delivery).await {
        // The event comes again; its deliveries and messages exist already.
        tracing::warn!(error = with_causes(&e), event_id = %delivery.event_id, "acknowledging an event failed");
    }
}
