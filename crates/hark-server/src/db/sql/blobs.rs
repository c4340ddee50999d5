//! Blob rows: reference counts and the deletion protocol (see `BlobIndex`).

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::{Backend, SqlRepo};
use crate::db::{BlobIndex, DbError};
use crate::domain::Timestamp;

/// Lookups per `known_blobs` statement, well under every engine's bind-parameter limit.
const LOOKUP_BATCH: usize = 500;

#[async_trait]
impl<DB> BlobIndex for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn orphaned_blobs(&self, cutoff: Timestamp, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT sha256 FROM blobs WHERE refcount = 0 AND orphaned_at <= $1 \
             ORDER BY orphaned_at LIMIT $2",
        )
        .bind(cutoff.micros())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn begin_blob_deletion(&self, sha256: &str) -> Result<bool, DbError> {
        let marked =
            sqlx::query("UPDATE blobs SET deleting = 1 WHERE sha256 = $1 AND refcount = 0")
                .bind(sha256.to_owned())
                .execute(&self.pool)
                .await?;
        Ok(DB::rows_affected(&marked) > 0)
    }

    async fn begin_unknown_blob_deletion(&self, sha256: &str) -> Result<bool, DbError> {
        let now = Timestamp::now().micros();
        let claimed = sqlx::query(
            "INSERT INTO blobs (sha256, size_bytes, refcount, created_at, orphaned_at, deleting) \
             VALUES ($1, 0, 0, $2, $2, 1) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&claimed) > 0)
    }

    async fn finish_blob_deletion(&self, sha256: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM blobs WHERE sha256 = $1 AND refcount = 0")
            .bind(sha256.to_owned())
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&gone) == 0 {
            sqlx::query("UPDATE blobs SET deleting = 0 WHERE sha256 = $1")
                .bind(sha256.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn blob_deleting(&self, sha256: &str) -> Result<bool, DbError> {
        let deleting: Option<i64> =
            sqlx::query_scalar("SELECT deleting FROM blobs WHERE sha256 = $1")
                .bind(sha256.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        Ok(deleting.is_some_and(|d| d != 0))
    }

    async fn known_blobs(&self, sha256s: &[String]) -> Result<HashSet<String>, DbError> {
        let mut known = HashSet::new();
        for batch in sha256s.chunks(LOOKUP_BATCH) {
            let mut qb = QueryBuilder::<DB>::new("SELECT sha256 FROM blobs WHERE sha256 IN (");
            let mut list = qb.separated(", ");
            for sha in batch {
                list.push_bind(sha.clone());
            }
            qb.push(")");
            let found: Vec<String> = qb.build_query_scalar().fetch_all(&self.pool).await?;
            known.extend(found);
        }
        Ok(known)
    }

    async fn referenced_blobs(
        &self,
        after: &str,
        created_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT sha256 FROM blobs WHERE refcount > 0 AND sha256 > $1 AND created_at < $2 \
             ORDER BY sha256 LIMIT $3",
        )
        .bind(after.to_owned())
        .bind(created_before.micros())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
