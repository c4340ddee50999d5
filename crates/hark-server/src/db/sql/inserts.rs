//! Committing uploaded notes: several in one transaction, so that they share one durable write;
//! should one of them fail, the batch runs again with each note inside a savepoint, so that
//! its failure leaves the others to commit.

use std::collections::{BTreeMap, HashMap, HashSet};

use hark_api::NoteStatus;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Type};

use super::{Backend, ROWS_PER_STATEMENT, SqlRepo, missing_reference};
use crate::db::rows::NoteRow;
use crate::db::{BeforeCommit, DbError, InsertOutcome, NoteInsert};
use crate::domain::{Effects, Note, NoteId, Timestamp};

/// The notes table's columns as an insert writes them.
const NOTE_COLUMNS: &str = "INSERT INTO notes (id, owner_id, name, name_folded, title, series, \
     format, codec, mime, duration_seconds, sample_rate, channels, bitrate, size_bytes, sha256, \
     status, failure_reason, tags, created_at, correction_asked) ";
/// One note, with its values bound in the order of `NOTE_COLUMNS`.
const ONE_NOTE: &str = "INSERT INTO notes (id, owner_id, name, name_folded, title, series, \
     format, codec, mime, duration_seconds, sample_rate, channels, bitrate, size_bytes, sha256, \
     status, failure_reason, tags, created_at, correction_asked) VALUES ($1, $2, $3, $4, $5, $6, \
     $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING *";

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
        durable: BeforeCommit,
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        // Notes rarely fail, so first all of them together, one statement a table (each
        // statement is a round trip to the database); should one fail, each note again in a
        // savepoint of its own.
        let mut tx = self.committer.begin().await?;
        let tried = match notes {
            [one] => Self::insert_one(&mut tx, one).await.map(|o| vec![Ok(o)]),
            _ => Self::insert_all(&mut tx, notes).await,
        };
        // The blobs became durable while the statements ran; nothing commits before they are.
        if let Err(e) = durable.await {
            tx.rollback().await?;
            return Err(e);
        }
        match tried.map_err(missing_reference) {
            Ok(outcomes) => {
                tx.commit().await?;
                self.announce_commit();
                Ok(outcomes)
            }
            Err(e) if notes.len() == 1 => {
                tx.rollback().await?;
                Ok(vec![Err(e)])
            }
            Err(_) => {
                tx.rollback().await?;
                self.insert_each(notes).await
            }
        }
    }

    /// Every note of a batch, with one statement for each table.
    async fn insert_all(
        conn: &mut DB::Connection,
        notes: &[NoteInsert],
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        // Instants taken inside the transaction, as in `insert_one`.
        let created_at = Timestamp::now().micros();
        // The keys first: a note whose key was already used replays and writes nothing.
        let keyed: Vec<&NoteInsert> = notes
            .iter()
            .filter(|n| n.idempotency_key.is_some())
            .collect();
        let mut claimed = HashSet::new();
        for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO idempotency_keys (user_id, key, note_id, sha256, created_at) ",
            );
            insert.push_values(chunk, |mut row, n| {
                row.push_bind(n.note.owner_id.to_string())
                    .push_bind(n.idempotency_key.clone().unwrap_or_default())
                    .push_bind(n.note.id.to_string())
                    .push_bind(n.note.audio.sha256.clone())
                    .push_bind(created_at);
            });
            insert.push(" ON CONFLICT (user_id, key) DO NOTHING RETURNING note_id");
            let rows: Vec<String> = insert.build_query_scalar().fetch_all(&mut *conn).await?;
            claimed.extend(rows);
        }
        let fresh: Vec<&NoteInsert> = notes
            .iter()
            .filter(|n| n.idempotency_key.is_none() || claimed.contains(&n.note.id.to_string()))
            .collect();
        let deleting = Self::reference_blobs(conn, &fresh, created_at).await?;
        let mut stored: HashMap<String, Note> = HashMap::new();
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(NOTE_COLUMNS);
            insert.push_values(chunk, |mut row, n| {
                let (note, audio) = (&n.note, &n.note.audio);
                row.push_bind(note.id.to_string())
                    .push_bind(note.owner_id.to_string())
                    .push_bind(note.name.clone())
                    .push_bind(note.name.to_lowercase())
                    .push_bind(note.title.clone())
                    .push_bind(note.series.clone())
                    .push_bind(audio.format.clone())
                    .push_bind(audio.codec.clone())
                    .push_bind(audio.mime.clone())
                    .push_bind(audio.duration_seconds)
                    .push_bind(i64::from(audio.sample_rate))
                    .push_bind(i64::from(audio.channels))
                    .push_bind(audio.bitrate as i64)
                    .push_bind(audio.size_bytes as i64)
                    .push_bind(audio.sha256.clone())
                    .push_bind(NoteStatus::Pending.as_str().to_owned())
                    .push_bind(None::<String>)
                    .push_bind(serde_json::to_string(&audio.tags).unwrap_or_else(|_| "{}".into()))
                    .push_bind(created_at)
                    .push_bind(i64::from(note.correction_asked));
            });
            insert.push(" RETURNING *");
            let rows: Vec<NoteRow> = insert.build_query_as().fetch_all(&mut *conn).await?;
            for row in rows {
                let note: Note = row.try_into()?;
                stored.insert(note.id.to_string(), note);
            }
        }
        let mut effects = Effects::none();
        for n in &fresh {
            effects.extend(n.effects.clone());
        }
        Self::commit_effects(conn, &effects).await?;
        let mut outcomes = Vec::with_capacity(notes.len());
        for insert in notes {
            let outcome = match stored.remove(&insert.note.id.to_string()) {
                Some(note) => InsertOutcome::Inserted {
                    blob_deleting: deleting.get(&note.audio.sha256).is_some_and(|&d| d != 0),
                    note: Box::new(note),
                },
                None => Self::replayed(conn, insert).await?,
            };
            outcomes.push(Ok(outcome));
        }
        Ok(outcomes)
    }

    /// Takes the notes' references on their blobs, one row per blob however many notes share
    /// it; answers whether each blob is being deleted (by its key).
    async fn reference_blobs(
        conn: &mut DB::Connection,
        notes: &[&NoteInsert],
        created_at: i64,
    ) -> Result<HashMap<String, i64>, DbError> {
        let mut blobs: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
        for n in notes {
            let audio = &n.note.audio;
            blobs
                .entry(audio.sha256.as_str())
                .or_insert((audio.size_bytes, 0))
                .1 += 1;
        }
        let blobs: Vec<_> = blobs.into_iter().collect();
        let mut deleting = HashMap::new();
        for chunk in blobs.chunks(ROWS_PER_STATEMENT) {
            let mut upsert = QueryBuilder::<DB>::new(
                "INSERT INTO blobs (sha256, size_bytes, refcount, created_at) ",
            );
            upsert.push_values(chunk, |mut row, (sha, (size, count))| {
                row.push_bind(sha.to_string())
                    .push_bind(*size as i64)
                    .push_bind(*count)
                    .push_bind(created_at);
            });
            upsert.push(
                " ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + excluded.refcount, \
                 orphaned_at = NULL RETURNING sha256, deleting",
            );
            let rows: Vec<(String, i64)> = upsert.build_query_as().fetch_all(&mut *conn).await?;
            deleting.extend(rows);
        }
        Ok(deleting)
    }

    /// One transaction still, each note in its own savepoint: a failing note is undone alone.
    async fn insert_each(
        &self,
        notes: &[NoteInsert],
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        let mut tx = self.committer.begin().await?;
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
        self.announce_commit();
        Ok(outcomes)
    }

    async fn insert_one(
        conn: &mut DB::Connection,
        insert: &NoteInsert,
    ) -> Result<InsertOutcome, DbError> {
        let note = &insert.note;
        // The note's instant is taken inside its transaction, and batches commit one after
        // another, so that notes become visible in the order of their timestamps as far as
        // one clock allows.
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
        let deleting =
            Self::reference_blob(conn, &audio.sha256, audio.size_bytes, created_at).await?;
        let row: NoteRow = sqlx::query_as(ONE_NOTE)
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
            .bind(i64::from(note.correction_asked))
            .fetch_one(&mut *conn)
            .await?;
        Self::commit_effects(conn, &insert.effects).await?;
        Ok(InsertOutcome::Inserted {
            note: Box::new(row.try_into()?),
            blob_deleting: deleting,
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
