//! The dispatcher: reads the event log after its durable position and makes, in one
//! transaction with moving that position, a delivery of each event to every webhook that wants
//! it. Nothing is lost between a commit and a send: an event that commits while no server
//! runs is read when one starts. The event hub only says when to look; a periodic look keeps
//! it correct without the hub.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, Repos};
use crate::delivery::EventHub;

/// The dispatcher's name in `consumer_positions`.
pub const CONSUMER: &str = "webhooks";
/// Events read per transaction.
const BATCH: i64 = 500;
/// How often it looks without being woken: a safety net for a lost wake-up.
const RECHECK: Duration = Duration::from_secs(5);

/// Dispatches until `stop`, waking `sender` whenever deliveries were made.
pub async fn dispatch_until_stopped(
    repos: Repos,
    hub: Arc<EventHub>,
    sender: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut events = Some(hub.subscribe());
    while !stop.is_cancelled() {
        dispatch_all(&repos, &sender).await;
        let woken = async {
            match events.as_mut() {
                Some(receiver) => match receiver.recv().await {
                    Err(RecvError::Closed) => events = None,
                    // Any event, or too many to tell: look again.
                    Ok(_) | Err(RecvError::Lagged(_)) => drain(receiver),
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => {}
            () = woken => {}
            () = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// Dispatches every event there is now.
async fn dispatch_all(repos: &Repos, sender: &Notify) {
    loop {
        match repos.webhooks.dispatch_events(CONSUMER, BATCH).await {
            Ok(dispatched) => {
                if dispatched.deliveries > 0 {
                    sender.notify_one();
                }
                if dispatched.events < BATCH as u64 {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "dispatching events to webhooks failed");
                return;
            }
        }
    }
}

/// Makes the deliveries of one event read from elsewhere than the log (the broker): the same
/// statement as a pass over the log makes for each event, so the two never deliver an event
/// twice to one webhook.
pub async fn dispatch_event(repos: &Repos, event: &hark_api::Event) -> Result<u64, DbError> {
    repos.webhooks.dispatch_event(event.seq, &event.id).await
}

/// Takes the events already waiting: one look at the log covers them all.
fn drain(receiver: &mut tokio::sync::broadcast::Receiver<Arc<crate::delivery::HubEvent>>) {
    while !matches!(
        receiver.try_recv(),
        Err(TryRecvError::Empty | TryRecvError::Closed)
    ) {}
}
