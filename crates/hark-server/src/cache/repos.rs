//! The repositories with the shared cache in front: the inbox and the newest note of a name
//! are read through it, and every change that could alter what they answer forgets the
//! entries of the users it touched once it has committed, before it answers.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hark_api::Role;
use sha2::{Digest, Sha256};

use super::{Lookup, SharedCache, touched_by};
use crate::db::{
    BeforeCommit, DbError, DeletedNote, DeliveryRepo, EffectsOf, EventLog, InsertOutcome, JobRepo,
    NewUser, NoteFilter, NoteInsert, NoteRepo, Repos, UserRepo,
};
use crate::domain::{
    Channel, Claim, Effects, Finish, Finished, InboxEntry, InboxQuery, JobRecord, Listened,
    LoggedEvent, Note, NoteId, Settled, Timestamp, User, UserId,
};

impl Repos {
    /// The same repositories with the inbox and name lookups served from `cache`.
    pub fn with_shared_cache(mut self, cache: Arc<SharedCache>) -> Repos {
        self.jobs = Arc::new(CachedJobs {
            inner: self.jobs,
            readers: self.delivery.clone(),
            cache: cache.clone(),
        });
        self.notes = Arc::new(CachedNotes {
            inner: self.notes,
            cache: cache.clone(),
        });
        self.delivery = Arc::new(CachedDelivery {
            inner: self.delivery,
            cache: cache.clone(),
        });
        self.events = Arc::new(CachedEvents {
            inner: self.events,
            cache: cache.clone(),
        });
        self.users = Arc::new(CachedUsers {
            inner: self.users,
            cache,
        });
        self
    }
}

/// Reads through the cache: a hit answers, a miss asks the database and stores its answer, an
/// unavailable cache leaves the database to answer alone.
async fn read_through<T, F>(
    cache: &Arc<SharedCache>,
    user: UserId,
    name: &str,
    query: F,
) -> Result<T, DbError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: Future<Output = Result<T, DbError>>,
{
    match cache.get(user, name).await {
        Lookup::Hit(value) => Ok(value),
        Lookup::Miss(stamp) => {
            let value = query.await?;
            cache.put(stamp, &value);
            Ok(value)
        }
        Lookup::Unavailable => query.await,
    }
}

/// The users a change's effects reach, gathered while the repository chooses them, so that
/// their entries are forgotten once the change has run (whether or not it reports success: it
/// may have committed).
#[derive(Default)]
struct Touched(Mutex<Vec<UserId>>);

impl Touched {
    /// `effects`, noting whom each choice reaches.
    fn watch<'a, T>(
        &'a self,
        effects: &'a EffectsOf<'_, T>,
    ) -> impl Fn(&T) -> Effects + Send + Sync + 'a {
        move |value: &T| {
            let caused = effects(value);
            let users = touched_by(&caused);
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(users);
            caused
        }
    }

    async fn forget(self, cache: &SharedCache) {
        cache
            .forget_users(self.0.into_inner().unwrap_or_else(|p| p.into_inner()))
            .await;
    }
}

/// Notes: the newest of a name read through the cache; uploads, deletions and failures forget.
pub struct CachedNotes {
    pub inner: Arc<dyn NoteRepo>,
    pub cache: Arc<SharedCache>,
}

#[async_trait]
impl NoteRepo for CachedNotes {
    async fn insert_notes(
        &self,
        notes: &[NoteInsert],
        durable: BeforeCommit,
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        let inserted = self.inner.insert_notes(notes, durable).await;
        let effects: Vec<&Effects> = notes.iter().map(|insert| &insert.effects).collect();
        self.cache.forget_effects(&effects).await;
        inserted
    }

    async fn note_for_viewer(&self, id: NoteId, viewer: UserId) -> Result<Option<Note>, DbError> {
        self.inner.note_for_viewer(id, viewer).await
    }

    async fn note_by_id(&self, id: NoteId) -> Result<Option<Note>, DbError> {
        self.inner.note_by_id(id).await
    }

    async fn newest_named(&self, viewer: UserId, name: &str) -> Result<Option<Note>, DbError> {
        let key = format!("named:{}", hex::encode(Sha256::digest(name)));
        let query = self.inner.newest_named(viewer, name);
        read_through(&self.cache, viewer, &key, query).await
    }

    async fn idempotent_result(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<(NoteId, String)>, DbError> {
        self.inner.idempotent_result(user, key).await
    }

    async fn list_notes(&self, filter: &NoteFilter) -> Result<Vec<Note>, DbError> {
        self.inner.list_notes(filter).await
    }

    async fn delete_note(
        &self,
        id: NoteId,
        owner: UserId,
        effects: &EffectsOf<'_, DeletedNote>,
    ) -> Result<Option<DeletedNote>, DbError> {
        let touched = Touched::default();
        let deleted = self
            .inner
            .delete_note(id, owner, &touched.watch(effects))
            .await;
        touched.forget(&self.cache).await;
        deleted
    }

    async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64, DbError> {
        self.inner.prune_idempotency_keys(before).await
    }

    async fn fail_notes_of_blob(
        &self,
        sha256: &str,
        reason: &str,
        effects: &EffectsOf<'_, Note>,
    ) -> Result<u64, DbError> {
        let failed = self.inner.fail_notes_of_blob(sha256, reason, effects).await;
        // Rare (a blob lost its bytes), and the notes' recipients are not at hand: start over.
        if !matches!(failed, Ok(0)) {
            self.cache.distrust_all();
        }
        failed
    }
}

/// Inboxes read through the cache; listens forget.
pub struct CachedDelivery {
    pub inner: Arc<dyn DeliveryRepo>,
    pub cache: Arc<SharedCache>,
}

#[async_trait]
impl DeliveryRepo for CachedDelivery {
    async fn create_channel(&self, name: &str, creator: UserId) -> Result<Channel, DbError> {
        self.inner.create_channel(name, creator).await
    }

    async fn channel(&self, name: &str) -> Result<Option<Channel>, DbError> {
        self.inner.channel(name).await
    }

    async fn channels_of(&self, user: UserId) -> Result<Vec<Channel>, DbError> {
        self.inner.channels_of(user).await
    }

    async fn add_member(&self, channel: &str, user: UserId) -> Result<bool, DbError> {
        self.inner.add_member(channel, user).await
    }

    async fn remove_member(&self, channel: &str, user: UserId) -> Result<bool, DbError> {
        self.inner.remove_member(channel, user).await
    }

    async fn inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, DbError> {
        let since = query.since.map_or_else(String::new, |s| s.to_string());
        let sender = query.sender.map_or_else(String::new, |s| s.to_string());
        let key = format!(
            "inbox:{since}:{sender}:{}:{}",
            query.unlistened, query.limit
        );
        read_through(&self.cache, query.recipient, &key, self.inner.inbox(query)).await
    }

    async fn inbox_position(&self, recipient: UserId) -> Result<i64, DbError> {
        self.inner.inbox_position(recipient).await
    }

    async fn readers_of(&self, note: NoteId) -> Result<Vec<UserId>, DbError> {
        self.inner.readers_of(note).await
    }

    async fn mark_listened(
        &self,
        note: NoteId,
        listener: UserId,
        effects: &EffectsOf<'_, Listened>,
    ) -> Result<Option<bool>, DbError> {
        let touched = Touched::default();
        let listened = self
            .inner
            .mark_listened(note, listener, &touched.watch(effects))
            .await;
        touched.forget(&self.cache).await;
        listened
    }
}

/// The job queue: processing changes a note's status and renditions, which its readers' inboxes
/// and name lookups show, so each step forgets the entries of everyone who may read the note.
pub struct CachedJobs {
    pub inner: Arc<dyn JobRepo>,
    pub readers: Arc<dyn DeliveryRepo>,
    pub cache: Arc<SharedCache>,
}

impl CachedJobs {
    async fn forget_readers(&self, note: NoteId) {
        match self.readers.readers_of(note).await {
            Ok(readers) => self.cache.forget_users(readers).await,
            Err(e) => {
                tracing::warn!(error = %e, %note, "reading a note's readers failed; the cache starts over");
                self.cache.distrust_all();
            }
        }
    }
}

#[async_trait]
impl JobRepo for CachedJobs {
    async fn claim_jobs(&self, lease_until: Timestamp) -> Result<Option<Claim>, DbError> {
        let claim = self.inner.claim_jobs(lease_until).await;
        if let Ok(Some(claim)) = &claim {
            self.forget_readers(claim.note.id).await;
        }
        claim
    }

    async fn extend_lease(&self, claim: &Claim, until: Timestamp) -> Result<bool, DbError> {
        self.inner.extend_lease(claim, until).await
    }

    async fn finish_jobs(
        &self,
        claim: &Claim,
        finish: &Finish,
        effects: &EffectsOf<'_, Settled>,
    ) -> Result<Finished, DbError> {
        let finished = self.inner.finish_jobs(claim, finish, effects).await;
        self.forget_readers(claim.note.id).await;
        finished
    }

    async fn jobs_of(&self, note: NoteId) -> Result<Vec<JobRecord>, DbError> {
        self.inner.jobs_of(note).await
    }

    async fn restart_jobs(&self, note: NoteId, owner: UserId) -> Result<bool, DbError> {
        let restarted = self.inner.restart_jobs(note, owner).await;
        self.forget_readers(note).await;
        restarted
    }

    async fn ask_correction(&self, note: NoteId, owner: UserId) -> Result<bool, DbError> {
        let asked = self.inner.ask_correction(note, owner).await;
        self.forget_readers(note).await;
        asked
    }

    async fn waveform(&self, note: NoteId) -> Result<Option<String>, DbError> {
        self.inner.waveform(note).await
    }

    async fn transcripts(
        &self,
        notes: &[NoteId],
        version: hark_api::TranscriptVersion,
    ) -> Result<Vec<(NoteId, crate::domain::StoredTranscript)>, DbError> {
        self.inner.transcripts(notes, version).await
    }

    async fn queue_depth(&self) -> Result<i64, DbError> {
        self.inner.queue_depth().await
    }
}

/// The event log: effects committed on their own (sending an existing note) forget.
pub struct CachedEvents {
    pub inner: Arc<dyn EventLog>,
    pub cache: Arc<SharedCache>,
}

#[async_trait]
impl EventLog for CachedEvents {
    async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<LoggedEvent>, DbError> {
        self.inner.events_after(seq, limit).await
    }

    async fn events_for(
        &self,
        user: UserId,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<LoggedEvent>, DbError> {
        self.inner.events_for(user, seq, limit).await
    }

    async fn last_seq(&self) -> Result<i64, DbError> {
        self.inner.last_seq().await
    }

    async fn append(&self, effects: &Effects) -> Result<(), DbError> {
        let appended = self.inner.append(effects).await;
        self.cache.forget_effects(&[effects]).await;
        appended
    }

    fn appends(&self) -> Arc<tokio::sync::Notify> {
        self.inner.appends()
    }
}

/// Users: deleting one deletes their notes, which forgets their readers' entries.
pub struct CachedUsers {
    pub inner: Arc<dyn UserRepo>,
    pub cache: Arc<SharedCache>,
}

#[async_trait]
impl UserRepo for CachedUsers {
    async fn create_user(&self, user: NewUser) -> Result<User, DbError> {
        self.inner.create_user(user).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
        self.inner.user_by_id(id).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
        self.inner.user_by_email(email).await
    }

    async fn list_users(&self) -> Result<Vec<User>, DbError> {
        self.inner.list_users().await
    }

    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<bool, DbError> {
        self.inner.set_password(id, password_hash).await
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<bool, DbError> {
        self.inner.set_role(id, role).await
    }

    async fn delete_user(
        &self,
        id: UserId,
        effects: &EffectsOf<'_, DeletedNote>,
    ) -> Result<bool, DbError> {
        let touched = Touched::default();
        let deleted = self.inner.delete_user(id, &touched.watch(effects)).await;
        touched.forget(&self.cache).await;
        deleted
    }
}
