//! SQLite, the embedded default: one file, WAL mode, one writer at a time.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};
use tokio::sync::Notify;

use super::DbError;
use super::sql::{Backend, SqlRepo};

pub type SqliteRepo = SqlRepo<Sqlite>;

/// How much of the database file each connection maps.
const MMAP_BYTES: u64 = 1 << 30;

/// Rows a connection's thread may read ahead of the task that takes them: more than the
/// largest page of a list. With fewer, the thread stops each time the buffer is full and
/// waits to be woken, and a 500-note page costs hundreds of thread switches.
const ROW_BUFFER: usize = 1024;

impl Backend for Sqlite {
    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// SQLite has one writer at a time: transactions that append events already commit in
    /// the order their appends ran.
    fn lock_event_log(_: &mut SqliteConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// One process has the database: its own commits wake its follower.
    fn listen_for_appends(_: &sqlx::Pool<Sqlite>, _: Arc<Notify>) {}

    /// One process has the database: its own commits wake its follower.
    fn announce_appends(_: &mut SqliteConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(std::future::ready(Ok(())))
    }

    const STEER_TO_SORT_ORDER: bool = true;

    const NAME_TRIGRAMS: Option<&'static str> = Some("note_names");

    /// Without statistics, SQLite's planner walks the sort order's index whatever the `LIKE`.
    const POSITION_OF: Option<&'static str> = None;

    const TRANSCRIPT_MATCH: (&'static str, &'static str) = (
        "n.name_key IN (SELECT rowid FROM transcript_words WHERE transcript_words MATCH ",
        ")",
    );

    /// An FTS5 query of quoted terms, which it joins with AND.
    fn transcript_search(words: &[String]) -> String {
        let quoted: Vec<String> = words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect();
        quoted.join(" ")
    }

    /// SQLite keeps a `CROSS JOIN`'s order, rather than starting at the notes.
    fn note_of(id: &str) -> String {
        format!("CROSS JOIN notes n ON n.id = {id}")
    }

    const SKIP_LOCKED: &'static str = "";

    const FOR_UPDATE: &'static str = "";
}

/// Opens the database, running the migrations when `migrate` is set.
pub async fn connect(url: &str, migrate: bool) -> Result<SqliteRepo, DbError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with NORMAL is durable across application crashes; FULL also survives power
        // loss at the cost of an fsync per commit. Notes are acknowledged only once
        // committed, so take FULL.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        // Reads map the file instead of copying each page through a system call into a
        // per-connection cache of 2 MB: with a large library every list walks pages that
        // cache cannot hold. The mapping is address space; the memory is the OS page cache.
        .pragma("mmap_size", MMAP_BYTES.to_string())
        .row_buffer_size(ROW_BUFFER)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        // A connection is a thread of this process, not a socket that may have closed: testing
        // it with a ping would only add a round trip to that thread before every query.
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await?;
    if migrate {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    }
    // Group commits keep a connection of their own. A connection that begins a transaction
    // after another one committed drops its page cache and unmaps the database file; taking
    // each batch's connection from the shared pool paid that, and the page faults after it,
    // on every batch.
    let committer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?;
    Ok(SqlRepo::new(pool).with_committer(committer))
}
