//! The SQL both backends share, written once and generic over the backend. SQLite and
//! PostgreSQL accept the same statements here (`$n` placeholders, `RETURNING`, `ON CONFLICT`,
//! row values); where they differ, the statement comes from the backend through [`Backend`].
//!
//! Every impl carries the same `where` clause: it lists what the shared code needs of a
//! backend (an executor over its connection, and the column types it binds and reads). Rust
//! does not let a trait carry such bounds for its users, so each impl states them.

mod blobs;
mod delivery;
mod events;
mod inserts;
mod jobs;
mod lists;
mod notes;
mod positions;
mod push;
mod users;
mod webhooks;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{Database, Pool};
use tokio::sync::Notify;

use super::DbError;

/// What differs between the engines, for the shared code.
pub trait Backend: Database {
    /// Rows a statement changed (each engine's result type has its own method).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Serialises appends to the event log until the transaction ends, so that events commit
    /// in `seq` order and a reader of `seq > n` never passes one that commits later.
    fn lock_event_log(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>>;

    /// Tells the other processes on the database, once the transaction commits, that events
    /// were appended (PostgreSQL's `NOTIFY`); nothing where one process has the database.
    fn announce_appends(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>>;

    /// Starts signalling `appended` when other processes announce appends.
    fn listen_for_appends(pool: &Pool<Self>, appended: Arc<Notify>);

    /// Whether the list SQL must keep range filters on other columns than the sort's off any
    /// index (written `+column`). A planner without statistics on how many rows a range keeps
    /// serves it from the range column's index and then sorts every row it keeps; walking
    /// the sort order's index instead stops at the end of the page.
    const STEER_TO_SORT_ORDER: bool;

    /// The full-text table that indexes folded names by trigram, with rowids that order notes
    /// as `created_at` does (`notes.name_key`), when the engine has one. Without it, name
    /// substrings are matched with `LIKE` and the engine's planner picks the index.
    const NAME_TRIGRAMS: Option<&'static str>;

    /// The function that finds where a substring occurs (1-based, 0 for nowhere), when name
    /// substrings too short for trigrams are to be matched with it rather than with `LIKE`.
    /// A planner that estimates such a `LIKE` to keep almost no row reads the whole table
    /// and sorts what it keeps; a function's condition gets its default estimate, and the
    /// list walks the sort order's index, stopping at the end of the page.
    const POSITION_OF: Option<&'static str>;

    /// A condition on a list's note `n`: its original transcript holds every word of the
    /// search, bound between the two parts as [`Backend::transcript_search`] renders it.
    const TRANSCRIPT_MATCH: (&'static str, &'static str);

    /// The bound value of `TRANSCRIPT_MATCH` for words folded by `search_words`.
    fn transcript_search(words: &[String]) -> String;

    /// A join of the rows before it to their note `n`, whose id is `id`: row by row, in the
    /// order they come, so that a list reads only its page's notes.
    fn note_of(id: &str) -> String;

    /// What a claim's choice of job ends with, so concurrent claims pass over the rows another
    /// claim is taking instead of waiting for it (`FOR UPDATE SKIP LOCKED`); empty where one
    /// writer at a time is all the engine allows.
    const SKIP_LOCKED: &'static str;

    /// What a read ends with to lock the rows it reads until the transaction ends; empty where
    /// the transaction's first write already holds the engine's one write lock.
    const FOR_UPDATE: &'static str;
}

/// Rows one multi-row statement writes at most: well under every engine's limit on bound
/// parameters (SQLite's is 32766) at twenty columns a row.
const ROWS_PER_STATEMENT: usize = 500;

/// The repositories over one connection pool.
pub struct SqlRepo<DB: Database> {
    pub(super) pool: Pool<DB>,
    /// Where group commits take their connection: `pool` itself, unless the backend keeps a
    /// connection for them (see `with_committer`).
    pub(super) committer: Pool<DB>,
    /// Signalled after a commit that may have appended events (and, on PostgreSQL, when
    /// another process announces one): wakes this process's event follower.
    pub(super) appended: Arc<Notify>,
    listening: std::sync::Once,
}

impl<DB: Database> SqlRepo<DB> {
    pub fn new(pool: Pool<DB>) -> SqlRepo<DB> {
        SqlRepo {
            committer: pool.clone(),
            pool,
            appended: Arc::new(Notify::new()),
            listening: std::sync::Once::new(),
        }
    }

    /// Group commits take their connection from `committer` rather than from the shared pool.
    pub fn with_committer(self, committer: Pool<DB>) -> SqlRepo<DB> {
        SqlRepo { committer, ..self }
    }

    /// Called after committing a transaction that committed effects.
    pub(super) fn announce_commit(&self) {
        self.appended.notify_one();
    }
}

impl<DB: Backend> SqlRepo<DB> {
    /// The signal of appends, listening for other processes' from the first call on.
    pub(super) fn appends(&self) -> Arc<Notify> {
        self.listening
            .call_once(|| DB::listen_for_appends(&self.pool, self.appended.clone()));
        self.appended.clone()
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

/// A foreign key's refusal as `MissingReference`; other errors as they are.
fn missing_reference(err: DbError) -> DbError {
    match err {
        DbError::Sqlx(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            DbError::MissingReference(e.message().to_owned())
        }
        other => other,
    }
}

fn unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}
