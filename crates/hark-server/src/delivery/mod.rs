//! The delivery use cases: channels and their members, sending a note to recipients (at upload
//! or later), the inbox with its long-poll, and listening. What a delivery causes is an effect
//! committed with the change that sends it (see `domain::Delivery`).

pub mod hub;

use std::sync::Arc;
use std::time::Duration;

use hark_api::EventData;
use tokio::sync::broadcast::error::RecvError;

use crate::db::{DbError, Repos};
use crate::domain::{
    Channel, Delivery, Effects, Email, InboxEntry, InboxQuery, LoggedEvent, Note, NoteId, UserId,
};
use crate::notes::effects;
pub use hub::{EventHub, HubEvent};

/// The most recipients one send may name.
pub const MAX_RECIPIENTS: usize = 1000;
/// The longest an inbox long-poll holds.
pub const MAX_WAIT_SECONDS: u64 = hark_api::MAX_INBOX_WAIT_SECONDS;
/// The default and the largest inbox page.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Recipients or a channel that do not exist (or that the sender may not reach); nothing
    /// was sent to anybody.
    #[error("unknown recipients: {}", .0.join(", "))]
    UnknownRecipients(Vec<String>),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("a channel named {0:?} already exists")]
    ChannelTaken(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Where a note goes: users named directly, and a channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// Emails or user ids.
    pub to: Vec<String>,
    pub channel: Option<String>,
}

impl Targets {
    /// Targets from the upload fields: `to` is comma-separated.
    pub fn from_fields(to: Option<&str>, channel: Option<&str>) -> Targets {
        Targets {
            to: to
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            channel: channel
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.to.is_empty() && self.channel.is_none()
    }
}

/// Targets resolved to users: every one exists, and the sender may reach the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipients {
    pub users: Vec<UserId>,
    pub channel: Option<String>,
}

impl Recipients {
    /// The delivery of `note` to them, from its owner.
    pub fn delivery_of(&self, note_id: NoteId, sender: UserId, title: Option<String>) -> Delivery {
        Delivery {
            note_id,
            sender_id: sender,
            title,
            channel: self.channel.clone(),
            recipients: self.users.clone(),
        }
    }
}

/// One inbox answer: entries newest first, and the position to ask `since` next time.
pub struct InboxPage {
    notes: PageNotes,
    pub cursor: i64,
}

/// Where a page's notes come from.
enum PageNotes {
    /// Read from the inbox.
    Read(Vec<InboxEntry>),
    /// The one note a long-poll waited for: the event that brought it, whose entry and
    /// rendered answer every waiter it woke shares.
    Arrived(Arc<HubEvent>),
}

impl PageNotes {
    fn entries(&self) -> &[InboxEntry] {
        match self {
            PageNotes::Read(entries) => entries,
            PageNotes::Arrived(event) => event.received.as_slice(),
        }
    }
}

impl InboxPage {
    /// The page's notes, newest first.
    pub fn entries(&self) -> &[InboxEntry] {
        self.notes.entries()
    }

    /// The event that brought the page's one note, when a long-poll waited for it.
    pub fn arrived(&self) -> Option<&Arc<HubEvent>> {
        match &self.notes {
            PageNotes::Arrived(event) => Some(event),
            PageNotes::Read(_) => None,
        }
    }
}

/// An inbox request, as parsed from the query string.
pub struct InboxRequest {
    pub since: Option<i64>,
    pub wait: Duration,
    pub sender: Option<UserId>,
    pub unlistened: bool,
    pub limit: Option<u32>,
}

#[derive(Clone)]
pub struct DeliveryService {
    repos: Repos,
    hub: Arc<EventHub>,
}

impl DeliveryService {
    pub fn new(repos: Repos, hub: Arc<EventHub>) -> DeliveryService {
        DeliveryService { repos, hub }
    }

    pub fn hub(&self) -> &Arc<EventHub> {
        &self.hub
    }

    pub async fn create_channel(
        &self,
        creator: UserId,
        name: &str,
    ) -> Result<Channel, DeliveryError> {
        if !Channel::valid_name(name) {
            return Err(DeliveryError::Invalid(
                "a channel name is 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter \
                 or digit"
                    .into(),
            ));
        }
        match self.repos.delivery.create_channel(name, creator).await {
            Err(e) if e.is_conflict() => Err(DeliveryError::ChannelTaken(name.to_owned())),
            other => Ok(other?),
        }
    }

    /// The channels `user` created or belongs to.
    pub async fn channels(&self, user: UserId) -> Result<Vec<Channel>, DeliveryError> {
        Ok(self.repos.delivery.channels_of(user).await?)
    }

    /// Adds a member (an email or a user id); only the channel's creator may. `false` when
    /// they were a member already.
    pub async fn add_member(
        &self,
        caller: UserId,
        channel: &str,
        member: &str,
    ) -> Result<(Channel, bool), DeliveryError> {
        let channel = self.managed_channel(caller, channel).await?;
        let user = self
            .find_user(member)
            .await?
            .ok_or(DeliveryError::NotFound("user"))?;
        let added = self.repos.delivery.add_member(&channel.name, user).await?;
        Ok((self.refreshed(channel).await?, added))
    }

    /// Removes a member; only the channel's creator may.
    pub async fn remove_member(
        &self,
        caller: UserId,
        channel: &str,
        member: &str,
    ) -> Result<(), DeliveryError> {
        let channel = self.managed_channel(caller, channel).await?;
        let user = self
            .find_user(member)
            .await?
            .ok_or(DeliveryError::NotFound("member"))?;
        if !self
            .repos
            .delivery
            .remove_member(&channel.name, user)
            .await?
        {
            return Err(DeliveryError::NotFound("member"));
        }
        Ok(())
    }

    /// Resolves every target or none: unknown users, and a channel the sender is not in, are
    /// named in the error. The sender is never among the recipients.
    pub async fn resolve(
        &self,
        sender: UserId,
        targets: &Targets,
    ) -> Result<Recipients, DeliveryError> {
        if targets.to.len() > MAX_RECIPIENTS {
            return Err(DeliveryError::Invalid(format!(
                "at most {MAX_RECIPIENTS} recipients at once"
            )));
        }
        let mut users = Vec::with_capacity(targets.to.len());
        let mut unknown = Vec::new();
        for target in &targets.to {
            match self.find_user(target).await? {
                Some(user) => users.push(user),
                None => unknown.push(target.clone()),
            }
        }
        if let Some(name) = &targets.channel {
            match self.repos.delivery.channel(name).await? {
                Some(channel) if channel.includes(sender) => {
                    users.extend(channel.recipients_for(sender));
                }
                // A channel the sender is not in is as unknown to them as a missing one.
                _ => unknown.push(format!("channel {name}")),
            }
        }
        if !unknown.is_empty() {
            return Err(DeliveryError::UnknownRecipients(unknown));
        }
        users.retain(|user| *user != sender);
        users.sort_unstable();
        users.dedup();
        Ok(Recipients {
            users,
            channel: targets.channel.clone(),
        })
    }

    /// Sends an owned note to more recipients; those who have it already are left alone.
    pub async fn send(
        &self,
        sender: UserId,
        note_id: &str,
        targets: &Targets,
    ) -> Result<(Note, Recipients), DeliveryError> {
        let id = NoteId::parse(note_id).ok_or(DeliveryError::NotFound("note"))?;
        let note = self
            .repos
            .notes
            .note_for_viewer(id, sender)
            .await?
            .ok_or(DeliveryError::NotFound("note"))?;
        if note.owner_id != sender {
            return Err(DeliveryError::Forbidden(
                "only the note's owner may send it".into(),
            ));
        }
        if targets.is_empty() {
            return Err(DeliveryError::Invalid(
                "name recipients in `to`, a `channel`, or both".into(),
            ));
        }
        let recipients = self.resolve(sender, targets).await?;
        let delivery = recipients.delivery_of(note.id, sender, note.title.clone());
        match self
            .repos
            .events
            .append(&Effects::none().delivery(delivery))
            .await
        {
            // The note was deleted meanwhile.
            Err(DbError::MissingReference(_)) => return Err(DeliveryError::NotFound("note")),
            other => other?,
        }
        Ok((note, recipients))
    }

    /// A page of `recipient`'s inbox. With a wait and nothing newer than `since`, holds until
    /// a note arrives or the wait ends (then an empty page at the same position).
    pub async fn inbox(
        &self,
        recipient: UserId,
        request: InboxRequest,
    ) -> Result<InboxPage, DeliveryError> {
        let limit = request.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(DeliveryError::Invalid(format!(
                "limit must be 1 to {MAX_PAGE}"
            )));
        }
        if request.wait > Duration::from_secs(MAX_WAIT_SECONDS) {
            return Err(DeliveryError::Invalid(format!(
                "wait must be 0 to {MAX_WAIT_SECONDS} seconds"
            )));
        }
        let query = InboxQuery {
            recipient,
            since: request.since,
            sender: request.sender,
            unlistened: request.unlistened,
            limit,
        };
        // Subscribed before the read: what commits after it arrives as an event.
        let mut arrivals = self.hub.subscribe_user(recipient);
        let mut entries = self.repos.delivery.inbox(&query).await?;
        let mut arrived = None;
        if entries.is_empty() && !request.wait.is_zero() {
            let deadline = tokio::time::Instant::now() + request.wait;
            let since = query.since.unwrap_or(0);
            loop {
                let arrival = tokio::select! {
                    arrival = tokio::time::timeout_at(deadline, arrivals.recv()) => arrival,
                    // Shutting down: answer now rather than hold the server up.
                    () = self.hub.stopped() => break,
                };
                match arrival {
                    Err(_elapsed) => break,
                    Ok(Ok(event)) if !received_by(&event.event, &query, since) => continue,
                    // The first note since the read: the whole answer, read once for every
                    // waiter by the hub, and shared with them rather than copied for each.
                    Ok(Ok(event)) if event.received.is_some() => {
                        arrived = Some(event);
                        break;
                    }
                    // Arrived but gone already, or too many events to tell: the log says.
                    Ok(Ok(_) | Err(RecvError::Lagged(_))) => {
                        entries = self.repos.delivery.inbox(&query).await?;
                        if !entries.is_empty() {
                            break;
                        }
                    }
                    Ok(Err(RecvError::Closed)) => break,
                }
            }
        }
        let notes = match arrived {
            Some(event) => PageNotes::Arrived(event),
            None => PageNotes::Read(entries),
        };
        let cursor = match (notes.entries().first(), query.since) {
            (Some(newest), _) => newest.seq,
            (None, Some(since)) => since,
            (None, None) => self.repos.delivery.inbox_position(recipient).await?,
        };
        Ok(InboxPage { notes, cursor })
    }

    /// Records that `listener` listened to a note they received; the sender gets
    /// `note.listened` the first time.
    pub async fn listened(&self, listener: UserId, note_id: &str) -> Result<(), DeliveryError> {
        let id = NoteId::parse(note_id).ok_or(DeliveryError::NotFound("note"))?;
        match self
            .repos
            .delivery
            .mark_listened(id, listener, &effects::listened)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(DeliveryError::NotFound("received note")),
        }
    }

    /// A recipient downloaded the whole note: their first listen, if it is one. Owners and
    /// others are not recipients and change nothing.
    pub async fn downloaded(&self, viewer: UserId, note: &Note) -> Result<(), DeliveryError> {
        if note.owner_id == viewer {
            return Ok(());
        }
        self.repos
            .delivery
            .mark_listened(note.id, viewer, &effects::listened)
            .await?;
        Ok(())
    }

    /// A channel that `caller` created; `Forbidden` for a member, `NotFound` for anyone else.
    async fn managed_channel(&self, caller: UserId, name: &str) -> Result<Channel, DeliveryError> {
        match self.repos.delivery.channel(name).await? {
            Some(channel) if channel.creator_id == caller => Ok(channel),
            Some(channel) if channel.includes(caller) => Err(DeliveryError::Forbidden(
                "only the channel's creator manages its members".into(),
            )),
            _ => Err(DeliveryError::NotFound("channel")),
        }
    }

    async fn refreshed(&self, channel: Channel) -> Result<Channel, DeliveryError> {
        Ok(self
            .repos
            .delivery
            .channel(&channel.name)
            .await?
            .unwrap_or(channel))
    }

    /// A user named by email or id.
    pub async fn find_user(&self, reference: &str) -> Result<Option<UserId>, DeliveryError> {
        if let Some(id) = UserId::parse(reference) {
            return Ok(self.repos.users.user_by_id(id).await?.map(|u| u.id));
        }
        let Ok(email) = Email::parse(reference) else {
            return Ok(None);
        };
        Ok(self
            .repos
            .users
            .user_by_email(email.as_str())
            .await?
            .map(|u| u.id))
    }
}

/// Events read from the log per query while catching up.
const CATCH_UP_BATCH: i64 = 500;

/// Where an event stream is: what it has sent, and how it gets the next one.
struct StreamState {
    repos: Repos,
    hub: Arc<EventHub>,
    user: UserId,
    /// The `seq` of the last event sent.
    position: i64,
    backlog: std::collections::VecDeque<LoggedEvent>,
    /// Whether the log holds nothing for the user past `backlog`, so the hub takes over.
    caught_up: bool,
    live: tokio::sync::broadcast::Receiver<Arc<HubEvent>>,
}

impl StreamState {
    async fn next(&mut self) -> Option<Result<LoggedEvent, DeliveryError>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.position = event.seq;
                return Some(Ok(event));
            }
            if !self.caught_up {
                let batch = self
                    .repos
                    .events
                    .events_for(self.user, self.position, CATCH_UP_BATCH)
                    .await;
                match batch {
                    Ok(batch) => {
                        self.caught_up = (batch.len() as i64) < CATCH_UP_BATCH;
                        self.backlog.extend(batch);
                        continue;
                    }
                    Err(e) => return Some(Err(e.into())),
                }
            }
            let received = tokio::select! {
                received = self.live.recv() => received,
                () = self.hub.stopped() => return None,
            };
            match received {
                // The user's own channel: every event on it is theirs.
                Ok(arrived) if arrived.event.seq > self.position => {
                    self.position = arrived.event.seq;
                    let mut event = arrived.event.clone();
                    event.audience = vec![self.user];
                    return Some(Ok(event));
                }
                Ok(_) => {}
                // Fell behind the hub: the log has what was missed.
                Err(RecvError::Lagged(_)) => self.caught_up = false,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl DeliveryService {
    /// The events whose audience includes `user`, in order: those after `since` from the log,
    /// then each as it happens. Without `since`, only events from now on. Resuming with the
    /// last `seq` received gives every later event once, across reconnects and restarts.
    pub async fn events(
        &self,
        user: UserId,
        since: Option<i64>,
    ) -> Result<
        impl futures_util::Stream<Item = Result<LoggedEvent, DeliveryError>> + Send + use<>,
        DeliveryError,
    > {
        // Subscribed before the log is read, so that nothing falls between the two.
        let live = self.hub.subscribe_user(user);
        let position = match since {
            Some(since) => since,
            None => self.repos.events.last_seq().await?,
        };
        let state = StreamState {
            repos: self.repos.clone(),
            hub: self.hub.clone(),
            user,
            position,
            backlog: std::collections::VecDeque::new(),
            caught_up: since.is_none(),
            live,
        };
        Ok(futures_util::stream::unfold(
            state,
            |mut state| async move { state.next().await.map(|item| (item, state)) },
        ))
    }
}

/// Whether `event`, from the recipient's own channel, put a note in the inbox `query` reads,
/// past `since`.
fn received_by(event: &LoggedEvent, query: &InboxQuery, since: i64) -> bool {
    let EventData::NoteReceived(received) = &event.data else {
        return false;
    };
    event.seq > since
        && query
            .sender
            .is_none_or(|sender| received.sender_id == sender.to_string())
}
