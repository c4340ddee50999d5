//! The metadata port: small repository traits per aggregate, and the backend chosen from the
//! database URL. Both backends share their SQL (see `sql.rs`); each file holds only what differs:
//! connecting, pragmas and migrations.

mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use hark_api::Role;

use crate::domain::event::Event;
use crate::domain::ids::ApiKeyId;
use crate::domain::{NewNote, Note, NoteId, Timestamp, User, UserId};

pub use postgres::PostgresRepo;
pub use sqlite::SqliteRepo;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row could not be read back into the domain (an id or enum that does not parse).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("removing the blob failed: {0}")]
    BlobRemoval(String),
}

impl DbError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::Conflict(_))
    }
}

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
#[derive(Debug, Clone)]
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
    Inserted(Box<Note>),
    /// The idempotency key was already used; this is the note it produced and that note's bytes.
    Replayed {
        note_id: NoteId,
        sha256: String,
    },
}

/// Orders a note list can take. Every order ends with the id, so it is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteSort {
    CreatedAsc,
    CreatedDesc,
    DurationAsc,
    DurationDesc,
    NameAsc,
    NameDesc,
}

impl NoteSort {
    pub fn parse(s: &str) -> Option<NoteSort> {
        Some(match s {
            "created_at" => Self::CreatedAsc,
            "-created_at" => Self::CreatedDesc,
            "duration" => Self::DurationAsc,
            "-duration" => Self::DurationDesc,
            "name" => Self::NameAsc,
            "-name" => Self::NameDesc,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAsc => "created_at",
            Self::CreatedDesc => "-created_at",
            Self::DurationAsc => "duration",
            Self::DurationDesc => "-duration",
            Self::NameAsc => "name",
            Self::NameDesc => "-name",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::CreatedAsc | Self::CreatedDesc => "created_at",
            Self::DurationAsc | Self::DurationDesc => "duration_seconds",
            Self::NameAsc | Self::NameDesc => "name",
        }
    }

    fn descending(self) -> bool {
        matches!(
            self,
            Self::CreatedDesc | Self::DurationDesc | Self::NameDesc
        )
    }
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
    pub status: Option<String>,
    pub format: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub sort: NoteSort,
    pub after: Option<(SortKey, NoteId)>,
    pub limit: u32,
}

/// A future that removes a blob's bytes; run by `BlobIndex::collect_blob` inside its transaction.
pub type BlobRemoval<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

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
    /// Deletes the user and, in the same transaction, their notes (releasing their blobs) with
    /// a `note.deleted` event each.
    async fn delete_user(&self, id: UserId) -> Result<bool, DbError>;
}

#[async_trait]
pub trait ApiKeyRepo: Send + Sync {
    async fn create_api_key(&self, key: NewApiKeyRecord) -> Result<ApiKeyRecord, DbError>;
    async fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRecord>, DbError>;
    /// `false` when the key does not exist or is someone else's.
    async fn delete_api_key(&self, user: UserId, id: ApiKeyId) -> Result<bool, DbError>;
    /// The key's owner, recording the use.
    async fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, DbError>;
}

#[async_trait]
pub trait NoteRepo: Send + Sync {
    /// In one transaction: takes a reference on the blob (creating its row if new), inserts the
    /// note, records the idempotency key and appends `note.created`. When the key was already
    /// used by this user, MUST change nothing and answer `Replayed`.
    async fn insert_note(
        &self,
        note: &NewNote,
        idempotency_key: Option<&str>,
    ) -> Result<InsertOutcome, DbError>;
    /// The note if `viewer` owns it or received it; `None` otherwise, exactly as if missing.
    async fn note_for_viewer(&self, id: NoteId, viewer: UserId) -> Result<Option<Note>, DbError>;
    /// The note whatever its owner: for signed links, whose signature is the authority.
    async fn note_by_id(&self, id: NoteId) -> Result<Option<Note>, DbError>;
    /// The newest note of that name `viewer` may see.
    async fn newest_named(&self, viewer: UserId, name: &str) -> Result<Option<Note>, DbError>;
    async fn idempotent_result(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<(NoteId, String)>, DbError>;
    /// At most `filter.limit` notes, in the filter's order, strictly after its cursor.
    async fn list_notes(&self, filter: &NoteFilter) -> Result<Vec<Note>, DbError>;
    /// Deletes an owned note, releases its blob and appends `note.deleted`, in one transaction.
    async fn delete_note(&self, id: NoteId, owner: UserId) -> Result<bool, DbError>;
    /// Forgets idempotency keys recorded before `before`; returns how many.
    async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64, DbError>;
    /// Marks every note stored in that blob as failed, with an event each; returns how many.
    async fn fail_notes_of_blob(&self, sha256: &str, reason: &str) -> Result<u64, DbError>;
}

#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// Blobs no note references since before `cutoff`.
    async fn orphaned_blobs(&self, cutoff: Timestamp, limit: i64) -> Result<Vec<String>, DbError>;
    /// Deletes the blob's row if it is still unreferenced, running `remove` while the row is
    /// locked, so that an upload of the same bytes waits and then writes them again. Answers
    /// whether the blob was collected.
    async fn collect_blob(&self, sha256: &str, remove: BlobRemoval<'_>) -> Result<bool, DbError>;
    /// Removes a blob file that no row knows (an upload that crashed before its commit), with
    /// the same lock protocol as `collect_blob`. Answers `false`, removing nothing, when a row
    /// exists by now.
    async fn collect_unknown_blob(
        &self,
        sha256: &str,
        remove: BlobRemoval<'_>,
    ) -> Result<bool, DbError>;
    async fn blob_known(&self, sha256: &str) -> Result<bool, DbError>;
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
    async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<Event>, DbError>;
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
    pub notes: Arc<dyn NoteRepo>,
    pub blobs: Arc<dyn BlobIndex>,
    pub events: Arc<dyn EventLog>,
    pub health: Arc<dyn Health>,
}

impl Repos {
    fn from_backend<B>(backend: B) -> Repos
    where
        B: UserRepo + ApiKeyRepo + NoteRepo + BlobIndex + EventLog + Health + 'static,
    {
        let backend = Arc::new(backend);
        Repos {
            users: backend.clone(),
            api_keys: backend.clone(),
            notes: backend.clone(),
            blobs: backend.clone(),
            events: backend.clone(),
            health: backend,
        }
    }
}

/// Connects to the database the URL names (`sqlite:` or `postgres:`), running the migrations
/// when `migrate` is set.
pub async fn connect(url: &str, migrate: bool) -> Result<Repos, DbError> {
    if url.starts_with("sqlite:") {
        Ok(Repos::from_backend(
            SqliteRepo::connect(url, migrate).await?,
        ))
    } else {
        Ok(Repos::from_backend(
            PostgresRepo::connect(url, migrate).await?,
        ))
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn like_pattern(contains: &str) -> String {
    let mut pattern = String::with_capacity(contains.len() + 2);
    pattern.push('%');
    for c in contains.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}
