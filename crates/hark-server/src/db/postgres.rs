//! PostgreSQL, for many nodes sharing one database.

use std::str::FromStr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::Postgres;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions, PgQueryResult};
use tokio::sync::Notify;

use super::DbError;
use super::sql::{Backend, SqlRepo};

pub type PostgresRepo = SqlRepo<Postgres>;

/// The advisory lock that serialises appends to the event log ("hark.events").
const EVENT_LOG_LOCK: i64 = 0x6861_726b_6576_7473;

/// The `LISTEN`/`NOTIFY` channel on which appends to the event log are announced.
const APPENDS_CHANNEL: &str = "hark_events";

impl Backend for Postgres {
    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// `seq` comes from an identity column, whose values are handed out at insert time, not
    /// at commit: two transactions can commit out of `seq` order, and a reader of `seq > n`
    /// would pass the later-committing lower one for good. A transaction-level advisory lock
    /// taken before the insert makes appends, and so their commits, follow `seq` order.
    fn lock_event_log(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EVENT_LOG_LOCK)
                .execute(conn)
                .await
                .map(|_| ())
        })
    }

    /// Listens on a connection of its own, for as long as the process runs. A lost connection
    /// may have lost announcements, so reconnecting counts as one.
    fn listen_for_appends(pool: &sqlx::Pool<Postgres>, appended: Arc<Notify>) {
        let pool = pool.clone();
        tokio::spawn(async move {
            loop {
                let listening = async {
                    let mut listener = PgListener::connect_with(&pool).await?;
                    listener.listen(APPENDS_CHANNEL).await?;
                    appended.notify_one();
                    while listener.try_recv().await?.is_some() {
                        appended.notify_one();
                    }
                    Ok::<(), sqlx::Error>(())
                };
                if let Err(e) = listening.await {
                    tracing::warn!(error = %e, "listening for events from other nodes");
                }
                appended.notify_one();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// A `NOTIFY` is delivered when its transaction commits, to every server and worker
    /// listening (see [`listen_for_appends`]).
    fn announce_appends(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(sqlx::AssertSqlSafe(format!("NOTIFY {APPENDS_CHANNEL}")))
                .execute(conn)
                .await
                .map(|_| ())
        })
    }

    /// PostgreSQL estimates a range from its statistics and weighs both plans itself.
    const STEER_TO_SORT_ORDER: bool = false;

    /// `pg_trgm` serves `LIKE` from a GIN index; the planner weighs it against the sort order.
    const NAME_TRIGRAMS: Option<&'static str> = None;

    /// `LIKE '%mü%'` was estimated at 21 of 500,000 notes where 9,004 match: the plan read
    /// every note (116 ms) instead of walking the page's 51 off the creation index.
    const POSITION_OF: Option<&'static str> = Some("strpos");

    const TRANSCRIPT_MATCH: (&'static str, &'static str) = (
        "n.id IN (SELECT note_id FROM transcripts WHERE version = 'original' \
         AND search @@ plainto_tsquery('simple', ",
        "))",
    );

    /// The words as text: `plainto_tsquery` joins them with AND.
    fn transcript_search(words: &[String]) -> String {
        words.join(" ")
    }

    /// Planned for a filter's values, a join to the notes may merge along their primary key,
    /// reading every note up to the last one wanted. A lateral subquery that cannot be
    /// flattened (`OFFSET 0`) is read once per row.
    fn note_of(id: &str) -> String {
        format!("CROSS JOIN LATERAL (SELECT * FROM notes WHERE notes.id = {id} OFFSET 0) AS n")
    }

    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    const FOR_UPDATE: &'static str = " FOR UPDATE";
}

/// Opens the database, running the migrations when `migrate` is set.
///
/// Statements are prepared once per connection, and PostgreSQL would plan one for any values
/// after a few runs: a list's name substring is then looked for by walking the sort order
/// instead of in the trigram index, however rare it is. Planning each run for its values
/// costs far less than such a walk.
pub async fn connect(url: &str, migrate: bool) -> Result<PostgresRepo, DbError> {
    let options =
        PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_custom_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    if migrate {
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    }
    Ok(SqlRepo::new(pool))
}
