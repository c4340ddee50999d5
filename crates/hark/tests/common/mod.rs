//! What the process tests share: a PostgreSQL database of their own.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;

fn pg_server_url() -> String {
    std::env::var("HARK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own for one test, dropped when it ends (named like the API suite's, whose
/// sweep drops those a crashed run left behind).
pub struct Database {
    name: String,
}

impl Database {
    /// `label` (letters only) tells the test's databases apart.
    pub async fn create(label: &str) -> Database {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let name = format!("hark_test_{now}_{label}{}", std::process::id());
        // The name is made here of digits and letters: nothing from outside reaches the statement.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut Self::admin().await)
            .await
            .expect("create database");
        Database { name }
    }

    async fn admin() -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&format!("{}/postgres", pg_server_url()))
            .await
            .expect("PostgreSQL is reachable")
    }

    pub fn url(&self) -> String {
        format!("{}/{}", pg_server_url(), self.name)
    }

    pub async fn drop(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut Self::admin().await)
        .await;
    }
}
