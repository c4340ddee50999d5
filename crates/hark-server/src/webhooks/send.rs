//! Sending webhooks: deliveries are claimed under a lease (one webhook's oldest pending delivery
//! at a time, so each webhook gets its events in order), POSTed signed, and each attempt
//! recorded with what comes next: delivered, a retry after the shared schedule's wait, or dead
//! (a final 4xx, a refused address, or the last attempt).

use std::time::Duration;

use async_trait::async_trait;
use hark_api::{WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER};
use reqwest::header::CONTENT_TYPE;

use super::signature;
use crate::config::WebhooksConfig;
use crate::db::{DbError, Dispatched, Repos};
use crate::domain::{Attempt, ClaimedDelivery, Next, Timestamp};
use crate::outbound::courier::Courier;
use crate::outbound::target::{literal_refusal, refusal_in};
use crate::outbound::{RetrySchedule, client};

/// The webhook dispatcher's name in `consumer_positions`.
pub const CONSUMER: &str = "webhooks";

/// The HTTP side of deliveries, and the repository they are recorded in.
pub struct Sender {
    repos: Repos,
    client: reqwest::Client,
    schedule: RetrySchedule,
    allow_private_targets: bool,
}

/// What an answer or a failure asks for, before the attempt count is weighed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Delivered,
    Retry,
    Final,
}

/// 2xx is delivered; 408, 425, 429 and 5xx may pass and are retried; any other 4xx says the
/// request itself is refused, which sending it again cannot change. The rest (3xx, which is
/// not followed) is retried.
fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 => Verdict::Retry,
        400..=499 => Verdict::Final,
        _ => Verdict::Retry,
    }
}

impl Sender {
    pub fn new(repos: Repos, settings: &WebhooksConfig) -> Result<Sender, reqwest::Error> {
        Ok(Sender {
            repos,
            client: client(
                concat!("hark-webhooks/", env!("CARGO_PKG_VERSION")),
                settings.allow_private_targets,
            )?,
            schedule: RetrySchedule::new(settings),
            allow_private_targets: settings.allow_private_targets,
        })
    }

    /// Makes one attempt of a claimed delivery.
    pub async fn attempt(&self, claim: &ClaimedDelivery) -> Attempt {
        let attempted_at = Timestamp::now();
        let (verdict, status_code, error) = self.post(claim, attempted_at).await;
        let next = match verdict {
            Verdict::Delivered => Next::Delivered,
            Verdict::Final => Next::Dead,
            Verdict::Retry if self.schedule.exhausted(claim.attempt) => Next::Dead,
            Verdict::Retry => Next::RetryAt(Timestamp::after(self.schedule.backoff(claim.attempt))),
        };
        Attempt {
            attempted_at,
            status_code,
            error,
            next,
        }
    }

    async fn post(
        &self,
        claim: &ClaimedDelivery,
        attempted_at: Timestamp,
    ) -> (Verdict, Option<u16>, Option<String>) {
        let url = match reqwest::Url::parse(&claim.url) {
            Ok(url) => url,
            Err(e) => return (Verdict::Final, None, Some(format!("invalid url: {e}"))),
        };
        if !self.allow_private_targets
            && let Some(refused) = literal_refusal(&url)
        {
            return (Verdict::Final, None, Some(refused.to_string()));
        }
        let event = claim.event.to_wire();
        let body = match serde_json::to_vec(&event) {
            Ok(body) => body,
            Err(e) => {
                return (
                    Verdict::Final,
                    None,
                    Some(format!("encoding the event: {e}")),
                );
            }
        };
        let timestamp = attempted_at.unix_seconds();
        let Some(signature) = signature::sign(&claim.secret, &event.id, timestamp, &body) else {
            return (Verdict::Final, None, Some("the secret is unusable".into()));
        };
        let sent = self
            .client
            .post(url)
            .timeout(self.schedule.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(WEBHOOK_ID_HEADER, &event.id)
            .header(WEBHOOK_TIMESTAMP_HEADER, timestamp.to_string())
            .header(WEBHOOK_SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                (verdict(status), Some(status), None)
            }
            Err(e) => match refusal_in(&e) {
                // Not retried: the name would have to move to a public address first.
                Some(refused) => (Verdict::Final, None, Some(refused.to_string())),
                None => (Verdict::Retry, None, Some(self.schedule.describe(&e))),
            },
        }
    }
}

#[async_trait]
impl Courier for Sender {
    type Claim = ClaimedDelivery;
    const WHAT: &'static str = "webhook deliveries";

    async fn dispatch(&self, limit: i64) -> Result<Dispatched, DbError> {
        self.repos.webhooks.dispatch_events(CONSUMER, limit).await
    }

    async fn dispatch_event(&self, seq: i64, id: &str) -> Result<u64, DbError> {
        self.repos.webhooks.dispatch_event(seq, id).await
    }

    fn timeout(&self) -> Duration {
        self.schedule.timeout
    }

    async fn claim(
        &self,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, DbError> {
        self.repos
            .webhooks
            .claim_deliveries(lease_until, limit)
            .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, DbError> {
        self.repos.webhooks.next_delivery_due().await
    }

    /// One attempt of one claimed delivery, recorded.
    async fn deliver(&self, claim: ClaimedDelivery) {
        let attempt = self.attempt(&claim).await;
        match self.repos.webhooks.record_attempt(&claim, &attempt).await {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                webhook = %claim.webhook_id,
                seq = claim.event.seq,
                "a webhook delivery ended elsewhere (deleted, or its claim expired)"
            ),
            // The lease expires and the delivery is attempted again.
            Err(e) => {
                tracing::warn!(webhook = %claim.webhook_id, error = %e, "recording a webhook attempt failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decide_between_delivered_retry_and_final() {
        for (status, expected) in [
            (200, Verdict::Delivered),
            (204, Verdict::Delivered),
            (301, Verdict::Retry),
            (400, Verdict::Final),
            (401, Verdict::Final),
            (404, Verdict::Final),
            (410, Verdict::Final),
            (408, Verdict::Retry),
            (425, Verdict::Retry),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (503, Verdict::Retry),
        ] {
            assert_eq!(verdict(status), expected, "{status}");
        }
    }
}
