//! Shared durable consumption: one queue (RabbitMQ) or durable consumer (JetStream) per group.

use std::fmt;
use std::time::Duration;

use crate::BrokerError;
use crate::amqp::AmqpConsumer;
use crate::nats::NatsConsumer;

/// One event taken from a group's queue.
///
/// It stays the group's until acknowledged with [`Consumer::ack`]: if this consumer dies first,
/// the broker hands it to another consumer of the group.
pub struct Delivery {
    /// The event type, without the namespace: `note.created`.
    pub event_type: String,
    /// The event id the publisher gave; empty if the message carried none.
    pub event_id: String,
    /// The message as published.
    pub body: Vec<u8>,
    pub(crate) ack: AckHandle,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("event_type", &self.event_type)
            .field("event_id", &self.event_id)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What acknowledges one delivery on the connection it came from.
pub(crate) enum AckHandle {
    Amqp(lapin::Acker),
    // Boxed: it carries a whole JetStream context, five times the size of lapin's acker.
    Nats(Box<async_nats::jetstream::message::Acker>),
}

pub(crate) enum Backend {
    Amqp(AmqpConsumer),
    Nats(NatsConsumer),
}

/// A member of a consumer group: the group's events are split among its members, each event
/// going to one of them.
///
/// Dropping a consumer closes its connection; what it took but did not acknowledge goes to
/// the group's other members (at once on RabbitMQ, after the ack wait on NATS).
pub struct Consumer {
    pub(crate) backend: Backend,
}

impl Consumer {
    /// Waits for the group's next event.
    ///
    /// An error means the connection broke or the broker is unreachable; the consumer has let
    /// go of that connection and the next call reconnects, after a pause that grows with each
    /// failure in a row (up to 5 s), so a loop that logs the error and calls again is right.
    /// Events that were in flight come again, so an event may be seen more than once.
    ///
    /// Cancel-safe: dropping the future (in a `select!` with a shutdown signal) loses nothing.
    pub async fn next(&mut self) -> Result<Delivery, BrokerError> {
        match &mut self.backend {
            Backend::Amqp(consumer) => consumer.next().await,
            Backend::Nats(consumer) => consumer.next().await,
        }
    }

    /// Tells the broker the event was handled, so no member of the group gets it again.
    ///
    /// Fails if the connection the delivery came on broke; the event then comes again.
    pub async fn ack(&self, delivery: &Delivery) -> Result<(), BrokerError> {
        match &delivery.ack {
            AckHandle::Amqp(acker) => {
                acker
                    .ack(lapin::options::BasicAckOptions::default())
                    .await?;
            }
            AckHandle::Nats(acker) => acker.ack().await.map_err(BrokerError::Nats)?,
        }
        Ok(())
    }
}

/// Spaces out reconnection attempts, so a broker that is down is not hammered by a consumer
/// loop that calls [`Consumer::next`] right after each error.
#[derive(Default)]
pub(crate) struct Reconnect {
    failures: u32,
}

impl Reconnect {
    const FIRST_PAUSE: Duration = Duration::from_millis(250);
    const LONGEST_PAUSE: Duration = Duration::from_secs(5);

    /// Waits before the next attempt if the last one failed.
    pub(crate) async fn pause(&self) {
        if self.failures > 0 {
            tokio::time::sleep(Self::pause_after(self.failures)).await;
        }
    }

    fn pause_after(failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(8);
        Self::FIRST_PAUSE
            .saturating_mul(1 << doublings)
            .min(Self::LONGEST_PAUSE)
    }

    pub(crate) fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Counts the outcome of a reconnection attempt and passes it on.
    pub(crate) fn outcome<T>(&mut self, attempt: Result<T, BrokerError>) -> Result<T, BrokerError> {
        if attempt.is_err() {
            self.failed();
        }
        attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_five_seconds() {
        let pauses: Vec<_> = (1..=7).map(Reconnect::pause_after).collect();
        let millis: Vec<_> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(Reconnect::pause_after(u32::MAX), Reconnect::LONGEST_PAUSE);
    }
}
