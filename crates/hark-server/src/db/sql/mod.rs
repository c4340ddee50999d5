//! The SQL both backends share, written once and generic over the backend. SQLite and
//! PostgreSQL accept the same statements here (`$n` placeholders, `RETURNING`, `ON CONFLICT`,
//! row values); where they differ, the statement comes from the backend through [`Backend`].
//!
//! Every impl carries the same `where` clause: it lists what the shared code needs of a
//! backend (an executor over its connection, and the column types it binds and reads). Rust
//! does not let a trait carry such bounds for its users, so each impl states them.

mod blobs;
mod events;
mod inserts;
mod notes;
mod users;

use futures_util::future::BoxFuture;
use sqlx::{Database, Pool};

use super::DbError;

/// What differs between the engines, for the shared code.
pub trait Backend: Database {
    /// Rows a statement changed (each engine's result type has its own method).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Serialises appends to the event log until the transaction ends, so that events commit
    /// in `seq` order and a reader of `seq > n` never passes one that commits later.
    fn lock_event_log(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>>;
}

/// Rows one multi-row statement writes at most: well under every engine's limit on bound
/// parameters (SQLite's is 32766) at twenty columns a row.
const ROWS_PER_STATEMENT: usize = 500;

/// The repositories over one connection pool.
pub struct SqlRepo<DB: Database> {
    pub(super) pool: Pool<DB>,
}

impl<DB: Database> SqlRepo<DB> {
    pub fn new(pool: Pool<DB>) -> SqlRepo<DB> {
        SqlRepo { pool }
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
