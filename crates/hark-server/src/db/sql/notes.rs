//! Notes: inserting with their blob reference, reading with the viewer's isolation, listing
//! with filters and keyset cursors, deleting with their blob release.

use async_trait::async_trait;
use hark_api::NoteStatus;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Type,
};

use super::{Backend, SqlRepo, like_pattern};
use crate::db::rows::NoteRow;
use crate::db::{
    DbError, DeletedNote, EffectsOf, InsertOutcome, NoteFilter, NoteRepo, NoteSort, SortKey,
};
use crate::domain::{Effects, NewNote, Note, NoteId, Timestamp, UserId};

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
    /// Drops one reference on a blob; at zero it becomes the collector's.
    async fn release_blob(conn: &mut DB::Connection, sha256: &str) -> Result<(), DbError> {
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
        let recipients: Vec<String> = sqlx::query_scalar(
            "DELETE FROM inbox_entries WHERE note_id = $1 \
             AND EXISTS (SELECT 1 FROM notes WHERE id = $1 AND owner_id = $2) \
             RETURNING recipient_id",
        )
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_all(&mut *conn)
        .await?;
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

/// Where a list branch reads the sort key and the id it orders by: the note's own columns, or
/// their copies in the viewer's inbox entry (so the received branch walks an inbox index).
#[derive(Clone, Copy)]
enum SortColumns {
    Note(&'static str),
    Inbox,
}

impl SortColumns {
    fn key(self, sort: NoteSort) -> String {
        match self {
            SortColumns::Note(alias) => format!("{alias}.{}", sort.column()),
            SortColumns::Inbox => format!("i.note_{}", sort.column()),
        }
    }

    fn id(self) -> String {
        match self {
            SortColumns::Note(alias) => format!("{alias}.id"),
            SortColumns::Inbox => "i.note_id".to_owned(),
        }
    }
}

/// Appends the conditions every list branch shares: filters and the cursor. `name_matched`:
/// the branch already keeps only names with the substring.
fn push_list_conditions<DB>(
    qb: &mut QueryBuilder<DB>,
    filter: &NoteFilter,
    name_matched: bool,
    columns: SortColumns,
) where
    DB: Backend,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    let off_index = |column: &str| {
        if DB::STEER_TO_SORT_ORDER && filter.sort.column() != column {
            "+"
        } else {
            ""
        }
    };
    let duration = off_index("duration_seconds");
    if let Some(max) = filter.max_duration {
        qb.push(format_args!(" AND {duration}n.duration_seconds <= "))
            .push_bind(max);
    }
    if let Some(min) = filter.min_duration {
        qb.push(format_args!(" AND {duration}n.duration_seconds >= "))
            .push_bind(min);
    }
    if let Some(name) = filter.name_contains.as_ref().filter(|_| !name_matched) {
        qb.push(" AND n.name_folded LIKE ")
            .push_bind(like_pattern(name))
            .push(" ESCAPE '\\'");
    }
    if let Some(sender) = filter.sender {
        qb.push(" AND n.owner_id = ").push_bind(sender.to_string());
    }
    if let Some(channel) = &filter.channel {
        qb.push(
            " AND EXISTS (SELECT 1 FROM inbox_entries c WHERE c.note_id = n.id AND c.channel = ",
        )
        .push_bind(channel.clone())
        .push(")");
    }
    if let Some(status) = filter.status {
        qb.push(" AND n.status = ")
            .push_bind(status.as_str().to_owned());
    }
    if let Some(format) = &filter.format {
        qb.push(" AND n.format = ").push_bind(format.clone());
    }
    let created = off_index("created_at");
    if let Some(after) = filter.created_after {
        qb.push(format_args!(" AND {created}n.created_at > "))
            .push_bind(after.micros());
    }
    if let Some(before) = filter.created_before {
        qb.push(format_args!(" AND {created}n.created_at < "))
            .push_bind(before.micros());
    }
    if let Some((key, id)) = &filter.after {
        let op = if filter.sort.descending() { "<" } else { ">" };
        qb.push(format_args!(
            " AND ({}, {}) {op} (",
            columns.key(filter.sort),
            columns.id()
        ));
        match key {
            SortKey::Created(v) => qb.push_bind(*v),
            SortKey::Duration(v) => qb.push_bind(*v),
            SortKey::Name(v) => qb.push_bind(v.clone()),
        };
        qb.push(", ").push_bind(id.to_string()).push(")");
    }
}

fn push_order<DB>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter, columns: SortColumns)
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let dir = if filter.sort.descending() {
        "DESC"
    } else {
        "ASC"
    };
    qb.push(format_args!(
        " ORDER BY {key} {dir}, {id} {dir} LIMIT ",
        key = columns.key(filter.sort),
        id = columns.id()
    ))
    .push_bind(i64::from(filter.limit));
}

const NOTE: SortColumns = SortColumns::Note("n");

/// The viewer's own notes that pass the filter, in its order, at most a page of them.
fn push_owned_branch<DB>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter)
where
    DB: Backend,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    let Some((table, phrase)) = name_search_in_created_order::<DB>(filter) else {
        qb.push("SELECT n.* FROM notes n WHERE n.owner_id = ")
            .push_bind(filter.viewer.to_string());
        // Another sender's notes are only ever received: no need to walk the viewer's own.
        if filter.sender.is_some_and(|sender| sender != filter.viewer) {
            qb.push(" AND 1 = 0");
        }
        push_list_conditions(qb, filter, false, NOTE);
        push_order(qb, filter, NOTE);
        return;
    };
    // The name index yields matches in `name_key` order, which is `created_at` order, so the
    // inner query finds the page's last match after reading about a page of them. The page is
    // every match up to that one's microsecond (ties are ordered by id, which the key is not).
    let (dir, bound, edge, extreme) = if filter.sort.descending() {
        ("DESC", ">=", "", i64::MIN)
    } else {
        ("ASC", "<=", " + 1023", i64::MAX)
    };
    qb.push("SELECT n.* FROM ");
    push_name_matches(qb, filter, table, &phrase);
    qb.push(format_args!(
        " AND f.rowid {bound} coalesce((SELECT f.rowid / 1024 * 1024{edge} FROM "
    ));
    push_name_matches(qb, filter, table, &phrase);
    qb.push(format_args!(" ORDER BY f.rowid {dir} LIMIT 1 OFFSET "))
        .push_bind(i64::from(filter.limit) - 1)
        .push("), ")
        .push_bind(extreme)
        .push(")");
    push_order(qb, filter, NOTE);
}

/// The name index joined to the viewer's notes, with every condition of the filter. The
/// index is read first (`CROSS JOIN` fixes the order); bounds on its rowid let it skip what
/// the cursor and the creation range leave out.
fn push_name_matches<DB>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter, table: &str, phrase: &str)
where
    DB: Backend,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    qb.push(format_args!(
        "{table} f CROSS JOIN notes n ON n.name_key = f.rowid WHERE f.{table} MATCH "
    ))
    .push_bind(phrase.to_owned())
    .push(" AND n.owner_id = ")
    .push_bind(filter.viewer.to_string());
    let (from, until) = name_key_range(filter);
    if let Some(from) = from {
        qb.push(" AND f.rowid >= ").push_bind(from);
    }
    if let Some(until) = until {
        qb.push(" AND f.rowid < ").push_bind(until);
    }
    push_list_conditions(qb, filter, true, NOTE);
}

/// The name index and the phrase to match, when the engine has the index, the list is in
/// creation order, and the substring is long enough to have trigrams.
fn name_search_in_created_order<DB: Backend>(
    filter: &NoteFilter,
) -> Option<(&'static str, String)> {
    let table = DB::NAME_TRIGRAMS?;
    let folded = filter.name_contains.as_ref()?.to_lowercase();
    let in_created_order = matches!(filter.sort, NoteSort::CreatedAsc | NoteSort::CreatedDesc);
    (in_created_order && folded.chars().count() >= 3)
        .then(|| (table, format!("\"{}\"", folded.replace('"', "\"\""))))
}

/// The `name_key` range (`from <= key < until`) that the creation filters and the cursor leave:
/// a key is `created_at * 1024` plus a rank within the microsecond.
fn name_key_range(filter: &NoteFilter) -> (Option<i64>, Option<i64>) {
    let key = |micros: i64| micros.saturating_mul(1024);
    let mut from = filter
        .created_after
        .map(|t| key(t.micros().saturating_add(1)));
    let mut until = filter.created_before.map(|t| key(t.micros()));
    if let Some((SortKey::Created(at), _)) = &filter.after {
        if filter.sort.descending() {
            let cursor = key(at.saturating_add(1));
            until = Some(until.map_or(cursor, |u| u.min(cursor)));
        } else {
            let cursor = key(*at);
            from = Some(from.map_or(cursor, |f| f.max(cursor)));
        }
    }
    (from, until)
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
    #[tracing::instrument(skip_all, fields(note = %note.id))]
    async fn insert_note(
        &self,
        note: &NewNote,
        idempotency_key: Option<&str>,
        effects: &Effects,
    ) -> Result<InsertOutcome, DbError> {
        let mut tx = self.pool.begin().await?;
        // The note's instant is taken here, once its bytes are durable, so that notes
        // become visible in the order of their timestamps as far as one clock allows.
        let created_at = Timestamp::now();
        let audio = &note.audio;
        // First the blob reference: a write, and it waits for a collector marking this blob.
        let deleting: i64 = sqlx::query_scalar(
            "INSERT INTO blobs (sha256, size_bytes, refcount, created_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1, orphaned_at = NULL \
             RETURNING deleting",
        )
        .bind(audio.sha256.clone())
        .bind(audio.size_bytes as i64)
        .bind(created_at.micros())
        .fetch_one(&mut *tx)
        .await?;
        if let Some(key) = idempotency_key {
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (user_id, key, note_id, sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO NOTHING",
            )
            .bind(note.owner_id.to_string())
            .bind(key.to_owned())
            .bind(note.id.to_string())
            .bind(audio.sha256.clone())
            .bind(created_at.micros())
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&claimed) == 0 {
                tx.rollback().await?;
                let first = self.idempotent_result(note.owner_id, key).await?;
                let (note_id, sha256) =
                    first.ok_or_else(|| DbError::Conflict("idempotency key".into()))?;
                return Ok(InsertOutcome::Replayed { note_id, sha256 });
            }
        }
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
        .fetch_one(&mut *tx)
        .await?;
        Self::commit_effects(&mut tx, effects).await?;
        tx.commit().await?;
        Ok(InsertOutcome::Inserted {
            note: Box::new(row.try_into()?),
            blob_deleting: deleting != 0,
        })
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
        // Owned and received notes are listed by two branches, each walking an index in the
        // list's order and stopping at the end of the page, then merged. The received branch
        // walks the viewer's inbox entries by the sort keys copied into them (`CROSS JOIN`
        // keeps SQLite from starting at the notes instead).
        let mut qb = QueryBuilder::<DB>::new("SELECT v.* FROM (SELECT * FROM (");
        push_owned_branch(&mut qb, filter);
        qb.push(
            ") AS owned UNION ALL SELECT * FROM (SELECT n.* FROM inbox_entries i \
             CROSS JOIN notes n WHERE n.id = i.note_id AND i.recipient_id = ",
        );
        qb.push_bind(filter.viewer.to_string());
        push_list_conditions(&mut qb, filter, false, SortColumns::Inbox);
        push_order(&mut qb, filter, SortColumns::Inbox);
        qb.push(") AS received) AS v");
        push_order(&mut qb, filter, SortColumns::Note("v"));
        let rows: Vec<NoteRow> = qb.build_query_as().fetch_all(&self.pool).await?;
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
        Ok(failed.len() as u64)
    }
}
