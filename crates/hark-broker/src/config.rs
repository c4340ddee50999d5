//! Where the broker is and how everything on it is named.

use std::fmt;
use std::time::Duration;

use crate::BrokerError;

/// The namespace used when none is configured.
pub const DEFAULT_NAMESPACE: &str = "hark";

/// How long connecting, publishing and declaring wait for the broker by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a delivery may stay unacknowledged on NATS by default before it goes to another
/// consumer of the group. Longer than a webhook attempt, short enough that a crashed notifier's
/// events are not held up for long.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// A broker to publish events to and consume them from.
///
/// `Debug` hides the password in the URL.
#[derive(Clone)]
pub struct BrokerConfig {
    /// `amqp://user:pass@host:port/vhost` (RabbitMQ) or `nats://host:port` (NATS JetStream).
    pub url: String,
    /// Prefix of every name on the broker: subjects and routing keys are
    /// `<namespace>.<event type>`, the RabbitMQ exchange is `<namespace>`, queues are
    /// `<namespace>.<group>`, and the JetStream stream is the namespace in upper case.
    /// Letters, digits, `-` and `_` only.
    pub namespace: String,
    /// Upper bound for connecting, declaring and waiting for a publish acknowledgement, so that a
    /// broker that is down makes calls fail instead of hang.
    pub timeout: Duration,
    /// NATS only: how long a delivery may stay unacknowledged before JetStream hands it to another
    /// consumer of the group. RabbitMQ needs none: it requeues when the consumer's connection ends.
    pub ack_wait: Duration,
}

impl BrokerConfig {
    /// A broker at `url` with the default namespace and timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            ack_wait: DEFAULT_ACK_WAIT,
        }
    }

    /// The same broker under another namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Subject (NATS) or routing key (RabbitMQ) of an event type: `hark.note.created`.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.namespace)
    }

    /// The event type of a subject or routing key, if it is under this namespace.
    pub(crate) fn event_type<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
    }

    /// The RabbitMQ topic exchange every event is published to.
    pub fn exchange_name(&self) -> &str {
        &self.namespace
    }

    /// The durable RabbitMQ queue that a consumer group shares.
    pub fn queue_name(&self, group: &str) -> String {
        format!("{}.{group}", self.namespace)
    }

    /// The JetStream stream: the namespace upper-cased, anything but letters and digits as `_`
    /// (stream names may not contain `.`, `*`, `>` or spaces).
    pub fn stream_name(&self) -> String {
        self.namespace
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The URL with its password replaced, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// Names end up in subjects, queue and stream names, where dots and wildcards mean
    /// something; refusing them early keeps a typo from subscribing to the wrong events.
    pub(crate) fn validate(&self, group: Option<&str>) -> Result<(), BrokerError> {
        check_name("namespace", &self.namespace)?;
        if let Some(group) = group {
            check_name("group", group)?;
        }
        Ok(())
    }
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &self.redacted_url())
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("ack_wait", &self.ack_wait)
            .finish()
    }
}

fn check_name(what: &'static str, name: &str) -> Result<(), BrokerError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(BrokerError::InvalidName {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// `amqp://user:secret@host/` → `amqp://user:***@host/`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:***@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_namespace() {
        let config = BrokerConfig::new("nats://127.0.0.1:4222").with_namespace("hark-test_1");
        assert_eq!(config.subject("note.created"), "hark-test_1.note.created");
        assert_eq!(config.queue_name("notifier"), "hark-test_1.notifier");
        assert_eq!(config.exchange_name(), "hark-test_1");
        assert_eq!(config.stream_name(), "HARK_TEST_1");
        assert_eq!(
            config.event_type("hark-test_1.note.ready"),
            Some("note.ready")
        );
        assert_eq!(config.event_type("hark-test_10.note.ready"), None);
    }

    #[test]
    fn the_default_namespace_is_hark() {
        let config = BrokerConfig::new("amqp://127.0.0.1:5672/%2f");
        assert_eq!(config.subject("note.created"), "hark.note.created");
        assert_eq!(config.stream_name(), "HARK");
    }

    #[test]
    fn passwords_never_show() {
        let config = BrokerConfig::new("amqp://guest:s3cret@127.0.0.1:5672/%2f");
        assert_eq!(config.redacted_url(), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn names_with_dots_or_wildcards_are_refused() {
        for bad in ["", "a.b", "a*", "a>", "a b", "a#"] {
            let config = BrokerConfig::new("nats://x").with_namespace(bad);
            assert!(config.validate(None).is_err(), "{bad:?} was accepted");
        }
        let config = BrokerConfig::new("nats://x");
        assert!(config.validate(Some("notifier")).is_ok());
        assert!(config.validate(Some("note.*")).is_err());
    }
}
