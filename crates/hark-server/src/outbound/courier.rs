//! Durable delivery of events, the same for webhooks and push messages. A dispatcher reads the
//! event log after its durable position and makes, in one transaction with moving that
//! position, the rows to send; senders claim due rows under a lease, send them and record what
//! came of each. Nothing is lost between a commit and a send: an event that commits while no
//! server runs is read when one starts. The event hub only says when to look; periodic looks
//! keep it correct without the hub, and find retries that fell due and leases that expired.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, Dispatched};
use crate::delivery::{EventHub, HubEvent};
use crate::domain::Timestamp;

/// Events read per dispatching transaction.
const BATCH: i64 = 500;
/// How often the dispatcher looks without being woken: a safety net for a lost wake-up.
const RECHECK: Duration = Duration::from_secs(5);
/// Sends under way at once.
const MAX_IN_FLIGHT: usize = 32;
/// A claim outlives the attempt's timeout by this much: a sender that dies leaves a lease that
/// expires soon after, and the row is claimed again.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often an idle sender looks without being woken: for rows made by other nodes and
/// leases that expired.
const POLL: Duration = Duration::from_secs(1);
/// The shortest idle wait, so a row due now but not yet claimable never spins the loop.
const MIN_WAIT: Duration = Duration::from_millis(20);

/// One kind of durable delivery: how its rows are made, claimed and sent.
#[async_trait]
pub trait Courier: Send + Sync + 'static {
    /// A row claimed under a lease, ready to send.
    type Claim: Send + 'static;
    /// What it delivers, for logs ("webhook deliveries").
    const WHAT: &'static str;

    /// Makes the rows of up to `limit` events after the durable position, moving it past them
    /// in the same transaction.
    async fn dispatch(&self, limit: i64) -> Result<Dispatched, DbError>;
    /// Makes the rows of the one event with this `seq` and `id`, read from elsewhere than the
    /// log (the broker), as `dispatch` makes those of each event it reads, moving no position:
    /// the two never make a row twice. Answers how many it made.
    async fn dispatch_event(&self, seq: i64, id: &str) -> Result<u64, DbError>;
    /// How long one attempt may take; a claim holds a little longer.
    fn timeout(&self) -> Duration;
    /// Claims up to `limit` due rows until `lease_until`.
    async fn claim(&self, lease_until: Timestamp, limit: u32) -> Result<Vec<Self::Claim>, DbError>;
    /// When a row may next become claimable; `None` when nothing is pending.
    async fn next_due(&self) -> Result<Option<Timestamp>, DbError>;
    /// Sends one claimed row and records what came of it.
    async fn deliver(&self, claim: Self::Claim);
}

/// Delivers until `stop`: the dispatcher, woken by `hub`, and the sender, woken by the
/// dispatcher. Sends under way finish first (each within its timeout) and are recorded.
pub async fn run<C: Courier>(courier: Arc<C>, hub: Arc<EventHub>, stop: CancellationToken) {
    let made = Arc::new(Notify::new());
    let dispatcher = tokio::spawn(dispatch_until_stopped(
        courier.clone(),
        hub,
        made.clone(),
        stop.clone(),
    ));
    send(courier, made, stop).await;
    let _ = dispatcher.await;
}

/// Dispatches until `stop`, waking `sender` whenever rows were made.
async fn dispatch_until_stopped<C: Courier>(
    courier: Arc<C>,
    hub: Arc<EventHub>,
    sender: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut events = Some(hub.subscribe());
    while !stop.is_cancelled() {
        dispatch_all(courier.as_ref(), &sender).await;
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
async fn dispatch_all<C: Courier>(courier: &C, sender: &Notify) {
    loop {
        match courier.dispatch(BATCH).await {
            Ok(dispatched) => {
                if dispatched.deliveries > 0 {
                    sender.notify_one();
                }
                if dispatched.events < BATCH as u64 {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "dispatching events to {} failed", C::WHAT);
                return;
            }
        }
    }
}

/// Takes the events already waiting: one look at the log covers them all.
fn drain(receiver: &mut tokio::sync::broadcast::Receiver<Arc<HubEvent>>) {
    while !matches!(
        receiver.try_recv(),
        Err(TryRecvError::Empty | TryRecvError::Closed)
    ) {}
}

/// Claims and sends rows until `stop`; sends under way then finish. `wake` tells it that rows
/// were made (by this process's dispatcher, or by `Courier::dispatch_event`).
pub async fn send<C: Courier>(courier: Arc<C>, wake: Arc<Notify>, stop: CancellationToken) {
    let mut in_flight = JoinSet::new();
    while !stop.is_cancelled() {
        let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        if free > 0 {
            let lease_until = Timestamp::after(courier.timeout() + LEASE_MARGIN);
            match courier
                .claim(lease_until, u32::try_from(free).unwrap_or(1))
                .await
            {
                Ok(claims) => {
                    for claim in claims {
                        let courier = courier.clone();
                        in_flight.spawn(async move { courier.deliver(claim).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming {} failed", C::WHAT),
            }
        }
        let idle = if in_flight.len() >= MAX_IN_FLIGHT {
            POLL
        } else {
            until_due(courier.as_ref()).await
        };
        tokio::select! {
            () = stop.cancelled() => {}
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a task sending {} failed", C::WHAT);
                }
            }
            () = wake.notified() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// How long until a row may become claimable, within `MIN_WAIT..=POLL`.
async fn until_due<C: Courier>(courier: &C) -> Duration {
    match courier.next_due().await {
        Ok(Some(due)) => {
            let micros = due.micros().saturating_sub(Timestamp::now().micros());
            Duration::from_micros(u64::try_from(micros).unwrap_or(0)).clamp(MIN_WAIT, POLL)
        }
        Ok(None) => POLL,
        Err(e) => {
            tracing::warn!(error = %e, "reading when {} are due failed", C::WHAT);
            POLL
        }
    }
}
