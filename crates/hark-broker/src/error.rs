use std::time::Duration;

/// The error type of any boxed backend error.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why talking to the broker failed.
///
/// Every variant but `UnsupportedScheme` and `InvalidName` is transient: the broker is down, slow
/// or restarting, and the next call reconnects.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The URL names no broker this crate speaks.
    #[error(
        "unsupported broker URL scheme {scheme:?}: use amqp:// (RabbitMQ) or nats:// (NATS JetStream)"
    )]
    UnsupportedScheme { scheme: String },

    /// A namespace or group name that would not be a plain name on the broker.
    #[error("invalid broker {what} {name:?}: use letters, digits, '-' and '_'")]
    InvalidName { what: &'static str, name: String },

    /// The broker could not be reached, or refused the connection.
    #[error("cannot connect to the broker at {url}")]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },

    /// The broker did not answer within the configured timeout.
    #[error("the broker did not answer {operation} within {after:?}")]
    TimedOut {
        operation: &'static str,
        after: Duration,
    },

    /// The broker answered but did not take the message (a RabbitMQ nack, a JetStream error).
    #[error("the broker refused the message: {reason}")]
    Refused { reason: String },

    /// The broker ended the subscription (a deleted queue or consumer, a closed connection).
    #[error("the broker ended the subscription")]
    SubscriptionEnded,

    /// Any other failure reported by the RabbitMQ client.
    #[error("RabbitMQ error")]
    Amqp(#[from] lapin::Error),

    /// Any other failure reported by the NATS client.
    #[error("NATS error")]
    Nats(#[source] BoxError),
}

impl BrokerError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            Self::UnsupportedScheme { .. } | Self::InvalidName { .. }
        )
    }

    pub(crate) fn nats(error: impl Into<BoxError>) -> Self {
        Self::Nats(error.into())
    }
}

/// Runs `future`, turning a broker that takes longer than `after` into [`BrokerError::TimedOut`].
pub(crate) async fn within<T>(
    after: Duration,
    operation: &'static str,
    future: impl Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    tokio::time::timeout(after, future)
        .await
        .map_err(|_| BrokerError::TimedOut { operation, after })?
}
