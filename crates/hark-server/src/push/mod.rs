//! Web Push: users register their browsers' push subscriptions, and each event of `PUSHED`
//! they are in the audience of is sent to them as an encrypted, VAPID-signed push message
//! (see `send`). The use cases here manage the subscriptions; `run` drives delivery through
//! the courier loops webhooks use too (`crate::outbound::courier`). `hark notifier` does the
//! same from the broker's stream instead of the log: `messages_of` each event, and `send`.

mod key;
mod send;

use std::sync::Arc;

use hark_push::VapidKey;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{PushConfig, WebhooksConfig};
use crate::db::{DbError, Repos};
use crate::delivery::EventHub;
use crate::domain::ids::PushSubscriptionId;
use crate::domain::{PushSubscription, Timestamp, UserId};
use crate::outbound::courier::{self, Courier};
use crate::outbound::target;
pub use key::{KEY_FILE, KeyError, load_key, load_or_create_key};
pub use send::{CONSUMER, PUSHED, PushSender};

/// The most push subscriptions one user may have.
pub const MAX_SUBSCRIPTIONS_PER_USER: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Clone)]
pub struct PushService {
    repos: Repos,
    allow_private_targets: bool,
    public_key: String,
    sender: Arc<PushSender>,
}

impl PushService {
    /// Fails only when the HTTP client cannot be made (no TLS roots, say).
    pub fn new(
        repos: Repos,
        key: VapidKey,
        webhooks: &WebhooksConfig,
        settings: PushConfig,
    ) -> Result<PushService, reqwest::Error> {
        Ok(PushService {
            public_key: key.public_key_base64url(),
            sender: Arc::new(PushSender::new(repos.clone(), key, webhooks, settings)?),
            repos,
            allow_private_targets: webhooks.allow_private_targets,
        })
    }

    /// The VAPID public key browsers subscribe with (`applicationServerKey`), base64url.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Registers a browser's subscription for `owner`: keys a message can be encrypted for,
    /// and an endpoint on a public address (unless the configuration allows others). The same
    /// endpoint again keeps its subscription, with the new keys.
    pub async fn subscribe(
        &self,
        owner: UserId,
        subscription: hark_push::Subscription,
    ) -> Result<PushSubscription, PushError> {
        subscription
            .validate()
            .map_err(|e| PushError::Invalid(invalid_field(e)))?;
        let endpoint = target::check_new_url(
            &subscription.endpoint,
            "endpoint",
            self.allow_private_targets,
        )
        .await
        .map_err(PushError::Invalid)?;
        let existing = self.repos.push.push_subscriptions_of(owner).await?;
        let known = existing.iter().any(|s| s.endpoint == endpoint.as_str());
        if !known && existing.len() >= MAX_SUBSCRIPTIONS_PER_USER {
            return Err(PushError::Invalid(format!(
                "at most {MAX_SUBSCRIPTIONS_PER_USER} push subscriptions per user; delete one first"
            )));
        }
        let new = PushSubscription {
            id: PushSubscriptionId::generate(),
            owner_id: owner,
            endpoint: endpoint.into(),
            p256dh: subscription.keys.p256dh,
            auth: subscription.keys.auth,
            created_at: Timestamp::now(),
        };
        match self.repos.push.save_push_subscription(&new).await {
            // The account was deleted meanwhile.
            Err(DbError::MissingReference(_)) => Err(PushError::NotFound("user")),
            other => other.map_err(PushError::from),
        }
    }

    /// The owner's subscriptions, oldest first.
    pub async fn list(&self, owner: UserId) -> Result<Vec<PushSubscription>, PushError> {
        Ok(self.repos.push.push_subscriptions_of(owner).await?)
    }

    /// Deletes an owned subscription; another user's is as missing as one that never was.
    pub async fn delete(&self, owner: UserId, id: &str) -> Result<(), PushError> {
        let id = PushSubscriptionId::parse(id).ok_or(PushError::NotFound("push subscription"))?;
        if !self.repos.push.delete_push_subscription(id, owner).await? {
            return Err(PushError::NotFound("push subscription"));
        }
        Ok(())
    }

    /// Pushes events until `stop`: the dispatcher, woken by `hub`, and the sender, woken by the
    /// dispatcher. Messages under way finish first.
    pub async fn run(self, hub: Arc<EventHub>, stop: CancellationToken) {
        courier::run(self.sender, hub, stop).await;
    }

    /// Sends the messages made elsewhere (by [`PushService::messages_of`]) until `stop`, woken
    /// by `made` and by a periodic look. Messages under way finish first.
    pub async fn send(self, made: Arc<Notify>, stop: CancellationToken) {
        courier::send(self.sender, made, stop).await;
    }

    /// Makes the push messages of one event that came from the broker, as the dispatcher makes
    /// those of each event it reads: answers how many were new (none for an event seen before).
    pub async fn messages_of(&self, event: &hark_api::Event) -> Result<u64, DbError> {
        self.sender.dispatch_event(event.seq, &event.id).await
    }
}

/// A subscription's fault as `field: reason`, like the other validation answers.
fn invalid_field(error: hark_push::PushError) -> String {
    match error {
        hark_push::PushError::InvalidSubscription { field, reason } => format!("{field}: {reason}"),
        other => other.to_string(),
    }
}
