//! The metadata port: small repository traits per aggregate, and the backend chosen from the
//! database URL. The SQL both backends share is written once in `sql/`, generic over the
//! backend; `sqlite.rs` and `postgres.rs` hold what differs: connecting, pragmas, migrations
//! and the statements only one engine has.
//!
//! Repositories decide nothing: a change's effects (events and their audience) are chosen by
//! the use case and committed here in the change's own transaction.

mod cache;
pub mod postgres;

pub use cache::announce_change;
mod rows;
mod sql;
pub mod sqlite;

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use hark_api::{NoteStatus, Role, Sort};

use crate::domain::ids::{ApiKeyId, PushSubscriptionId, WebhookId};
use crate::domain::{
    Attempt, AttemptRecord, Channel, Claim, ClaimedDelivery, ClaimedPush, Effects, Finish,
    Finished, InboxEntry, InboxQuery, JobRecord, Listened, LoggedEvent, NewNote, Note, NoteId,
    PushAttempt, PushSubscription, Settled, Timestamp, User, UserId, Webhook,
};

pub use postgres::PostgresRepo;
pub use sql::SqlRepo;
pub use sqlite::SqliteRepo;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row could not be read back into the domain (an id or enum that does not parse).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A row the write refers to does not exist: a foreign key refused it.
    #[error("missing reference: {0}")]
    MissingReference(String),
    /// The transaction a note was committed in failed as a whole (see `insert_notes`).
    #[error("{0}")]
    Batch(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::Conflict(_))
    }
}

/// The effects a change causes, chosen by the use case once the repository knows what the
/// change touched (a deleted note's recipients, say).
pub type EffectsOf<'a, T> = dyn Fn(&T) -> Effects + Send + Sync + 'a;

/// A user about to be created.
pub struct NewUser {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// A personal API key about to be stored (hashed).
pub struct NewApiKeyRecord {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: Timestamp,
}

/// A stored API key, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// What `insert_note` did.
#[derive(Debug)]
pub enum InsertOutcome {
    Inserted {
        note: Box<Note>,
        /// A collector was deleting the blob's bytes when this note took its reference: the
        /// caller MUST wait for that deletion to end and then write the bytes again.
        blob_deleting: bool,
    },
    /// The idempotency key was already used; this is the note it produced and that note's bytes.
    Replayed { note_id: NoteId, sha256: String },
}

/// What a batch's transaction waits for before it commits: its blobs' bytes made durable,
/// which runs while the transaction's statements do.
pub type BeforeCommit = BoxFuture<'static, Result<(), DbError>>;

/// A note to commit, with what its commit causes.
#[derive(Debug, Clone)]
pub struct NoteInsert {
    pub note: NewNote,
    pub idempotency_key: Option<String>,
    pub effects: Effects,
}

/// A note that was just deleted, and who could see it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedNote {
    pub id: NoteId,
    pub owner_id: UserId,
    pub recipients: Vec<UserId>,
}

/// The sort key of the last item of a page: the next page starts strictly after it.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Created(i64),
    Duration(f64),
    Name(String),
}

/// A note list request, already validated.
#[derive(Debug, Clone)]
pub struct NoteFilter {
    pub viewer: UserId,
    pub max_duration: Option<f64>,
    pub min_duration: Option<f64>,
    pub name_contains: Option<String>,
    pub sender: Option<UserId>,
    pub channel: Option<String>,
    pub status: Option<NoteStatus>,
    pub format: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    /// Words (folded by `search_words`) that must all occur in the original transcript; a
    /// search with no words matches nothing.
    pub transcript_words: Option<Vec<String>>,
    /// Every order ends with the id, so it is total.
    pub sort: Sort,
    pub after: Option<(SortKey, NoteId)>,
    pub limit: u32,
}

impl NoteFilter {
    /// Every note `viewer` can see, in the default order.
    pub fn all_for(viewer: UserId, limit: u32) -> NoteFilter {
        NoteFilter {
            viewer,
            max_duration: None,
            min_duration: None,
            name_contains: None,
            sender: None,
            channel: None,
            status: None,
            format: None,
            created_after: None,
            created_before: None,
            transcript_words: None,
            sort: Sort::CreatedAtDesc,
            after: None,
            limit,
        }
    }
}

#[async_trait]
pub trait UserRepo: Send + Sync {
    /// MUST fail with `Conflict` when the email is taken.
    async fn create_user(&self, user: NewUser) -> Result<User, DbError>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError>;
    /// `email` MUST already be normalised (`Email::parse`).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError>;
    async fn list_users(&self) -> Result<Vec<User>, DbError>;
    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<bool, DbError>;
    async fn set_role(&self, id: UserId, role: Role) -> Result<bool, DbError>;
    /// Deletes the user with their API keys and notes (releasing their blobs), committing
    /// `effects` of every deleted note in the same transaction. `false` when no such user.
    async fn delete_user(
        &self,
        id: UserId,
        effects: &EffectsOf<'_, DeletedNote>,
    ) -> Result<bool, DbError>;
}

#[async_trait]
pub trait ApiKeyRepo: Send + Sync {
    async fn create_api_key(&self, key: NewApiKeyRecord) -> Result<ApiKeyRecord, DbError>;
    async fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRecord>, DbError>;
    /// `false` when the key does not exist or is someone else's.
    async fn delete_api_key(&self, user: UserId, id: ApiKeyId) -> Result<bool, DbError>;
    /// The key's owner, recording the use (at most once a minute).
    async fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, DbError>;
}

/// A browser session to record: its secret's hash, never the secret.
pub struct NewSession {
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait SessionRepo: Send + Sync {
    /// Records a session, and drops every expired one.
    async fn create_session(&self, session: NewSession) -> Result<(), DbError>;
    /// The user of a session that has not expired by `now`.
    async fn user_by_session(&self, id_hash: &str, now: Timestamp)
    -> Result<Option<User>, DbError>;
    async fn delete_session(&self, id_hash: &str) -> Result<(), DbError>;
    async fn delete_sessions_of(&self, user: UserId) -> Result<(), DbError>;
}

#[async_trait]
pub trait NoteRepo: Send + Sync {
    /// In one transaction: takes a reference on the blob (creating its row if new), inserts the
    /// note, records the idempotency key and commits `effects`. When the key was already used
    /// by this user, MUST change nothing and answer `Replayed`.
    async fn insert_note(
        &self,
        note: &NewNote,
        idempotency_key: Option<&str>,
        effects: &Effects,
    ) -> Result<InsertOutcome, DbError> {
        let insert = NoteInsert {
            note: note.clone(),
            idempotency_key: idempotency_key.map(str::to_owned),
            effects: effects.clone(),
        };
        let mut outcomes = self
            .insert_notes(std::slice::from_ref(&insert), Box::pin(async { Ok(()) }))
            .await?;
        outcomes
            .pop()
            .unwrap_or_else(|| Err(DbError::Corrupt("a commit without an outcome".into())))
    }
    /// Commits each note as `insert_note` does, all in one transaction: one durable write for
    /// them all. A note that fails MUST be rolled back alone, its error being its outcome, and
    /// leave the others to commit; an error of the transaction itself fails them all. Outcomes
    /// come in the order of `notes`. The transaction MUST NOT commit before `durable` has
    /// succeeded, and MUST commit nothing if it fails.
    async fn insert_notes(
        &self,
        notes: &[NoteInsert],
        durable: BeforeCommit,
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError>;
    /// The note if `viewer` owns it or received it; `None` otherwise, exactly as if missing.
    async fn note_for_viewer(&self, id: NoteId, viewer: UserId) -> Result<Option<Note>, DbError>;
    /// The note whatever its owner: for signed links and scoped service tokens.
    async fn note_by_id(&self, id: NoteId) -> Result<Option<Note>, DbError>;
    /// The newest note of that name `viewer` may see.
    async fn newest_named(&self, viewer: UserId, name: &str) -> Result<Option<Note>, DbError>;
    /// The note and bytes a user's idempotency key produced.
    async fn idempotent_result(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<(NoteId, String)>, DbError>;
    /// At most `filter.limit` notes, in the filter's order, strictly after its cursor.
    async fn list_notes(&self, filter: &NoteFilter) -> Result<Vec<Note>, DbError>;
    /// Deletes an owned note with its inbox entries and releases its blob, committing
    /// `effects` of the deleted note in the same transaction. `None` when the owner has no
    /// such note.
    async fn delete_note(
        &self,
        id: NoteId,
        owner: UserId,
        effects: &EffectsOf<'_, DeletedNote>,
    ) -> Result<Option<DeletedNote>, DbError>;
    /// Forgets idempotency keys recorded before `before`; returns how many.
    async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64, DbError>;
    /// Marks every note stored in that blob as failed with `reason`, committing `effects` of
    /// each; returns how many.
    async fn fail_notes_of_blob(
        &self,
        sha256: &str,
        reason: &str,
        effects: &EffectsOf<'_, Note>,
    ) -> Result<u64, DbError>;
}

/// The blobs' rows: reference counts, and the deletion protocol that lets a blob's bytes be
/// removed outside any database transaction. A collector first marks the blob as being deleted
/// (committed), then removes the bytes, then finishes; an upload that takes a reference on a
/// marked blob learns it (`InsertOutcome::Inserted::blob_deleting`), waits for the mark to
/// clear and writes the bytes again.
#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// Blobs no note references since before `cutoff`, oldest first.
    async fn orphaned_blobs(&self, cutoff: Timestamp, limit: i64) -> Result<Vec<String>, DbError>;
    /// Marks an unreferenced blob as being deleted. `false`, marking nothing, when it is
    /// referenced or has no row.
    async fn begin_blob_deletion(&self, sha256: &str) -> Result<bool, DbError>;
    /// Marks a blob that no row knows (bytes an interrupted upload left) as being deleted, with
    /// a placeholder row. `false`, marking nothing, when a row exists by now.
    async fn begin_unknown_blob_deletion(&self, sha256: &str) -> Result<bool, DbError>;
    /// Ends a deletion once the bytes are gone: the row goes if the blob is still
    /// unreferenced; otherwise (an upload revived it) only the mark is cleared.
    async fn finish_blob_deletion(&self, sha256: &str) -> Result<(), DbError>;
    /// Whether a deletion of the blob is under way.
    async fn blob_deleting(&self, sha256: &str) -> Result<bool, DbError>;
    /// Which of these blobs have a row (one query for the whole batch).
    async fn known_blobs(&self, sha256s: &[String]) -> Result<HashSet<String>, DbError>;
    /// Referenced blobs whose row is older than `created_before`, in key order after `after`:
    /// for the reconciler's walk (a younger row may belong to an upload still writing its bytes).
    async fn referenced_blobs(
        &self,
        after: &str,
        created_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<String>, DbError>;
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// Up to `limit` events after `seq`, in order. MUST never skip one: an event that commits
    /// later never has a lower `seq` than one already readable.
    async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<LoggedEvent>, DbError>;
    /// Up to `limit` events after `seq` whose audience includes `user`, in order (each with
    /// `user` alone as its audience).
    async fn events_for(
        &self,
        user: UserId,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<LoggedEvent>, DbError>;
    /// The `seq` of the newest event; 0 when the log is empty.
    async fn last_seq(&self) -> Result<i64, DbError>;
    /// Commits `effects` on their own (changes that touch nothing but the log).
    async fn append(&self, effects: &Effects) -> Result<(), DbError>;
    /// Signalled when events may have been appended: by a commit of this process, or of
    /// another on a shared database. One permit is kept when nobody waits, so a single
    /// follower never misses one; it may be spurious.
    fn appends(&self) -> Arc<tokio::sync::Notify>;
}

/// Channels and inboxes. Deliveries themselves are effects (`Effects::delivery`), committed
/// with the change that sends the note.
#[async_trait]
pub trait DeliveryRepo: Send + Sync {
    /// MUST fail with `Conflict` when the name is taken.
    async fn create_channel(&self, name: &str, creator: UserId) -> Result<Channel, DbError>;
    async fn channel(&self, name: &str) -> Result<Option<Channel>, DbError>;
    /// The channels `user` created or belongs to, by name.
    async fn channels_of(&self, user: UserId) -> Result<Vec<Channel>, DbError>;
    /// `false` when the user already is a member.
    async fn add_member(&self, channel: &str, user: UserId) -> Result<bool, DbError>;
    /// `false` when the user is not a member.
    async fn remove_member(&self, channel: &str, user: UserId) -> Result<bool, DbError>;
    /// Entries of one inbox: with `since`, the oldest `limit` delivered after it; without,
    /// the newest `limit`. Newest first either way.
    async fn inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, DbError>;
    /// The position of the newest entry of `recipient`'s inbox; 0 when it is empty.
    async fn inbox_position(&self, recipient: UserId) -> Result<i64, DbError>;
    /// Everyone who may read the note: its owner and its recipients (none when it is gone).
    async fn readers_of(&self, note: NoteId) -> Result<Vec<UserId>, DbError>;
    /// Records the first listen of a recipient, committing `effects` of it in the same
    /// transaction. `None` when `listener` did not receive the note; `Some(false)` when they
    /// had listened already (nothing changes).
    async fn mark_listened(
        &self,
        note: NoteId,
        listener: UserId,
        effects: &EffectsOf<'_, Listened>,
    ) -> Result<Option<bool>, DbError>;
}

/// The processing queue: jobs claimed under a lease by workers on any node, and what they
/// record. A claim takes every claimable job of one note at once, so one pass over its audio
/// serves all of them.
#[async_trait]
pub trait JobRepo: Send + Sync {
    /// Claims the claimable jobs (queued and due, or running with an expired lease) of the note
    /// whose job has waited longest, until `lease_until`; each claim counts as an attempt. A
    /// `pending` note becomes `processing`. `None` when nothing is claimable. A job is never
    /// held by two claims at once.
    async fn claim_jobs(&self, lease_until: Timestamp) -> Result<Option<Claim>, DbError>;
    /// Extends a claim's lease; `false` when the claim holds no job any more.
    async fn extend_lease(&self, claim: &Claim, until: Timestamp) -> Result<bool, DbError>;
    /// Records the outcomes and outputs of a claim in one transaction, for the steps it still
    /// holds; when that settles the note (every job final), sets its status and commits
    /// `effects` of the change.
    async fn finish_jobs(
        &self,
        claim: &Claim,
        finish: &Finish,
        effects: &EffectsOf<'_, Settled>,
    ) -> Result<Finished, DbError>;
    /// The note's jobs, in pipeline order.
    async fn jobs_of(&self, note: NoteId) -> Result<Vec<JobRecord>, DbError>;
    /// Queues every step of an owned note again (a new run: attempts from zero, leases
    /// dropped, so a worker still busy with the old run records nothing); the note is
    /// `pending` again. `false` when the owner has no such note.
    async fn restart_jobs(&self, note: NoteId, owner: UserId) -> Result<bool, DbError>;
    /// Asks for an owned note's correction: it is marked as asked, and `correct` (with
    /// `transcribe`, unless that is done) is queued as a new run of those steps; the note is
    /// `pending` until they settle. `false` when the owner has no such note.
    async fn ask_correction(&self, note: NoteId, owner: UserId) -> Result<bool, DbError>;
    /// The waveform's JSON, once made.
    async fn waveform(&self, note: NoteId) -> Result<Option<String>, DbError>;
    /// The transcripts of one version that these notes have, each with its note.
    async fn transcripts(
        &self,
        notes: &[NoteId],
        version: hark_api::TranscriptVersion,
    ) -> Result<Vec<(NoteId, crate::domain::StoredTranscript)>, DbError>;
    /// Jobs waiting to run (queued, due or not).
    async fn queue_depth(&self) -> Result<i64, DbError>;
}

/// What one pass of a consumer over the event log did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dispatched {
    /// Events read; fewer than asked means the log's end was reached.
    pub events: u64,
    /// Deliveries made of them.
    pub deliveries: u64,
}

/// Webhooks, and the delivery of events to them. Deliveries are made from the event log by a
/// consumer with a durable position, so an event committed while no sender runs still reaches
/// every webhook it is for; each is then claimed under a lease, one event of a webhook at a
/// time, in `seq` order.
#[async_trait]
pub trait WebhookRepo: Send + Sync {
    /// Stores a webhook with its signing secret. It MUST get exactly the events that commit
    /// after it. Fails with `MissingReference` when the owner does not exist.
    async fn create_webhook(&self, webhook: &Webhook, secret: &str) -> Result<(), DbError>;
    /// The owner's webhooks, oldest first.
    async fn webhooks_of(&self, owner: UserId) -> Result<Vec<Webhook>, DbError>;
    /// The webhook if `owner` owns it; `None` otherwise, exactly as if missing.
    async fn webhook(&self, id: WebhookId, owner: UserId) -> Result<Option<Webhook>, DbError>;
    /// Deletes an owned webhook with its deliveries and their attempts. `false` when the owner
    /// has no such webhook.
    async fn delete_webhook(&self, id: WebhookId, owner: UserId) -> Result<bool, DbError>;
    /// The webhook's newest `limit` attempts, newest first.
    async fn attempts(&self, webhook: WebhookId, limit: u32)
    -> Result<Vec<AttemptRecord>, DbError>;
    /// Reads up to `limit` events after the position of `consumer` (a new consumer starts at
    /// the log's end) and, in one transaction, makes a pending delivery of each to every
    /// webhook that wants its type and whose owner is in its audience, and moves the position
    /// past them. When they make no delivery and are fewer than `limit`, it may leave the
    /// position where it is (the next pass reads them again). MUST make no delivery twice,
    /// however often it runs over the same events, and MUST be safe to run from several
    /// processes at once.
    async fn dispatch_events(&self, consumer: &str, limit: i64) -> Result<Dispatched, DbError>;
    /// Makes the pending deliveries of the one event with this `seq` and `id`, exactly as
    /// `dispatch_events` does for each event it reads, moving no position: for events that
    /// come from elsewhere (the broker). Answers how many it made: none when they exist
    /// already (an event handled twice) or the log has no such event.
    async fn dispatch_event(&self, seq: i64, id: &str) -> Result<u64, DbError>;
    /// Claims up to `limit` due deliveries until `lease_until`, each counting as an attempt.
    /// A delivery is claimed only when it is the oldest pending one of its webhook and no
    /// unexpired lease holds it: never by two claims at once, never before an earlier one of
    /// its webhook is delivered or dead.
    async fn claim_deliveries(
        &self,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, DbError>;
    /// Records an attempt and moves its delivery on (delivered, pending until a retry, or
    /// dead), releasing the claim. `false`, recording nothing, when the claim no longer holds
    /// the delivery (its webhook was deleted, or the lease expired and another claim took it).
    async fn record_attempt(
        &self,
        claim: &ClaimedDelivery,
        attempt: &Attempt,
    ) -> Result<bool, DbError>;
    /// When a delivery may next become claimable (a retry falls due, a lease expires); `None`
    /// when nothing is pending.
    async fn next_delivery_due(&self) -> Result<Option<Timestamp>, DbError>;
}

/// Browsers' push subscriptions, and the push messages of events to them. Messages are made
/// from the event log by a consumer with a durable position, as webhook deliveries are, and
/// claimed under a lease; a subscription's messages need not go out in order (a push service
/// delivers them as it likes anyway).
#[async_trait]
pub trait PushRepo: Send + Sync {
    /// Stores a subscription, which MUST get exactly the events that commit after it. When the
    /// owner has one with the same endpoint already, that one is kept with the new keys, and
    /// returned. Fails with `MissingReference` when the owner does not exist.
    async fn save_push_subscription(
        &self,
        subscription: &PushSubscription,
    ) -> Result<PushSubscription, DbError>;
    /// The owner's subscriptions, oldest first.
    async fn push_subscriptions_of(&self, owner: UserId) -> Result<Vec<PushSubscription>, DbError>;
    /// Deletes an owned subscription with its messages. `false` when the owner has no such
    /// subscription.
    async fn delete_push_subscription(
        &self,
        id: PushSubscriptionId,
        owner: UserId,
    ) -> Result<bool, DbError>;
    /// As `WebhookRepo::dispatch_events`, for push: a pending message of each event of the
    /// `types` to every subscription of each user in its audience. MUST make no message twice.
    async fn dispatch_push(
        &self,
        consumer: &str,
        types: &[hark_api::EventType],
        limit: i64,
    ) -> Result<Dispatched, DbError>;
    /// As `WebhookRepo::dispatch_event`, for push: the pending messages of the one event with
    /// this `seq` and `id`, when it is of the `types`, exactly as `dispatch_push` makes them,
    /// moving no position. Answers how many it made.
    async fn dispatch_push_event(
        &self,
        types: &[hark_api::EventType],
        seq: i64,
        id: &str,
    ) -> Result<u64, DbError>;
    /// Claims up to `limit` due messages until `lease_until`, each counting as an attempt;
    /// never one that an unexpired lease holds.
    async fn claim_push_messages(
        &self,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedPush>, DbError>;
    /// Records an attempt: the message moves on (delivered, pending until a retry, dead), or,
    /// when the subscription is gone, the subscription is deleted with its messages. `false`,
    /// recording nothing, when the claim no longer holds the message.
    async fn record_push_attempt(
        &self,
        claim: &ClaimedPush,
        attempt: &PushAttempt,
    ) -> Result<bool, DbError>;
    /// When a message may next become claimable; `None` when nothing is pending.
    async fn next_push_due(&self) -> Result<Option<Timestamp>, DbError>;
}

/// Positions in the event log that one process at a time may move: a consumer that must not
/// run twice at once (the broker relay, which publishes in order) holds its position under a
/// lease, taken when free or expired and renewed by its holder as it moves on. Times are the
/// callers' clocks: leases assume the nodes' clocks agree to well within a lease.
#[async_trait]
pub trait PositionLeases: Send + Sync {
    /// The consumer's position, creating it at the log's end if it has none.
    async fn open_position(&self, consumer: &str) -> Result<i64, DbError>;
    /// Takes or renews the lease on the consumer's position for `owner` until `until`, when
    /// nobody holds it, its lease expired, or `owner` holds it already; answers the position.
    /// `None` when another owner holds an unexpired lease. Creates the position at the log's
    /// end if it has none.
    async fn lease_position(
        &self,
        consumer: &str,
        owner: &str,
        until: Timestamp,
    ) -> Result<Option<i64>, DbError>;
    /// Moves the position to `seq` and renews the lease until `until`, only while `owner`
    /// holds it. `false`, changing nothing, once another owner took it.
    async fn advance_position(
        &self,
        consumer: &str,
        owner: &str,
        seq: i64,
        until: Timestamp,
    ) -> Result<bool, DbError>;
    /// Lets go of `owner`'s lease, so another process may take the position at once.
    async fn release_position(&self, consumer: &str, owner: &str) -> Result<(), DbError>;
}

#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> Result<(), DbError>;
}

/// The repositories, as chosen once at start-up.
#[derive(Clone)]
pub struct Repos {
    pub users: Arc<dyn UserRepo>,
    pub api_keys: Arc<dyn ApiKeyRepo>,
    pub sessions: Arc<dyn SessionRepo>,
    pub notes: Arc<dyn NoteRepo>,
    pub blobs: Arc<dyn BlobIndex>,
    pub events: Arc<dyn EventLog>,
    pub jobs: Arc<dyn JobRepo>,
    pub delivery: Arc<dyn DeliveryRepo>,
    pub webhooks: Arc<dyn WebhookRepo>,
    pub push: Arc<dyn PushRepo>,
    pub positions: Arc<dyn PositionLeases>,
    pub health: Arc<dyn Health>,
}

impl Repos {
    /// Every repository from one backend that implements them all.
    pub fn from_backend<B>(backend: B) -> Repos
    where
        B: UserRepo
            + ApiKeyRepo
            + SessionRepo
            + NoteRepo
            + BlobIndex
            + EventLog
            + JobRepo
            + DeliveryRepo
            + WebhookRepo
            + PushRepo
            + PositionLeases
            + Health
            + 'static,
    {
        let backend = Arc::new(backend);
        Repos {
            users: backend.clone(),
            api_keys: backend.clone(),
            sessions: backend.clone(),
            notes: backend.clone(),
            blobs: backend.clone(),
            events: backend.clone(),
            jobs: backend.clone(),
            delivery: backend.clone(),
            webhooks: backend.clone(),
            push: backend.clone(),
            positions: backend.clone(),
            health: backend,
        }
    }
}

impl Repos {
    /// The same repositories with notes read by id kept in memory. Only for a database one
    /// server alone serves (see [`exclusive`]): the cache learns of the changes made here, and
    /// of those announced in `data_dir` by other processes (see [`announce_change`]).
    pub fn with_note_cache(mut self, data_dir: &Path) -> Repos {
        let cache = Arc::new(cache::NoteCache::new(data_dir));
        self.notes = Arc::new(cache::CachedNotes {
            inner: self.notes,
            cache: cache.clone(),
        });
        self.users = Arc::new(cache::CachedUsers {
            inner: self.users,
            cache: cache.clone(),
        });
        self.jobs = Arc::new(cache::CachedJobs {
            inner: self.jobs,
            cache,
        });
        self
    }
}

/// Whether the database at `url` belongs to the data directory `data_dir` alone: a SQLite file
/// inside it, which the server's lock on that directory keeps to one server.
pub fn exclusive(url: &str, data_dir: &Path) -> bool {
    if !url.starts_with("sqlite:") {
        return false;
    }
    let Ok(options) = sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return false;
    };
    let (Ok(file), Ok(dir)) = (
        options.get_filename().canonicalize(),
        data_dir.canonicalize(),
    ) else {
        return false;
    };
    file.starts_with(dir)
}

/// Connects to the database the URL names (`sqlite:` or `postgres:`), running the migrations
/// when `migrate` is set.
pub async fn connect(url: &str, migrate: bool) -> Result<Repos, DbError> {
    if url.starts_with("sqlite:") {
        Ok(Repos::from_backend(sqlite::connect(url, migrate).await?))
    } else {
        Ok(Repos::from_backend(postgres::connect(url, migrate).await?))
    }
}
