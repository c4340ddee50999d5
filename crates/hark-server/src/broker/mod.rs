//! The broker side of events: the outbox relay (`relay`) publishes the event log to RabbitMQ
//! or NATS JetStream in `seq` order, at least once; `hark notifier` (`notifier`) consumes that
//! stream in a shared group and makes the webhook deliveries and push messages, so they can
//! run on machines of their own.

mod notifier;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use hark_broker::{Broker, BrokerConfig, BrokerError};
use rand::RngExt;
use tokio::sync::OnceCell;

use crate::domain::LoggedEvent;

pub use notifier::{GROUP, Notifier};
pub use relay::{CONSUMER, Relay};

/// The first wait after a failure; each failure in a row doubles it, up to `LONGEST_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// The broker, connected on first use: a server starts, and takes uploads, while its broker is
/// unreachable. Once connected, the broker port reconnects by itself after an outage.
pub struct BrokerLink {
    config: BrokerConfig,
    broker: OnceCell<Arc<dyn Broker>>,
}

impl BrokerLink {
    pub fn new(config: BrokerConfig) -> BrokerLink {
        BrokerLink {
            config,
            broker: OnceCell::new(),
        }
    }

    /// How long connecting and each publish may take.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    async fn broker(&self) -> Result<&Arc<dyn Broker>, BrokerError> {
        self.broker
            .get_or_try_init(|| hark_broker::connect(&self.config))
            .await
    }

    /// Publishes an event as the API shows it, as `<namespace>.<event type>` with the event's
    /// id as the message id; `Ok` once the broker has it.
    pub async fn publish(&self, event: &LoggedEvent) -> Result<(), BrokerError> {
        let body = serde_json::to_vec(&event.to_wire()).map_err(|e| BrokerError::Refused {
            reason: format!("the event does not encode: {e}"),
        })?;
        self.broker()
            .await?
            .publish(event.data.kind().as_str(), &event.id, &body)
            .await
    }

    /// Whether the broker answers now, within its timeout.
    pub async fn healthy(&self) -> bool {
        match self.broker().await {
            Ok(broker) => broker.healthy().await,
            Err(_) => false,
        }
    }
}

/// An error with its causes, for the logs: the broker port's errors name the operation, and
/// their causes say what went wrong.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        message.push_str(": ");
        message.push_str(&source.to_string());
        cause = source.source();
    }
    message
}

/// The wait before the next attempt after `failures` failures in a row: drawn between half and
/// all of a bound that doubles with each failure, so that servers that lost the broker together
/// do not come back in step.
fn retry_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let bound = FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY);
    bound.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_after_each_failure_up_to_half_a_minute() {
        for failures in 1..=40u32 {
            let bound = FIRST_RETRY
                .saturating_mul(1 << failures.saturating_sub(1).min(16))
                .min(LONGEST_RETRY);
            for _ in 0..20 {
                let wait = retry_after(failures);
                assert!(wait <= bound && wait >= bound / 2, "{failures}: {wait:?}");
            }
        }
        assert!(retry_after(u32::MAX) >= LONGEST_RETRY / 2);
    }
}
