//! PostgreSQL, for many nodes sharing one database.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

pub struct PostgresRepo {
    pool: Pool<Postgres>,
}

impl PostgresRepo {
    pub async fn connect(url: &str, migrate: bool) -> Result<PostgresRepo, super::DbError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        if migrate {
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        }
        Ok(PostgresRepo { pool })
    }
}

super::sql::sql_repository!(PostgresRepo, Postgres);
