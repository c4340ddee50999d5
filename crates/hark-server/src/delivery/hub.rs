//! This process's view of the event log as it grows. One follower reads each new event once
//! and fans it out to everything here that waits for events (long-polls, streams), so that a
//! waiter costs a subscription, not a query: the database is read once per wake-up, however
//! many wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use hark_api::EventData;

use crate::cache::{SharedCache, touched};
use crate::db::{EventLog, Repos};
use crate::domain::{InboxEntry, LoggedEvent, UserId};

/// Events kept for subscribers that fall behind; past that they are told they lagged and
/// read the log themselves.
const BACKLOG: usize = 4096;
/// The same for one user's subscribers (a long-poll, a stream), who read the log when they
/// lag: one channel per user who waits, so it stays small.
const USER_BACKLOG: usize = 16;
/// Events read per query.
const BATCH: i64 = 500;
/// How often the follower looks even without a signal: a safety net for a lost `NOTIFY`.
const RECHECK: Duration = Duration::from_secs(5);

/// An event as the hub hands it on.
pub struct HubEvent {
    pub event: LoggedEvent,
    /// For `note.received`: the entry it made in each recipient's inbox, read once for every
    /// waiter (`None` when the note is gone by then, or nobody here waited for it).
    pub received: Option<InboxEntry>,
    /// The long-poll answer this event ends, rendered by the first waiter it wakes: every
    /// recipient woken by it gets the same bytes.
    pub inbox_answer: std::sync::OnceLock<bytes::Bytes>,
}

pub struct EventHub {
    events: broadcast::Sender<Arc<HubEvent>>,
    /// The events of each user someone waits for: a waiter is woken by its user's events
    /// alone, not by every event of the server.
    users: std::sync::Mutex<HashMap<UserId, broadcast::Sender<Arc<HubEvent>>>>,
    /// Cancelled when the follower stops (the server is shutting down): waiters answer now.
    stopped: CancellationToken,
    /// Told of every event before it is handed on, so that nobody woken by an event reads
    /// what the cache held before it (the process that made the change may not have told it
    /// yet, or may have no cache configured).
    cache: Option<Arc<SharedCache>>,
}

impl EventHub {
    pub fn new(cache: Option<Arc<SharedCache>>) -> EventHub {
        EventHub {
            events: broadcast::channel(BACKLOG).0,
            users: std::sync::Mutex::default(),
            stopped: CancellationToken::new(),
            cache,
        }
    }

    /// Every event published from now on, in `seq` order. Subscribe before reading the log,
    /// so that nothing falls between the read and the subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.events.subscribe()
    }

    /// Every event published from now on whose audience includes `user`, in `seq` order.
    /// Subscribe before reading the log, as with [`EventHub::subscribe`].
    pub fn subscribe_user(&self, user: UserId) -> broadcast::Receiver<Arc<HubEvent>> {
        self.users()
            .entry(user)
            .or_insert_with(|| broadcast::channel(USER_BACKLOG).0)
            .subscribe()
    }

    fn users(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<UserId, broadcast::Sender<Arc<HubEvent>>>> {
        // Every update leaves the map whole.
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `event` to everyone subscribed to it.
    fn hand_on(&self, event: Arc<HubEvent>) {
        {
            let users = self.users();
            for user in &event.event.audience {
                if let Some(channel) = users.get(user) {
                    // Nobody waiting any more is not an error.
                    let _ = channel.send(event.clone());
                }
            }
        }
        // No subscriber is not an error: nobody waits right now.
        let _ = self.events.send(event);
    }

    /// Whether anyone in the event's audience waits in this process.
    fn awaited(&self, event: &LoggedEvent) -> bool {
        let users = self.users();
        event.audience.iter().any(|user| users.contains_key(user))
    }

    /// Forgets the channels of users nobody waits for any more.
    fn sweep(&self) {
        self.users()
            .retain(|_, channel| channel.receiver_count() > 0);
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
        let mut swept = tokio::time::Instant::now();
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
                        // Read for the long-polls waiting here; with none, they find it in the
                        // log if they come later.
                        let received = if self.awaited(&event) {
                            received_note(repos, &event).await
                        } else {
                            None
                        };
                        self.hand_on(Arc::new(HubEvent {
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
            if swept.elapsed() >= RECHECK {
                self.sweep();
                swept = tokio::time::Instant::now();
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = appended.notified() => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }
}

/// The inbox entry a `note.received` made, as each of its recipients' inboxes shows it.
async fn received_note(repos: &Repos, event: &LoggedEvent) -> Option<InboxEntry> {
    let EventData::NoteReceived(received) = &event.data else {
        return None;
    };
    let note_id = crate::domain::NoteId::parse(&received.note_id)?;
    let sender_id = UserId::parse(&received.sender_id)?;
    let note = repos.notes.note_by_id(note_id).await.ok()??;
    let sender = repos.users.user_by_id(sender_id).await.ok()??;
    Some(InboxEntry {
        note,
        sender_id,
        sender_email: sender.email.as_str().to_owned(),
        channel: received.channel.clone(),
        delivered_at: event.created_at,
        listened_at: None,
        seq: event.seq,
    })
}
