//! Sending: deliveries are claimed under a lease (one webhook's oldest pending delivery at a
//! time, so each webhook gets its events in order), POSTed signed, and each attempt recorded
//! with what comes next: delivered, a retry after an exponential, fully jittered wait, or
//! dead (a final 4xx, a refused address, or the last attempt).

use std::sync::Arc;
use std::time::Duration;

use hark_api::{WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER};
use rand::RngExt;
use reqwest::header::CONTENT_TYPE;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::signature;
use super::target::{PublicOnly, literal_refusal, refusal_in};
use crate::config::WebhooksConfig;
use crate::db::Repos;
use crate::domain::{Attempt, ClaimedDelivery, Next, Timestamp};

/// Attempts under way at once, each to a different webhook.
const MAX_IN_FLIGHT: usize = 32;
/// A claim outlives the attempt's timeout by this much: a sender that dies leaves a lease that
/// expires soon after, and the delivery is claimed again.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often an idle sender looks without being woken: for deliveries made by other nodes
/// and leases that expired.
const POLL: Duration = Duration::from_secs(1);
/// The shortest idle wait, so a delivery due now but not yet claimable never spins the loop.
const MIN_WAIT: Duration = Duration::from_millis(20);

/// The HTTP side of deliveries: one client whose resolver refuses non-public addresses
/// (unless allowed), which follows no redirect (a redirect could lead anywhere) and uses no
/// proxy (the address connected to is the one checked).
pub struct Sender {
    client: reqwest::Client,
    settings: WebhooksConfig,
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
    pub fn new(settings: WebhooksConfig) -> Result<Sender, reqwest::Error> {
        let mut client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hark-webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_targets {
            client = client.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Sender {
            client: client.build()?,
            settings,
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.settings.timeout_seconds)
    }

    /// How long a claim holds.
    fn lease(&self) -> Duration {
        self.timeout() + LEASE_MARGIN
    }

    /// Makes one attempt of a claimed delivery.
    pub async fn attempt(&self, claim: &ClaimedDelivery) -> Attempt {
        let attempted_at = Timestamp::now();
        let (verdict, status_code, error) = self.post(claim, attempted_at).await;
        let next = match verdict {
            Verdict::Delivered => Next::Delivered,
            Verdict::Final => Next::Dead,
            Verdict::Retry if claim.attempt >= self.settings.max_attempts => Next::Dead,
            Verdict::Retry => Next::RetryAt(Timestamp::after(self.backoff(claim.attempt))),
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
        if !self.settings.allow_private_targets
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
            .timeout(self.timeout())
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
                None => (Verdict::Retry, None, Some(self.describe(&e))),
            },
        }
    }

    /// A failure without an answer, for the attempt's record: what happened, not the URL.
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("no answer within {} s", self.settings.timeout_seconds);
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

    /// The wait before the attempt after `attempt`: uniformly random up to the exponential
    /// bound ("full jitter"), so that retries of many deliveries spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubling = 2f64.powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let bound =
            (self.settings.retry_base_seconds * doubling).min(self.settings.retry_max_seconds);
        Duration::from_secs_f64(rand::rng().random_range(0.0..=bound))
    }
}

/// Claims and sends deliveries until `stop`; attempts under way then finish (each within its
/// timeout) and are recorded. `wake` tells it that deliveries were made.
pub async fn send_until_stopped(
    repos: Repos,
    sender: Arc<Sender>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut in_flight = JoinSet::new();
    while !stop.is_cancelled() {
        let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        if free > 0 {
            let lease_until = Timestamp::after(sender.lease());
            match repos
                .webhooks
                .claim_deliveries(lease_until, u32::try_from(free).unwrap_or(1))
                .await
            {
                Ok(claims) => {
                    for claim in claims {
                        in_flight.spawn(deliver(repos.clone(), sender.clone(), claim));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        let idle = if in_flight.len() >= MAX_IN_FLIGHT {
            POLL
        } else {
            until_due(&repos).await
        };
        tokio::select! {
            () = stop.cancelled() => {}
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a webhook delivery task failed");
                }
            }
            () = wake.notified() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// How long until a delivery may become claimable, within `MIN_WAIT..=POLL`.
async fn until_due(repos: &Repos) -> Duration {
    match repos.webhooks.next_delivery_due().await {
        Ok(Some(due)) => {
            let micros = due.micros().saturating_sub(Timestamp::now().micros());
            Duration::from_micros(u64::try_from(micros).unwrap_or(0)).clamp(MIN_WAIT, POLL)
        }
        Ok(None) => POLL,
        Err(e) => {
            tracing::warn!(error = %e, "reading when webhook deliveries are due failed");
            POLL
        }
    }
}

/// One attempt of one claimed delivery, recorded.
async fn deliver(repos: Repos, sender: Arc<Sender>, claim: ClaimedDelivery) {
    let attempt = sender.attempt(&claim).await;
    match repos.webhooks.record_attempt(&claim, &attempt).await {
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

    #[test]
    fn backoff_grows_to_its_bound_with_full_jitter() {
        let sender = Sender::new(WebhooksConfig {
            in_process: true,
            allow_private_targets: false,
            timeout_seconds: 1.0,
            max_attempts: 8,
            retry_base_seconds: 2.0,
            retry_max_seconds: 10.0,
        })
        .expect("client");
        for attempt in 1..=20 {
            let bound = (2.0 * 2f64.powi(attempt as i32 - 1)).min(10.0);
            for _ in 0..50 {
                assert!(sender.backoff(attempt).as_secs_f64() <= bound, "{attempt}");
            }
        }
    }
}
