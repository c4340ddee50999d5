//! This process's view of the event log as it grows. One follower reads each new event once
//! and fans it out to everything here that waits for events (long-polls, streams), so that a
//! waiter costs a subscription, not a query: the database is read once per wake-up, however
//! many wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use hark_api::EventData;

use crate::cache::{SharedCache, touched};
use crate::db::{EventLog, Repos};
use crate::domain::{LoggedEvent, Note, UserId};

/// Events kept for subscribers that fall behind; past that they are told they lagged and
/// read the log themselves.
const BACKLOG: usize = 4096;
/// Events read per query.
const BATCH: i64 = 500;
/// How often the follower looks even without a signal: a safety net for a lost `NOTIFY`.
const RECHECK: Duration = Duration::from_secs(5);

/// An event as the hub hands it on.
pub struct HubEvent {
    pub event: LoggedEvent,
    /// For `note.received`: the note and its sender as the recipients' inboxes show them,
    /// read once for every waiter (`None` when the note is gone by then).
    pub received: Option<ReceivedNote>,
    /// The long-poll answer this event ends, rendered by the first waiter it wakes: every
    /// recipient woken by it gets the same bytes.
    pub inbox_answer: std::sync::OnceLock<bytes::Bytes>,
}

pub struct ReceivedNote {
    pub note: Note,
    pub sender_id: UserId,
    pub sender_email: String,
}

pub struct EventHub {
    events: broadcast::Sender<Arc<HubEvent>>,
    /// Cancelled when the follower stops (the server is shutting down): waiters answer now.
    stopped: CancellationToken,
    /// Told of every event before it is handed on, so that nobody woken by an event reads
    /// what the cache held before it (the process that made the change may not have told it
    /// yet, or may have no cache configured).
    cache: Option<Arc<SharedCache>>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(None)
    }
}

impl EventHub {
    pub fn new(cache: Option<Arc<SharedCache>>) -> EventHub {
        EventHub {
            events: broadcast::channel(BACKLOG).0,
            stopped: CancellationToken::new(),
            cache,
        }
    }

    /// Every event published from now on, in `seq` order. Subscribe before reading the log,
    /// so that nothing falls between the read and the subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.events.subscribe()
    }

    /// Resolves once no more events will be published.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }

    /// Publishes the log's new events until `stop`, starting after the last one that exists
    /// now.
    pub async fn follow(self: Arc<Self>, repos: Repos, stop: CancellationToken) {
        self.publish(&repos, stop).await;
        self.stopped.cancel();
    }

    async fn publish(&self, repos: &Repos, stop: CancellationToken) {
        let log: &dyn EventLog = repos.events.as_ref();
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
                    if let Some(cache) = &self.cache {
                        let touched = events.iter().flat_map(|e| touched(&e.data, &e.audience));
                        cache.forget_users(touched).await;
                    }
                    for event in events {
                        position = event.seq;
                        let received = received_note(repos, &event).await;
                        // No subscriber is not an error: nobody waits right now.
                        let _ = self.events.send(Arc::new(HubEvent {
                            event,
                            received,
                            inbox_answer: std::sync::OnceLock::new(),
                        }));
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

/// The note a `note.received` delivered, with its sender, as inboxes show them.
async fn received_note(repos: &Repos, event: &LoggedEvent) -> Option<ReceivedNote> {
    let EventData::NoteReceived(received) = &event.data else {
        return None;
    };
    let note_id = crate::domain::NoteId::parse(&received.note_id)?;
    let sender_id = UserId::parse(&received.sender_id)?;
    let note = repos.notes.note_by_id(note_id).await.ok()??;
    let sender = repos.users.user_by_id(sender_id).await.ok()??;
    Some(ReceivedNote {
        note,
        sender_id,
        sender_email: sender.email.as_str().to_owned(),
    })
}
