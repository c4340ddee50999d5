//! This process's view of the event log as it grows. One follower reads each new event once
//! and fans it out to everything here that waits for events (long-polls, streams), so that a
//! waiter costs a subscription, not a query: the database is read once per wake-up, however
//! many wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::db::EventLog;
use crate::domain::LoggedEvent;

/// Events kept for subscribers that fall behind; past that they are told they lagged and
/// read the log themselves.
const BACKLOG: usize = 4096;
/// Events read per query.
const BATCH: i64 = 500;
/// How often the follower looks even without a signal: a safety net for a lost `NOTIFY`.
const RECHECK: Duration = Duration::from_secs(5);

pub struct EventHub {
    events: broadcast::Sender<Arc<LoggedEvent>>,
    /// Cancelled when the follower stops (the server is shutting down): waiters answer now.
    stopped: CancellationToken,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            events: broadcast::channel(BACKLOG).0,
            stopped: CancellationToken::new(),
        }
    }
}

impl EventHub {
    /// Every event published from now on, in `seq` order. Subscribe before reading the log,
    /// so that nothing falls between the read and the subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LoggedEvent>> {
        self.events.subscribe()
    }

    /// Resolves once no more events will be published.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }

    /// Publishes the log's new events until `stop`, starting after the last one that exists
    /// now.
    pub async fn follow(self: Arc<Self>, log: Arc<dyn EventLog>, stop: CancellationToken) {
        self.publish(log, stop).await;
        self.stopped.cancel();
    }

    async fn publish(&self, log: Arc<dyn EventLog>, stop: CancellationToken) {
        let appended = log.appends();
        let mut position = loop {
            match log.last_seq().await {
                Ok(seq) => break seq,
                Err(e) => tracing::warn!(error = %e, "reading the event log's end"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        loop {
            match log.events_after(position, BATCH).await {
                Ok(events) => {
                    let full = events.len() as i64 == BATCH;
                    for event in events {
                        position = event.seq;
                        // No subscriber is not an error: nobody waits right now.
                        let _ = self.events.send(Arc::new(event));
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading new events"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = appended.notified() => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }
}
