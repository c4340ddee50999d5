//! The outbox relay: publishes every event of the log to the broker in `seq` order, moving its
//! durable position (the `broker` row of `consumer_positions`) past events only once the broker
//! has acknowledged them. At least once, then: an event is published again after a crash
//! between the acknowledgement and the move (JetStream drops such a repeat by its id), and
//! never lost. Servers sharing a database take turns through a lease on the position, so one
//! relay at a time publishes, and the stream keeps the log's order.
//!
//! The event hub says when to look; a periodic look keeps the relay going without it, and lets
//! a server take over the lease of one that died. While the broker is away, each publish fails
//! within the broker's timeout and the relay waits longer after each failure (exponentially,
//! with jitter, up to half a minute); the events wait in the log, and uploads go on.

use std::sync::Arc;
use std::time::Duration;

use hark_broker::BrokerError;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{BrokerLink, retry_after, with_causes};
use crate::db::{DbError, Repos};
use crate::delivery::{EventHub, HubEvent};
use crate::domain::{LoggedEvent, Timestamp};
use crate::metrics::{BROKER_PUBLISH_FAILURES, BROKER_PUBLISHED};

/// The relay's name in `consumer_positions`.
pub const CONSUMER: &str = "broker";
/// Events read per query.
const BATCH: i64 = 100;
/// How often the relay looks without being woken, and a server without the lease checks
/// whether it expired.
const RECHECK: Duration = Duration::from_secs(5);

/// Why a pass over the log stopped before its end.
enum Halt {
    Broker(BrokerError),
    Db(DbError),
    /// Another server holds the lease.
    NotHolder,
}

impl From<DbError> for Halt {
    fn from(error: DbError) -> Halt {
        Halt::Db(error)
    }
}

pub struct Relay {
    repos: Repos,
    broker: Arc<BrokerLink>,
    /// This relay's name on the lease.
    owner: String,
}

impl Relay {
    pub fn new(repos: Repos, broker: Arc<BrokerLink>) -> Relay {
        Relay {
            repos,
            broker,
            owner: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// Gives a broker configured for the first time its position at the log's end, before the
    /// server takes requests: every event committed from then on is published.
    pub async fn open(&self) -> Result<(), DbError> {
        self.repos
            .positions
            .open_position(CONSUMER)
            .await
            .map(|_| ())
    }

    /// Publishes until `stop`, then lets go of the lease so another server takes over at once.
    pub async fn run(self, hub: Arc<EventHub>, stop: CancellationToken) {
        let mut appended = Some(hub.subscribe());
        let mut lease = Lease::new(&self.repos, &self.owner, self.broker.timeout());
        let mut retry = Retry::default();
        while !stop.is_cancelled() {
            let wait = self.turn(&mut lease, &mut retry, &stop).await;
            // Only the holder has anything to do when events arrive.
            let holder = lease.held.is_some();
            tokio::select! {
                () = stop.cancelled() => {}
                () = woken(&mut appended), if holder => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Err(e) = lease.release().await {
            tracing::warn!(error = %e, "releasing the broker relay's lease; it expires by itself");
        }
    }

    /// Publishes what there is, unless waiting after a failure; answers how long to wait for
    /// the next turn when nothing wakes the relay.
    async fn turn(
        &self,
        lease: &mut Lease<'_>,
        retry: &mut Retry,
        stop: &CancellationToken,
    ) -> Duration {
        if let Some(wait) = retry.pending() {
            // The lease is kept meanwhile: another server would find the broker as it is.
            if let Err(e) = lease.position().await {
                tracing::warn!(error = %e, "renewing the broker relay's lease");
            }
            return wait.min(RECHECK);
        }
        match self.publish_all(lease, stop).await {
            Ok(()) => {
                if retry.succeeded() {
                    tracing::info!("publishing events to the broker again");
                }
                RECHECK
            }
            Err(Halt::NotHolder) => RECHECK,
            Err(Halt::Broker(e)) => {
                let wait = retry.failed();
                tracing::warn!(error = with_causes(&e), retry_in = ?wait, "publishing events to the broker failed");
                wait
            }
            Err(Halt::Db(e)) => {
                let wait = retry.failed();
                tracing::warn!(error = %e, retry_in = ?wait, "reading events for the broker failed");
                wait
            }
        }
    }

    /// Publishes every event after the position, batch by batch, while holding the lease and
    /// until `stop` (a long backlog does not hold up a shutdown: the next holder goes on).
    async fn publish_all(
        &self,
        lease: &mut Lease<'_>,
        stop: &CancellationToken,
    ) -> Result<(), Halt> {
        while !stop.is_cancelled() {
            let Some(position) = lease.position().await? else {
                return Err(Halt::NotHolder);
            };
            let events = self.repos.events.events_after(position, BATCH).await?;
            if events.is_empty() {
                return Ok(());
            }
            self.publish_batch(lease, position, &events).await?;
            if (events.len() as i64) < BATCH {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Publishes `events` one by one, each acknowledged before the next, and moves the
    /// position past those the broker took, failure or not.
    async fn publish_batch(
        &self,
        lease: &mut Lease<'_>,
        position: i64,
        events: &[LoggedEvent],
    ) -> Result<(), Halt> {
        let mut published = position;
        let mut outcome = Ok(());
        for event in events {
            // A publish that began on a lease about to end could outlive it.
            if lease.renewal_due() && !lease.advance(published).await? {
                return Err(Halt::NotHolder);
            }
            if let Err(e) = self.broker.publish(event).await {
                metrics::counter!(BROKER_PUBLISH_FAILURES).increment(1);
                outcome = Err(Halt::Broker(e));
                break;
            }
            metrics::counter!(BROKER_PUBLISHED).increment(1);
            published = event.seq;
        }
        if published > position && !lease.advance(published).await? {
            return Err(Halt::NotHolder);
        }
        outcome
    }
}

/// Waits for the hub's next event, taking every one already waiting: one look at the log
/// covers them all. A hub that stopped never wakes.
async fn woken(appended: &mut Option<broadcast::Receiver<Arc<HubEvent>>>) {
    let Some(receiver) = appended.as_mut() else {
        return std::future::pending().await;
    };
    match receiver.recv().await {
        Err(RecvError::Closed) => *appended = None,
        Ok(_) | Err(RecvError::Lagged(_)) => while receiver.try_recv().is_ok() {},
    }
}

/// This relay's hold on the position, as far as it knows: `until` is measured from before the
/// database was asked, so it never outlasts the hold the database records.
struct Lease<'a> {
    repos: &'a Repos,
    owner: &'a str,
    held: Option<Held>,
    /// How long a hold lasts.
    length: Duration,
    /// The holder renews once less than this remains: more than a publish may take.
    renew_below: Duration,
}

struct Held {
    position: i64,
    until: Instant,
}

impl<'a> Lease<'a> {
    fn new(repos: &'a Repos, owner: &'a str, publish_timeout: Duration) -> Lease<'a> {
        let renew_below = publish_timeout + Duration::from_secs(15);
        Lease {
            repos,
            owner,
            held: None,
            length: renew_below + Duration::from_secs(10),
            renew_below,
        }
    }

    fn renewal_due(&self) -> bool {
        self.held.as_ref().is_none_or(|held| {
            held.until.saturating_duration_since(Instant::now()) <= self.renew_below
        })
    }

    /// The position, with the lease held (taken or renewed as needed); `None` while another
    /// server holds it.
    async fn position(&mut self) -> Result<Option<i64>, DbError> {
        if let Some(position) = self.held.as_ref().map(|held| held.position) {
            if !self.renewal_due() {
                return Ok(Some(position));
            }
            return Ok(self.advance(position).await?.then_some(position));
        }
        let asked = Instant::now();
        let position = self
            .repos
            .positions
            .lease_position(CONSUMER, self.owner, Timestamp::after(self.length))
            .await?;
        if position.is_some() {
            tracing::info!("this server now publishes events to the broker");
        }
        self.held = position.map(|position| Held {
            position,
            until: asked + self.length,
        });
        Ok(position)
    }

    /// Moves the position to `seq`, renewing the lease; `false` once another server took it.
    async fn advance(&mut self, seq: i64) -> Result<bool, DbError> {
        let asked = Instant::now();
        let kept = self
            .repos
            .positions
            .advance_position(CONSUMER, self.owner, seq, Timestamp::after(self.length))
            .await?;
        if !kept && self.held.is_some() {
            tracing::warn!("another server took over publishing events to the broker");
        }
        self.held = kept.then_some(Held {
            position: seq,
            until: asked + self.length,
        });
        Ok(kept)
    }

    async fn release(&mut self) -> Result<(), DbError> {
        if self.held.take().is_some() {
            self.repos
                .positions
                .release_position(CONSUMER, self.owner)
                .await?;
        }
        Ok(())
    }
}

/// Waits after failures in a row (see [`retry_after`]).
#[derive(Default)]
struct Retry {
    failures: u32,
    until: Option<Instant>,
}

impl Retry {
    /// How long until the next attempt, while waiting after a failure.
    fn pending(&self) -> Option<Duration> {
        self.until
            .map(|until| until.saturating_duration_since(Instant::now()))
            .filter(|wait| !wait.is_zero())
    }

    /// Counts a failure; answers the wait before the next attempt.
    fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = retry_after(self.failures);
        self.until = Some(Instant::now() + wait);
        wait
    }

    /// Counts a success; answers whether it ends a run of failures.
    fn succeeded(&mut self) -> bool {
        let recovered = self.failures > 0;
        self.failures = 0;
        self.until = None;
        recovered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_ends_the_waiting() {
        let mut retry = Retry::default();
        assert!(retry.pending().is_none());
        let wait = retry.failed();
        assert!(wait > Duration::ZERO);
        assert!(retry.pending().is_some());
        assert!(retry.succeeded());
        assert!(retry.pending().is_none());
        assert!(!retry.succeeded());
    }
}
