//! Requests the server makes to addresses its users chose: webhook endpoints and push services.
//! What both need lives here once: the private-address rule and the resolver that enforces it
//! (`target`), the HTTP client built around that resolver, the retry schedule, and the two loops
//! of durable delivery (`courier`).

pub mod courier;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;

use crate::config::WebhooksConfig;
use target::PublicOnly;

/// The client for outbound requests. Its resolver refuses non-public addresses (unless
/// `allow_private`); it follows no redirect (a redirect could lead anywhere) and uses no proxy
/// (the address connected to is the one checked).
pub fn client(user_agent: &str, allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    let mut client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent);
    if !allow_private {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    client.build()
}

/// When failed requests are tried again, and how often at most: `[webhooks]` sets it for
/// webhooks and push messages alike.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    pub timeout: Duration,
    pub max_attempts: u32,
    base_seconds: f64,
    max_seconds: f64,
}

impl RetrySchedule {
    pub fn new(settings: &WebhooksConfig) -> RetrySchedule {
        RetrySchedule {
            timeout: Duration::from_secs_f64(settings.timeout_seconds),
            max_attempts: settings.max_attempts,
            base_seconds: settings.retry_base_seconds,
            max_seconds: settings.retry_max_seconds,
        }
    }

    /// The wait before the attempt after `attempt`: uniformly random up to the exponential
    /// bound ("full jitter"), so that retries of many deliveries spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubling = 2f64.powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let bound = (self.base_seconds * doubling).min(self.max_seconds);
        Duration::from_secs_f64(rand::rng().random_range(0.0..=bound))
    }

    /// Whether `attempt` was the last one allowed.
    pub fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }

    /// A failure without an answer, for the record: what happened, not the URL.
    pub fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("no answer within {} s", self.timeout.as_secs_f64());
        }
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        if error.is_connect() {
            format!("connection failed: {cause}")
        } else {
            format!("request failed: {cause}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_bound_with_full_jitter() {
        let schedule = RetrySchedule::new(&WebhooksConfig {
            in_process: true,
            allow_private_targets: false,
            timeout_seconds: 1.0,
            max_attempts: 8,
            retry_base_seconds: 2.0,
            retry_max_seconds: 10.0,
        });
        for attempt in 1..=20 {
            let bound = (2.0 * 2f64.powi(attempt as i32 - 1)).min(10.0);
            for _ in 0..50 {
                assert!(
                    schedule.backoff(attempt).as_secs_f64() <= bound,
                    "{attempt}"
                );
            }
        }
        assert!(!schedule.exhausted(7));
        assert!(schedule.exhausted(8));
    }
}
