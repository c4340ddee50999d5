//! Notes kept in memory for the reads that serve them (a download checks the caller's access to
//! the note on every request), in front of the repositories. Only for a database one server
//! alone serves (see [`crate::db::exclusive`]): every change that could make an entry stale
//! goes through these wrappers, which forget the entry once the change has committed and before
//! it returns, so a deleted note is never served again. The one other process that changes
//! notes, the command line's `hark user delete`, says so in a file the cache checks before
//! every read (see [`announce_change`]).
//!
//! A read that raced with a change must not put back what the change removed: each change bumps
//! a generation, and a read stores its result only if no change happened since it began.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use hark_api::Role;

use super::{
    BeforeCommit, DbError, DeletedNote, EffectsOf, InsertOutcome, JobRepo, NewUser, NoteFilter,
    NoteInsert, NoteRepo, UserRepo,
};
use crate::domain::{
    Claim, Finish, Finished, JobRecord, Note, NoteId, Settled, Timestamp, User, UserId,
};

/// Notes kept at most; past that, an arbitrary one makes room.
const CAPACITY: usize = 10_000;

/// A cached note and the users other than its owner who were found to have received it.
struct Entry {
    note: Note,
    recipients: Vec<UserId>,
}

#[derive(Default)]
struct Notes {
    entries: HashMap<NoteId, Entry>,
    generation: u64,
    /// The length of the changes file when last looked at.
    seen: u64,
}

/// The file in the data directory that processes beside the server append a byte to when they
/// change notes: a stat of it costs far less than a query.
const CHANGES_FILE: &str = "notes.changes";

pub struct NoteCache {
    notes: Mutex<Notes>,
    changes: PathBuf,
}

/// Tells a server on `data_dir` that notes changed in its database behind its back (after the
/// change has committed): it forgets what it keeps in memory before its next read.
pub fn announce_change(data_dir: &Path) -> std::io::Result<()> {
    let mut changes = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(CHANGES_FILE))?;
    changes.write_all(b".")
}

/// Who reads: a user (their own and received notes) or anyone (a service, a signed link).
#[derive(Clone, Copy)]
enum Reader {
    User(UserId),
    Anyone,
}

impl NoteCache {
    pub fn new(data_dir: &Path) -> NoteCache {
        let changes = data_dir.join(CHANGES_FILE);
        let notes = Notes {
            seen: length(&changes),
            ..Notes::default()
        };
        NoteCache {
            notes: Mutex::new(notes),
            changes,
        }
    }

    fn notes(&self) -> MutexGuard<'_, Notes> {
        // Every update leaves the map whole, so a panic elsewhere cannot poison its meaning.
        self.notes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The note if cached and known to be readable by `reader`; otherwise the generation that
    /// a later `store` must still find.
    fn lookup(&self, id: NoteId, reader: Reader) -> Result<Note, u64> {
        let announced = length(&self.changes);
        let mut notes = self.notes();
        // Another process announced a change since the last look: forget everything, under
        // the same lock as the read, so no reader serves what the change removed.
        if notes.seen != announced {
            notes.seen = announced;
            notes.generation += 1;
            notes.entries.clear();
        }
        let readable = notes.entries.get(&id).filter(|e| match reader {
            Reader::Anyone => true,
            Reader::User(user) => e.note.owner_id == user || e.recipients.contains(&user),
        });
        readable.map(|e| e.note.clone()).ok_or(notes.generation)
    }

    fn store(&self, generation: u64, note: &Note, reader: Reader) {
        let mut notes = self.notes();
        if notes.generation != generation {
            return;
        }
        if notes.entries.len() >= CAPACITY && !notes.entries.contains_key(&note.id) {
            let victim = notes.entries.keys().next().copied();
            if let Some(victim) = victim {
                notes.entries.remove(&victim);
            }
        }
        let entry = notes.entries.entry(note.id).or_insert_with(|| Entry {
            note: note.clone(),
            recipients: Vec::new(),
        });
        if let Reader::User(user) = reader
            && user != entry.note.owner_id
            && !entry.recipients.contains(&user)
        {
            entry.recipients.push(user);
        }
    }

    fn forget(&self, id: NoteId) {
        let mut notes = self.notes();
        notes.generation += 1;
        notes.entries.remove(&id);
    }

    fn clear(&self) {
        let mut notes = self.notes();
        notes.generation += 1;
        notes.entries.clear();
    }

    async fn read<F, Q>(
        &self,
        id: NoteId,
        reader: Reader,
        query: Q,
    ) -> Result<Option<Note>, DbError>
    where
        Q: FnOnce() -> F,
        F: Future<Output = Result<Option<Note>, DbError>>,
    {
        let generation = match self.lookup(id, reader) {
            Ok(note) => return Ok(Some(note)),
            Err(generation) => generation,
        };
        let note = query().await?;
        if let Some(note) = &note {
            self.store(generation, note, reader);
        }
        Ok(note)
    }
}

fn length(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The notes repository with reads by id served from the cache.
pub struct CachedNotes {
    pub inner: Arc<dyn NoteRepo>,
    pub cache: Arc<NoteCache>,
}

#[async_trait]
impl NoteRepo for CachedNotes {
    async fn insert_notes(
        &self,
        notes: &[NoteInsert],
        durable: BeforeCommit,
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        self.inner.insert_notes(notes, durable).await
    }

    async fn note_for_viewer(&self, id: NoteId, viewer: UserId) -> Result<Option<Note>, DbError> {
        let query = || self.inner.note_for_viewer(id, viewer);
        self.cache.read(id, Reader::User(viewer), query).await
    }

    async fn note_by_id(&self, id: NoteId) -> Result<Option<Note>, DbError> {
        let query = || self.inner.note_by_id(id);
        self.cache.read(id, Reader::Anyone, query).await
    }

    async fn newest_named(&self, viewer: UserId, name: &str) -> Result<Option<Note>, DbError> {
        self.inner.newest_named(viewer, name).await
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
        let deleted = self.inner.delete_note(id, owner, effects).await;
        self.cache.forget(id);
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
        self.cache.clear();
        failed
    }
}

/// The users repository, forgetting cached notes when a user (and so their notes and inbox)
/// is deleted.
pub struct CachedUsers {
    pub inner: Arc<dyn UserRepo>,
    pub cache: Arc<NoteCache>,
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
        let deleted = self.inner.delete_user(id, effects).await;
        self.cache.clear();
        deleted
    }
}

/// The job queue, forgetting a cached note when processing changes it.
pub struct CachedJobs {
    pub inner: Arc<dyn JobRepo>,
    pub cache: Arc<NoteCache>,
}

#[async_trait]
impl JobRepo for CachedJobs {
    async fn claim_jobs(&self, lease_until: Timestamp) -> Result<Option<Claim>, DbError> {
        let claim = self.inner.claim_jobs(lease_until).await;
        if let Ok(Some(claim)) = &claim {
            self.cache.forget(claim.note.id);
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
        self.cache.forget(claim.note.id);
        finished
    }

    async fn jobs_of(&self, note: NoteId) -> Result<Vec<JobRecord>, DbError> {
        self.inner.jobs_of(note).await
    }

    async fn restart_jobs(&self, note: NoteId, owner: UserId) -> Result<bool, DbError> {
        let restarted = self.inner.restart_jobs(note, owner).await;
        self.cache.forget(note);
        restarted
    }

    async fn ask_correction(&self, note: NoteId, owner: UserId) -> Result<bool, DbError> {
        let asked = self.inner.ask_correction(note, owner).await;
        self.cache.forget(note);
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
