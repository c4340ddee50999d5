//! What a push service's answer means for the subscription and the message (RFC 8030 §6).

use std::time::{Duration, SystemTime};

/// The fate of one push message, decided from the push service's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The push service took the message; it delivers it from here.
    Delivered,
    /// The subscription no longer exists (the browser unsubscribed or it expired): delete it.
    Gone,
    /// A passing failure: send again later, not before `after` when the service said so.
    Retry { after: Option<Duration> },
    /// The push service will never take this message (bad token, too large, malformed):
    /// retrying the same request cannot help.
    Rejected,
}

/// Classifies a push service's answer from its status and `Retry-After` header, if any.
pub fn classify(status: u16, retry_after: Option<&str>) -> PushOutcome {
    classify_at(status, retry_after, SystemTime::now())
}

fn classify_at(status: u16, retry_after: Option<&str>, now: SystemTime) -> PushOutcome {
    match status {
        200..=299 => PushOutcome::Delivered,
        404 | 410 => PushOutcome::Gone,
        // Timeout, too early, rate limited, or the service's own trouble: all pass.
        408 | 425 | 429 | 500..=599 => PushOutcome::Retry {
            after: retry_after.and_then(|value| parse_retry_after(value, now)),
        },
        // Other 4xx, and statuses a push service never sends for a message (1xx, 3xx).
        _ => PushOutcome::Rejected,
    }
}

/// `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date already past
/// means "now". Anything else is ignored, leaving the wait to the caller's schedule.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_date_retry_after_is_the_time_left_until_that_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("a date");
        assert_eq!(
            classify_at(503, Some("Sun, 06 Nov 1994 08:51:37 GMT"), now),
            PushOutcome::Retry {
                after: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            classify_at(429, Some("Sun, 06 Nov 1994 08:40:00 GMT"), now),
            PushOutcome::Retry {
                after: Some(Duration::ZERO)
            }
        );
    }
}
