//! Notes: inserting with their blob reference, reading with the viewer's isolation, listing
//! (the query is built in `lists`), deleting with their blob release.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};

use super::{Backend, SqlRepo, lists};
use crate::db::rows::NoteRow;
use crate::db::{
    BeforeCommit, DbError, DeletedNote, EffectsOf, InsertOutcome, NoteFilter, NoteInsert, NoteRepo,
};
use crate::domain::{Effects, Note, NoteId, Timestamp, UserId};

impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Takes one reference on a blob, creating its row if new; answers whether a collector is
    /// deleting its bytes (the caller must then write them again once it is done).
    pub(super) async fn reference_blob(
        conn: &mut DB::Connection,
        sha256: &str,
        size_bytes: u64,
        at: Timestamp,
    ) -> Result<bool, DbError> {
        let deleting: i64 = sqlx::query_scalar(
            "INSERT INTO blobs (sha256, size_bytes, refcount, created_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1, orphaned_at = NULL \
             RETURNING deleting",
        )
        .bind(sha256.to_owned())
        .bind(size_bytes as i64)
        .bind(at.micros())
        .fetch_one(&mut *conn)
        .await?;
        Ok(deleting != 0)
    }

    /// Drops one reference on a blob; at zero it becomes the collector's.
    pub(super) async fn release_blob(
        conn: &mut DB::Connection,
        sha256: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE blobs SET refcount = refcount - 1, \
             orphaned_at = CASE WHEN refcount - 1 <= 0 THEN $2 ELSE orphaned_at END \
             WHERE sha256 = $1",
        )
        .bind(sha256.to_owned())
        .bind(Timestamp::now().micros())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Deletes an owned note row with its inbox entries and releases its blob. Writes come
    /// first: on SQLite that takes the write lock at once instead of upgrading a read lock.
    pub(super) async fn delete_note_in(
        conn: &mut DB::Connection,
        id: NoteId,
        owner: UserId,
    ) -> Result<Option<DeletedNote>, DbError> {
        // The note's jobs are locked before anything else, as every transaction that changes
        // them locks them: a claim or a pass holding them goes on to update the note, whose
        // triggers update its inbox entries, so taking the entries first could deadlock.
        Self::lock_jobs(conn, id).await?;
        let recipients: Vec<String> = sqlx::query_scalar(
            "DELETE FROM inbox_entries WHERE note_id = $1 \
             AND EXISTS (SELECT 1 FROM notes WHERE id = $1 AND owner_id = $2) \
             RETURNING recipient_id",
        )
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_all(&mut *conn)
        .await?;
        // Its jobs go with it (cancelled: a worker still running one can record nothing).
        let owned: Option<String> = sqlx::query_scalar(
            "DELETE FROM jobs WHERE note_id = $1 \
             AND EXISTS (SELECT 1 FROM notes WHERE id = $1 AND owner_id = $2) RETURNING note_id",
        )
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        if owned.is_some() {
            Self::drop_renditions(conn, id).await?;
            sqlx::query("DELETE FROM waveforms WHERE note_id = $1")
                .bind(id.to_string())
                .execute(&mut *conn)
                .await?;
        }
        let sha: Option<String> = sqlx::query_scalar(
            "DELETE FROM notes WHERE id = $1 AND owner_id = $2 RETURNING sha256",
        )
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(sha) = sha else { return Ok(None) };
        Self::release_blob(conn, &sha).await?;
        Ok(Some(DeletedNote {
            id,
            owner_id: owner,
            recipients: recipients.iter().filter_map(|r| UserId::parse(r)).collect(),
        }))
    }
}

#[async_trait]
impl<DB> NoteRepo for SqlRepo<DB>
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
    #[tracing::instrument(skip_all, fields(notes = notes.len()))]
    async fn insert_notes(
        &self,
        notes: &[NoteInsert],
        durable: BeforeCommit,
    ) -> Result<Vec<Result<InsertOutcome, DbError>>, DbError> {
        self.insert_batch(notes, durable).await
    }

    async fn note_for_viewer(&self, id: NoteId, viewer: UserId) -> Result<Option<Note>, DbError> {
        let row: Option<NoteRow> = sqlx::query_as(
            "SELECT n.* FROM notes n WHERE n.id = $1 AND (n.owner_id = $2 OR EXISTS \
             (SELECT 1 FROM inbox_entries i WHERE i.note_id = n.id AND i.recipient_id = $2))",
        )
        .bind(id.to_string())
        .bind(viewer.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn note_by_id(&self, id: NoteId) -> Result<Option<Note>, DbError> {
        let row: Option<NoteRow> = sqlx::query_as("SELECT n.* FROM notes n WHERE n.id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn newest_named(&self, viewer: UserId, name: &str) -> Result<Option<Note>, DbError> {
        let row: Option<NoteRow> = sqlx::query_as(
            "SELECT n.* FROM notes n WHERE n.name = $2 AND (n.owner_id = $1 OR EXISTS \
             (SELECT 1 FROM inbox_entries i WHERE i.note_id = n.id AND i.recipient_id = $1)) \
             ORDER BY n.created_at DESC, n.id DESC LIMIT 1",
        )
        .bind(viewer.to_string())
        .bind(name.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn idempotent_result(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<(NoteId, String)>, DbError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT note_id, sha256 FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        )
        .bind(user.to_string())
        .bind(key.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(id, sha)| NoteId::parse(&id).map(|id| (id, sha))))
    }

    #[tracing::instrument(skip_all)]
    async fn list_notes(&self, filter: &NoteFilter) -> Result<Vec<Note>, DbError> {
        let plan = lists::own_plan(&self.pool, filter).await?;
        let rows: Vec<NoteRow> = lists::query::<DB>(filter, &plan)
            .build_query_as()
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(skip_all, fields(note = %id))]
    async fn delete_note(
        &self,
        id: NoteId,
        owner: UserId,
        effects: &EffectsOf<'_, DeletedNote>,
    ) -> Result<Option<DeletedNote>, DbError> {
        let mut tx = self.pool.begin().await?;
        let deleted = Self::delete_note_in(&mut tx, id, owner).await?;
        if let Some(deleted) = &deleted {
            Self::commit_effects(&mut tx, &effects(deleted)).await?;
        }
        tx.commit().await?;
        self.announce_commit();
        Ok(deleted)
    }

    async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before.micros())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn fail_notes_of_blob(
        &self,
        sha256: &str,
        reason: &str,
        effects: &EffectsOf<'_, Note>,
    ) -> Result<u64, DbError> {
        let mut tx = self.pool.begin().await?;
        let failed: Vec<NoteRow> = sqlx::query_as(
            "UPDATE notes SET status = 'failed', failure_reason = $2 \
             WHERE sha256 = $1 AND status <> 'failed' RETURNING *",
        )
        .bind(sha256.to_owned())
        .bind(reason.to_owned())
        .fetch_all(&mut *tx)
        .await?;
        let failed: Vec<Note> = failed
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?;
        let mut caused = Effects::none();
        for note in &failed {
            caused.extend(effects(note));
        }
        Self::commit_effects(&mut tx, &caused).await?;
        tx.commit().await?;
        self.announce_commit();
        Ok(failed.len() as u64)
    }
}
