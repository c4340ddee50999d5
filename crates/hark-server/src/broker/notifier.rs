//! `hark notifier`: a member of the broker's consumer group `notifier`, which makes the webhook
//! deliveries of each event the group hands it and sends them, beside other notifiers on one
//! shared database. The group's members split the events. An event a notifier took but never
//! acknowledged (it died, or stopped first) goes to another member, and making an event's
//! deliveries again makes none (one delivery per webhook and event): the broker's "at least
//! once" reaches receivers once.

use std::sync::Arc;

use hark_broker::{BrokerConfig, Consumer, Delivery};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{retry_after, with_causes};
use crate::webhooks::WebhookService;

/// The consumer group every `hark notifier` joins.
pub const GROUP: &str = "notifier";

pub struct Notifier {
    webhooks: WebhookService,
    broker: BrokerConfig,
}

impl Notifier {
    pub fn new(webhooks: WebhookService, broker: BrokerConfig) -> Notifier {
        Notifier { webhooks, broker }
    }

    /// Consumes events and sends their deliveries until `stop`; attempts under way finish.
    pub async fn run(self, stop: CancellationToken) {
        let made = Arc::new(Notify::new());
        let sending = tokio::spawn(self.webhooks.clone().send(made.clone(), stop.clone()));
        if let Some(mut consumer) = self.join(&stop).await {
            tracing::info!(group = GROUP, "consuming events");
            self.consume(&mut consumer, &made, &stop).await;
        }
        let _ = sending.await;
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

    async fn consume(&self, consumer: &mut Consumer, made: &Notify, stop: &CancellationToken) {
        loop {
            // Cancel-safe: an event being received when the notifier stops is not lost.
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = consumer.next() => received,
            };
            match received {
                Ok(delivery) => {
                    if !self.handle(consumer, &delivery, made, stop).await {
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

    /// Makes the event's deliveries, then acknowledges it. `false` when stopped first: the
    /// event, not acknowledged, goes to another member of the group.
    async fn handle(
        &self,
        consumer: &Consumer,
        delivery: &Delivery,
        made: &Notify,
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
            match self.webhooks.deliveries_of(&event).await {
                Ok(deliveries) => {
                    if deliveries > 0 {
                        made.notify_one();
                    }
                    tracing::debug!(seq = event.seq, event_id = %event.id, event_type = %delivery.event_type, deliveries, "made the webhook deliveries of an event");
                    break;
                }
                Err(e) => {
                    failures += 1;
                    let wait = retry_after(failures);
                    tracing::warn!(error = %e, seq = event.seq, retry_in = ?wait, "making webhook deliveries failed");
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
        // The event comes again; its deliveries exist already.
        tracing::warn!(error = with_causes(&e), event_id = %delivery.event_id, "acknowledging an event failed");
    }
}
