//! Webhooks: users register endpoints for the event types they want, and every event they are
//! in the audience of is POSTed there, signed, retried and recorded (see `send`). The use cases
//! here manage the endpoints; `run` drives delivery through the shared courier loops
//! (`crate::outbound::courier`): the dispatcher turns the event log into deliveries, the sender
//! (`send`) makes the attempts. `hark notifier` does the same from the broker's stream instead
//! of the log: `deliveries_of` each event, and `send`.

mod send;
pub mod signature;

use std::sync::Arc;

use hark_api::EventType;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::WebhooksConfig;
use crate::db::{DbError, Repos};
use crate::delivery::EventHub;
use crate::domain::ids::WebhookId;
use crate::domain::{AttemptRecord, Timestamp, UserId, Webhook};
use crate::outbound::courier::{self, Courier};
use crate::outbound::target;
pub use send::{CONSUMER, Sender};

/// The most webhooks one user may have.
pub const MAX_WEBHOOKS_PER_USER: usize = 50;
/// The default page of attempts.
const DEFAULT_ATTEMPTS_PAGE: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A webhook just created, with the secret it signs with (shown this once).
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

#[derive(Clone)]
pub struct WebhookService {
    repos: Repos,
    allow_private_targets: bool,
    sender: Arc<Sender>,
}

impl WebhookService {
    /// Fails only when the HTTP client cannot be made (no TLS roots, say).
    pub fn new(repos: Repos, settings: WebhooksConfig) -> Result<WebhookService, reqwest::Error> {
        Ok(WebhookService {
            sender: Arc::new(Sender::new(repos.clone(), &settings)?),
            repos,
            allow_private_targets: settings.allow_private_targets,
        })
    }

    /// Registers a webhook for `owner`. The URL must be an absolute http(s) URL on a public
    /// address (unless the configuration allows others), and `events` name at least one
    /// known type.
    pub async fn create(
        &self,
        owner: UserId,
        url: &str,
        events: &[String],
    ) -> Result<CreatedWebhook, WebhookError> {
        let events = event_types(events)?;
        let url = target::check_new_url(url, "url", self.allow_private_targets)
            .await
            .map_err(WebhookError::Invalid)?;
        if self.repos.webhooks.webhooks_of(owner).await?.len() >= MAX_WEBHOOKS_PER_USER {
            return Err(WebhookError::Invalid(format!(
                "at most {MAX_WEBHOOKS_PER_USER} webhooks per user; delete one first"
            )));
        }
        let webhook = Webhook {
            id: WebhookId::generate(),
            owner_id: owner,
            url: url.into(),
            events,
            created_at: Timestamp::now(),
        };
        let secret = signature::new_secret();
        match self.repos.webhooks.create_webhook(&webhook, &secret).await {
            // The account was deleted meanwhile.
            Err(DbError::MissingReference(_)) => Err(WebhookError::NotFound("user")),
            other => other.map_err(WebhookError::from),
        }?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// The owner's webhooks, oldest first.
    pub async fn list(&self, owner: UserId) -> Result<Vec<Webhook>, WebhookError> {
        Ok(self.repos.webhooks.webhooks_of(owner).await?)
    }

    /// An owned webhook; another user's is as missing as one that never was.
    pub async fn get(&self, owner: UserId, id: &str) -> Result<Webhook, WebhookError> {
        let id = WebhookId::parse(id).ok_or(WebhookError::NotFound("webhook"))?;
        self.repos
            .webhooks
            .webhook(id, owner)
            .await?
            .ok_or(WebhookError::NotFound("webhook"))
    }

    /// Deletes an owned webhook: its pending deliveries are never sent.
    pub async fn delete(&self, owner: UserId, id: &str) -> Result<(), WebhookError> {
        let id = WebhookId::parse(id).ok_or(WebhookError::NotFound("webhook"))?;
        if !self.repos.webhooks.delete_webhook(id, owner).await? {
            return Err(WebhookError::NotFound("webhook"));
        }
        Ok(())
    }

    /// An owned webhook's newest attempts, newest first.
    pub async fn attempts(
        &self,
        owner: UserId,
        id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<AttemptRecord>, WebhookError> {
        let limit = limit.unwrap_or(DEFAULT_ATTEMPTS_PAGE);
        if !(1..=hark_api::MAX_DELIVERIES_PAGE).contains(&limit) {
            return Err(WebhookError::Invalid(format!(
                "limit must be 1 to {}",
                hark_api::MAX_DELIVERIES_PAGE
            )));
        }
        let webhook = self.get(owner, id).await?;
        Ok(self.repos.webhooks.attempts(webhook.id, limit).await?)
    }

    /// Delivers events until `stop`: the dispatcher, woken by `hub`, and the sender, woken by
    /// the dispatcher. Attempts under way finish first.
    pub async fn run(self, hub: Arc<EventHub>, stop: CancellationToken) {
        courier::run(self.sender, hub, stop).await;
    }

    /// Sends the deliveries made elsewhere (by [`WebhookService::deliveries_of`]) until
    /// `stop`, woken by `made` and by a periodic look. Attempts under way finish first.
    pub async fn send(self, made: Arc<Notify>, stop: CancellationToken) {
        courier::send(self.sender, made, stop).await;
    }

    /// Makes the deliveries of one event that came from the broker, as the dispatcher makes
    /// those of each event it reads: answers how many were new (none for an event seen before).
    pub async fn deliveries_of(&self, event: &hark_api::Event) -> Result<u64, DbError> {
        self.sender.dispatch_event(event.seq, &event.id).await
    }
}

/// The event types a webhook asks for: at least one, each known; sorted, once each.
fn event_types(names: &[String]) -> Result<Vec<EventType>, WebhookError> {
    if names.is_empty() {
        return Err(WebhookError::Invalid(
            "events: name at least one event type".into(),
        ));
    }
    let mut types = Vec::with_capacity(names.len());
    for name in names {
        let kind = EventType::parse(name).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            WebhookError::Invalid(format!(
                "events: unknown type {name:?}; expected some of {}",
                known.join(", ")
            ))
        })?;
        types.push(kind);
    }
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    Ok(types)
}
