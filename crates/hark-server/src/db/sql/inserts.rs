//! Committing uploaded notes: several in one transaction, so that they share one durable write;
//! should one of them fail, the batch runs again with each note inside a savepoint, so that
//! its failure leaves the others to commit.

use hark_api::NoteStatus;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};

use super::{Backend, SqlRepo, missing_reference};
use crate::db::rows::NoteRow;
use crate::db::{DbError, InsertOutcome, NoteInsert};
use crate::domain::{NoteId, Timestamp};

// `NoteRow` is private to `db`, as are these helpers; the lint cannot see through `pub(super)`.
#[allow(private_bounds)]
impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> NoteRow: FromRow<'r, DB::Row>,
{
    pub(super) async fn insert_batch(
        &self,
        notes: &[NoteInsert],
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        // Notes rarely fail, so first all of them plainly; savepoints cost two statements a
        // note, each a round trip to the database.
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(notes.len());
        for insert in notes {
            match Self::insert_one(&mut tx, insert)
                .await
                .map_err(missing_reference)
            {
                Ok(outcome) => outcomes.push(Ok(outcome)),
                Err(e) if notes.len() == 1 => {
                    tx.rollback().await?;
                    return Ok(vec![Err(e)]);
                }
                Err(_) => {
                    tx.rollback().await?;
                    return self.insert_each(notes).await;
                }
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// One transaction still, each note in its own savepoint: a failing note is undone alone.
    async fn insert_each(
        &self,
        notes: &[NoteInsert],
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(notes.len());
        for insert in notes {
            sqlx::query("SAVEPOINT note").execute(&mut *tx).await?;
            let outcome = Self::insert_one(&mut tx, insert)
                .await
                .map_err(missing_reference);
            let end = if outcome.is_ok() {
                "RELEASE SAVEPOINT note"
            } else {
                "ROLLBACK TO SAVEPOINT note"
            };
            sqlx::query(end).execute(&mut *tx).await?;
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn insert_one(
        conn: &mut DB::Connection,
        insert: &NoteInsert,
    ) -> Result<InsertOutcome, DbError> {
        let note = &insert.note;
        // The note's instant is taken here, once its bytes are durable, so that notes
        // become visible in the order of their timestamps as far as one clock allows.
        let created_at = Timestamp::now();
        let audio = &note.audio;
        // The key first: a used one means this note writes nothing at all.
        if let Some(key) = &insert.idempotency_key {
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (user_id, key, note_id, sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO NOTHING",
            )
            .bind(note.owner_id.to_string())
            .bind(key.clone())
            .bind(note.id.to_string())
            .bind(audio.sha256.clone())
            .bind(created_at.micros())
            .execute(&mut *conn)
            .await?;
            if DB::rows_affected(&claimed) == 0 {
                return Self::replayed(conn, insert).await;
            }
        }
        // The blob reference waits for a collector marking this blob.
        let deleting: i64 = sqlx::query_scalar(
            "INSERT INTO blobs (sha256, size_bytes, refcount, created_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1, orphaned_at = NULL \
             RETURNING deleting",
        )
        .bind(audio.sha256.clone())
        .bind(audio.size_bytes as i64)
        .bind(created_at.micros())
        .fetch_one(&mut *conn)
        .await?;
        let row: NoteRow = sqlx::query_as(
            "INSERT INTO notes (id, owner_id, name, name_folded, title, series, format, codec, \
             mime, duration_seconds, sample_rate, channels, bitrate, size_bytes, sha256, status, \
             failure_reason, tags, created_at) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             RETURNING *",
        )
        .bind(note.id.to_string())
        .bind(note.owner_id.to_string())
        .bind(note.name.clone())
        .bind(note.name.to_lowercase())
        .bind(note.title.clone())
        .bind(note.series.clone())
        .bind(audio.format.clone())
        .bind(audio.codec.clone())
        .bind(audio.mime.clone())
        .bind(audio.duration_seconds)
        .bind(i64::from(audio.sample_rate))
        .bind(i64::from(audio.channels))
        .bind(audio.bitrate as i64)
        .bind(audio.size_bytes as i64)
        .bind(audio.sha256.clone())
        .bind(NoteStatus::Pending.as_str().to_owned())
        .bind(None::<String>)
        .bind(serde_json::to_string(&audio.tags).unwrap_or_else(|_| "{}".into()))
        .bind(created_at.micros())
        .fetch_one(&mut *conn)
        .await?;
        Self::commit_effects(conn, &insert.effects).await?;
        Ok(InsertOutcome::Inserted {
            note: Box::new(row.try_into()?),
            blob_deleting: deleting != 0,
        })
    }

    /// The note and bytes the key first produced (committed, or earlier in this batch).
    async fn replayed(
        conn: &mut DB::Connection,
        insert: &NoteInsert,
    ) -> Result<InsertOutcome, DbError> {
        let key = insert.idempotency_key.clone().unwrap_or_default();
        let first: Option<(String, String)> = sqlx::query_as(
            "SELECT note_id, sha256 FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        )
        .bind(insert.note.owner_id.to_string())
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        let (note_id, sha256) = first
            .and_then(|(id, sha)| NoteId::parse(&id).map(|id| (id, sha)))
            .ok_or_else(|| DbError::Conflict("idempotency key".into()))?;
        Ok(InsertOutcome::Replayed { note_id, sha256 })
    }
}
