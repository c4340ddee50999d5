//! Sending push messages: each claimed message is encrypted for its browser, signed with the
//! server's VAPID key and POSTed to the push service, and what the service answers decides
//! what comes next: delivered; the subscription gone (404, 410), which deletes it; a retry
//! (429, 5xx, timeouts, after `Retry-After` when given, else the shared schedule's wait); or
//! dead (any other 4xx, a refused address, the last attempt).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hark_api::EventType;
use hark_push::{PushOptions, PushOutcome, Subscription, SubscriptionKeys, Urgency, VapidKey};
use reqwest::header::RETRY_AFTER;

use crate::config::{PushConfig, WebhooksConfig};
use crate::db::{DbError, Dispatched, Repos};
use crate::domain::{ClaimedPush, PushAttempt, PushFate, Timestamp};
use crate::outbound::courier::Courier;
use crate::outbound::target::{literal_refusal, refusal_in};
use crate::outbound::{RetrySchedule, client};

/// The push dispatcher's name in `consumer_positions`.
pub const CONSUMER: &str = "push";
/// The events pushed to their audience's browsers.
pub const PUSHED: [EventType; 3] = [
    EventType::NoteReceived,
    EventType::NoteReady,
    EventType::NoteListened,
];

/// The HTTP side of push messages, the key they are signed with, and the repository they are
/// recorded in.
pub struct PushSender {
    repos: Repos,
    client: reqwest::Client,
    schedule: RetrySchedule,
    allow_private_targets: bool,
    key: VapidKey,
    settings: PushConfig,
}

/// A new note wakes the phone; the rest may wait for it to wake.
fn urgency(kind: EventType) -> Urgency {
    match kind {
        EventType::NoteReceived => Urgency::High,
        _ => Urgency::Normal,
    }
}

impl PushSender {
    pub fn new(
        repos: Repos,
        key: VapidKey,
        webhooks: &WebhooksConfig,
        settings: PushConfig,
    ) -> Result<PushSender, reqwest::Error> {
        Ok(PushSender {
            repos,
            client: client(
                concat!("hark-push/", env!("CARGO_PKG_VERSION")),
                webhooks.allow_private_targets,
            )?,
            schedule: RetrySchedule::new(webhooks),
            allow_private_targets: webhooks.allow_private_targets,
            key,
            settings,
        })
    }

    /// Makes one attempt of a claimed message.
    pub async fn attempt(&self, claim: &ClaimedPush) -> PushAttempt {
        let (outcome, status_code, error) = self.post(claim).await;
        let fate = match outcome {
            PushOutcome::Delivered => PushFate::Delivered,
            PushOutcome::Gone => PushFate::Gone,
            PushOutcome::Rejected => PushFate::Dead,
            PushOutcome::Retry { .. } if self.schedule.exhausted(claim.attempt) => PushFate::Dead,
            PushOutcome::Retry { after } => PushFate::RetryAt(Timestamp::after(
                after.unwrap_or_else(|| self.schedule.backoff(claim.attempt)),
            )),
        };
        PushAttempt {
            status_code,
            error,
            fate,
        }
    }

    async fn post(&self, claim: &ClaimedPush) -> (PushOutcome, Option<u16>, Option<String>) {
        let rejected = |error: String| (PushOutcome::Rejected, None, Some(error));
        let url = match reqwest::Url::parse(&claim.endpoint) {
            Ok(url) => url,
            Err(e) => return rejected(format!("invalid endpoint: {e}")),
        };
        if !self.allow_private_targets
            && let Some(refused) = literal_refusal(&url)
        {
            return rejected(refused.to_string());
        }
        let payload = match serde_json::to_vec(&claim.event.to_wire()) {
            Ok(payload) => payload,
            Err(e) => return rejected(format!("encoding the event: {e}")),
        };
        let subscription = Subscription {
            endpoint: claim.endpoint.clone(),
            keys: SubscriptionKeys {
                p256dh: claim.p256dh.clone(),
                auth: claim.auth.clone(),
            },
        };
        let options = PushOptions {
            ttl_seconds: self.settings.ttl_seconds,
            urgency: urgency(claim.event.data.kind()),
            topic: None,
        };
        let request = match hark_push::build_request(
            &self.key,
            &self.settings.subject,
            &subscription,
            &payload,
            &options,
            SystemTime::now(),
        ) {
            Ok(request) => request,
            Err(e) => return rejected(e.to_string()),
        };
        let mut post = self.client.post(url).timeout(self.schedule.timeout);
        for (name, value) in request.headers {
            post = post.header(name, value);
        }
        match post.body(request.body).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok());
                (hark_push::classify(status, retry_after), Some(status), None)
            }
            Err(e) => match refusal_in(&e) {
                // Not retried: the name would have to move to a public address first.
                Some(refused) => rejected(refused.to_string()),
                None => (
                    PushOutcome::Retry { after: None },
                    None,
                    Some(self.schedule.describe(&e)),
                ),
            },
        }
    }
}

#[async_trait]
impl Courier for PushSender {
    type Claim = ClaimedPush;
    const WHAT: &'static str = "push messages";

    async fn dispatch(&self, limit: i64) -> Result<Dispatched, DbError> {
        self.repos
            .push
            .dispatch_push(CONSUMER, &PUSHED, limit)
            .await
    }

    async fn dispatch_event(&self, seq: i64, id: &str) -> Result<u64, DbError> {
        self.repos.push.dispatch_push_event(&PUSHED, seq, id).await
    }

    fn timeout(&self) -> Duration {
        self.schedule.timeout
    }

    async fn claim(&self, lease_until: Timestamp, limit: u32) -> Result<Vec<ClaimedPush>, DbError> {
        self.repos
            .push
            .claim_push_messages(lease_until, limit)
            .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, DbError> {
        self.repos.push.next_push_due().await
    }

    /// One attempt of one claimed message, recorded.
    async fn deliver(&self, claim: ClaimedPush) {
        let attempt = self.attempt(&claim).await;
        if attempt.fate == PushFate::Gone {
            tracing::info!(subscription = %claim.subscription_id, "a push subscription is gone; deleting it");
        }
        match self.repos.push.record_push_attempt(&claim, &attempt).await {
            Ok(_) => {}
            // The lease expires and the message is attempted again.
            Err(e) => {
                tracing::warn!(subscription = %claim.subscription_id, error = %e, "recording a push attempt failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_received_note_is_urgent() {
        assert_eq!(urgency(EventType::NoteReceived), Urgency::High);
        assert_eq!(urgency(EventType::NoteReady), Urgency::Normal);
        assert_eq!(urgency(EventType::NoteListened), Urgency::Normal);
    }
}
