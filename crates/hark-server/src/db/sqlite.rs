//! SQLite, the embedded default: one file, WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

pub struct SqliteRepo {
    pool: Pool<Sqlite>,
}

impl SqliteRepo {
    pub async fn connect(url: &str, migrate: bool) -> Result<SqliteRepo, super::DbError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL is durable across application crashes; FULL also survives power
            // loss at the cost of an fsync per commit. Notes are acknowledged only once
            // committed, so take FULL.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        if migrate {
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        }
        Ok(SqliteRepo { pool })
    }
}

super::sql::sql_repository!(SqliteRepo, Sqlite);
