//! The SQL both backends run. SQLite and PostgreSQL accept the same statements here (`$n`
//! placeholders, `RETURNING`, `ON CONFLICT`, row values), so one body is expanded for each
//! backend's concrete pool type instead of being written twice.

/// Implements every repository trait for `$repo`, whose `pool` field is a `sqlx::Pool<$db>`.
macro_rules! sql_repository {
    ($repo:ident, $db:ty) => {
        use async_trait::async_trait;
        use hark_api::Role;
        use sqlx::QueryBuilder;

        use super::rows::{ApiKeyRow, EventRow, NOTE_COLUMNS, NoteRow, UserRow, note_columns};
        use super::{
            ApiKeyRecord, ApiKeyRepo, BlobIndex, BlobRemoval, DbError, EventLog, Health,
            InsertOutcome, NewApiKeyRecord, NewUser, NoteFilter, NoteRepo, SortKey, UserRepo,
            like_pattern, unique_violation,
        };
        use crate::domain::event::Event;
        use crate::domain::ids::ApiKeyId;
        use crate::domain::{EventType, NewEvent, NewNote, Note, NoteId, Timestamp, User, UserId};

        type Tx = sqlx::Transaction<'static, $db>;

        /// Appends an event and its audience inside the caller's transaction (the outbox).
        async fn append_event(tx: &mut Tx, event: NewEvent) -> Result<i64, DbError> {
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO events (id, type, note_id, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(event.kind.as_str())
            .bind(event.note_id.map(|id| id.to_string()))
            .bind(event.payload.to_string())
            .bind(Timestamp::now().micros())
            .fetch_one(&mut **tx)
            .await?;
            for user in event.audience {
                sqlx::query("INSERT INTO event_audience (user_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(user.to_string())
                    .bind(seq)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(seq)
        }

        /// Drops one reference on a blob; at zero it becomes the collector's.
        async fn release_blob(tx: &mut Tx, sha256: &str) -> Result<(), DbError> {
            sqlx::query(
                "UPDATE blobs SET refcount = refcount - 1, \
                 orphaned_at = CASE WHEN refcount - 1 <= 0 THEN $2 ELSE orphaned_at END \
                 WHERE sha256 = $1",
            )
            .bind(sha256)
            .bind(Timestamp::now().micros())
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Deletes a note row with its inbox entries, releases its blob and appends
        /// `note.deleted` to the owner and every recipient. Writes come first: on SQLite that
        /// takes the write lock at once instead of upgrading a read lock later.
        async fn delete_note_in(tx: &mut Tx, id: &str, owner: UserId) -> Result<bool, DbError> {
            let recipients: Vec<String> = sqlx::query_scalar(
                "DELETE FROM inbox_entries WHERE note_id = $1 \
                 AND EXISTS (SELECT 1 FROM notes WHERE id = $1 AND owner_id = $2) RETURNING recipient_id",
            )
            .bind(id)
            .bind(owner.to_string())
            .fetch_all(&mut **tx)
            .await?;
            let sha: Option<String> =
                sqlx::query_scalar("DELETE FROM notes WHERE id = $1 AND owner_id = $2 RETURNING sha256")
                    .bind(id)
                    .bind(owner.to_string())
                    .fetch_optional(&mut **tx)
                    .await?;
            let Some(sha) = sha else { return Ok(false) };
            release_blob(tx, &sha).await?;
            let mut audience = vec![owner];
            audience.extend(recipients.iter().filter_map(|r| UserId::parse(r)));
            let note_id = NoteId::parse(id);
            append_event(tx, NewEvent {
                kind: EventType::NoteDeleted,
                note_id,
                audience,
                payload: serde_json::json!({ "note_id": id }),
            })
            .await?;
            Ok(true)
        }

        /// Appends the conditions every list branch shares: filters and the cursor.
        fn push_list_conditions(qb: &mut QueryBuilder<'_, $db>, filter: &NoteFilter) {
            if let Some(max) = filter.max_duration {
                qb.push(" AND n.duration_seconds <= ").push_bind(max);
            }
            if let Some(min) = filter.min_duration {
                qb.push(" AND n.duration_seconds >= ").push_bind(min);
            }
            if let Some(name) = &filter.name_contains {
                qb.push(" AND n.name_folded LIKE ").push_bind(like_pattern(name)).push(" ESCAPE '\\'");
            }
            if let Some(sender) = filter.sender {
                qb.push(" AND n.owner_id = ").push_bind(sender.to_string());
            }
            if let Some(channel) = &filter.channel {
                qb.push(" AND EXISTS (SELECT 1 FROM inbox_entries c WHERE c.note_id = n.id AND c.channel = ")
                    .push_bind(channel.clone())
                    .push(")");
            }
            if let Some(status) = &filter.status {
                qb.push(" AND n.status = ").push_bind(status.clone());
            }
            if let Some(format) = &filter.format {
                qb.push(" AND n.format = ").push_bind(format.clone());
            }
            if let Some(after) = filter.created_after {
                qb.push(" AND n.created_at > ").push_bind(after.micros());
            }
            if let Some(before) = filter.created_before {
                qb.push(" AND n.created_at < ").push_bind(before.micros());
            }
            if let Some((key, id)) = &filter.after {
                let op = if filter.sort.descending() { "<" } else { ">" };
                qb.push(format_args!(" AND (n.{}, n.id) {op} (", filter.sort.column()));
                match key {
                    SortKey::Created(v) => qb.push_bind(*v),
                    SortKey::Duration(v) => qb.push_bind(*v),
                    SortKey::Name(v) => qb.push_bind(v.clone()),
                };
                qb.push(", ").push_bind(id.to_string()).push(")");
            }
        }

        fn push_order(qb: &mut QueryBuilder<'_, $db>, filter: &NoteFilter, alias: &str) {
            let dir = if filter.sort.descending() { "DESC" } else { "ASC" };
            qb.push(format_args!(
                " ORDER BY {alias}.{col} {dir}, {alias}.id {dir} LIMIT ",
                col = filter.sort.column()
            ))
            .push_bind(i64::from(filter.limit));
        }

        #[async_trait]
        impl UserRepo for $repo {
            #[tracing::instrument(skip_all)]
            async fn create_user(&self, user: NewUser) -> Result<User, DbError> {
                let row: UserRow = sqlx::query_as(
                    "INSERT INTO users (id, email, password_hash, role, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id, email, password_hash, role, created_at",
                )
                .bind(user.id.to_string())
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(user.role.as_str())
                .bind(user.created_at.micros())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| if unique_violation(&e) { DbError::Conflict("email".into()) } else { e.into() })?;
                row.try_into()
            }

            async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
                let row: Option<UserRow> = sqlx::query_as(
                    "SELECT id, email, password_hash, role, created_at FROM users WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
                let row: Option<UserRow> = sqlx::query_as(
                    "SELECT id, email, password_hash, role, created_at FROM users WHERE email = $1",
                )
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_users(&self) -> Result<Vec<User>, DbError> {
                let rows: Vec<UserRow> = sqlx::query_as(
                    "SELECT id, email, password_hash, role, created_at FROM users ORDER BY created_at, id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn set_password(&self, id: UserId, password_hash: &str) -> Result<bool, DbError> {
                let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_role(&self, id: UserId, role: Role) -> Result<bool, DbError> {
                let done = sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(role.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            #[tracing::instrument(skip_all, fields(user = %id))]
            async fn delete_user(&self, id: UserId) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM api_keys WHERE user_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let notes: Vec<String> = sqlx::query_scalar("SELECT id FROM notes WHERE owner_id = $1")
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await?;
                for note in notes {
                    delete_note_in(&mut tx, &note, id).await?;
                }
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl ApiKeyRepo for $repo {
            async fn create_api_key(&self, key: NewApiKeyRecord) -> Result<ApiKeyRecord, DbError> {
                let row: ApiKeyRow = sqlx::query_as(
                    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, name, prefix, created_at, last_used_at",
                )
                .bind(key.id.to_string())
                .bind(key.user_id.to_string())
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(&key.key_hash)
                .bind(key.created_at.micros())
                .fetch_one(&self.pool)
                .await?;
                Ok(row.into())
            }

            async fn list_api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRecord>, DbError> {
                let rows: Vec<ApiKeyRow> = sqlx::query_as(
                    "SELECT id, name, prefix, created_at, last_used_at FROM api_keys \
                     WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn delete_api_key(&self, user: UserId, id: ApiKeyId) -> Result<bool, DbError> {
                let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, DbError> {
                let found: Option<(String, Option<i64>)> =
                    sqlx::query_as("SELECT user_id, last_used_at FROM api_keys WHERE key_hash = $1")
                        .bind(key_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                let now = Timestamp::now();
                // Record the use at most once a minute: reads must not each cost a write.
                if let Some((_, last_used)) = &found
                    && last_used.is_none_or(|t| t < now.plus_seconds(-60).micros())
                {
                    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1")
                        .bind(key_hash)
                        .bind(now.micros())
                        .execute(&self.pool)
                        .await?;
                }
                let user_id = found.map(|(id, _)| id);
                match user_id.as_deref().and_then(UserId::parse) {
                    Some(id) => self.user_by_id(id).await,
                    None => Ok(None),
                }
            }
        }

        #[async_trait]
        impl NoteRepo for $repo {
            #[tracing::instrument(skip_all, fields(note = %note.id))]
            async fn insert_note(&self, note: &NewNote, idempotency_key: Option<&str>) -> Result<InsertOutcome, DbError> {
                let mut tx = self.pool.begin().await?;
                // The note's instant is taken here, once its bytes are durable, so that notes
                // become visible in the order of their timestamps as far as one clock allows.
                let created_at = Timestamp::now();
                // First the blob reference: it waits for a collector holding the same blob.
                sqlx::query(
                    "INSERT INTO blobs (sha256, size_bytes, refcount, created_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1, orphaned_at = NULL",
                )
                .bind(&note.sha256)
                .bind(note.size_bytes as i64)
                .bind(created_at.micros())
                .execute(&mut *tx)
                .await?;
                if let Some(key) = idempotency_key {
                    let claimed = sqlx::query(
                        "INSERT INTO idempotency_keys (user_id, key, note_id, sha256, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO NOTHING",
                    )
                    .bind(note.owner_id.to_string())
                    .bind(key)
                    .bind(note.id.to_string())
                    .bind(&note.sha256)
                    .bind(created_at.micros())
                    .execute(&mut *tx)
                    .await?;
                    if claimed.rows_affected() == 0 {
                        tx.rollback().await?;
                        let first = self.idempotent_result(note.owner_id, key).await?;
                        let (note_id, sha256) = first.ok_or_else(|| DbError::Conflict("idempotency key".into()))?;
                        return Ok(InsertOutcome::Replayed { note_id, sha256 });
                    }
                }
                let row: NoteRow = sqlx::query_as(&format!(
                    "INSERT INTO notes ({cols}, name_folded) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
                     RETURNING {cols}",
                    cols = NOTE_COLUMNS.join(", ")
                ))
                .bind(note.id.to_string())
                .bind(note.owner_id.to_string())
                .bind(&note.name)
                .bind(&note.title)
                .bind(&note.series)
                .bind(&note.format)
                .bind(&note.codec)
                .bind(&note.mime)
                .bind(note.duration_seconds)
                .bind(i64::from(note.sample_rate))
                .bind(i64::from(note.channels))
                .bind(note.bitrate as i64)
                .bind(note.size_bytes as i64)
                .bind(&note.sha256)
                .bind(hark_api::NoteStatus::Pending.as_str())
                .bind(None::<String>)
                .bind(serde_json::to_string(&note.tags).unwrap_or_else(|_| "{}".into()))
                .bind(created_at.micros())
                .bind(note.name.to_lowercase())
                .fetch_one(&mut *tx)
                .await?;
                append_event(&mut tx, NewEvent {
                    kind: EventType::NoteCreated,
                    note_id: Some(note.id),
                    audience: vec![note.owner_id],
                    payload: serde_json::json!({ "note_id": note.id.to_string(), "name": note.name }),
                })
                .await?;
                tx.commit().await?;
                Ok(InsertOutcome::Inserted(Box::new(row.try_into()?)))
            }

            async fn note_for_viewer(&self, id: NoteId, viewer: UserId) -> Result<Option<Note>, DbError> {
                let row: Option<NoteRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM notes n WHERE n.id = $1 AND (n.owner_id = $2 OR EXISTS \
                     (SELECT 1 FROM inbox_entries i WHERE i.note_id = n.id AND i.recipient_id = $2))",
                    note_columns("n")
                ))
                .bind(id.to_string())
                .bind(viewer.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn note_by_id(&self, id: NoteId) -> Result<Option<Note>, DbError> {
                let row: Option<NoteRow> =
                    sqlx::query_as(&format!("SELECT {} FROM notes n WHERE n.id = $1", note_columns("n")))
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn newest_named(&self, viewer: UserId, name: &str) -> Result<Option<Note>, DbError> {
                let row: Option<NoteRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM notes n WHERE n.name = $2 AND (n.owner_id = $1 OR EXISTS \
                     (SELECT 1 FROM inbox_entries i WHERE i.note_id = n.id AND i.recipient_id = $1)) \
                     ORDER BY n.created_at DESC, n.id DESC LIMIT 1",
                    note_columns("n")
                ))
                .bind(viewer.to_string())
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn idempotent_result(&self, user: UserId, key: &str) -> Result<Option<(NoteId, String)>, DbError> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT note_id, sha256 FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                )
                .bind(user.to_string())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(id, sha)| NoteId::parse(&id).map(|id| (id, sha))))
            }

            #[tracing::instrument(skip_all)]
            async fn list_notes(&self, filter: &NoteFilter) -> Result<Vec<Note>, DbError> {
                // Owned and received notes are listed by two index-friendly branches, each
                // already ordered and limited, then merged.
                let cols = note_columns("n");
                let viewer = filter.viewer.to_string();
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {} FROM (SELECT * FROM (SELECT {cols} FROM notes n WHERE n.owner_id = ", note_columns("v")));
                qb.push_bind(viewer.clone());
                push_list_conditions(&mut qb, filter);
                push_order(&mut qb, filter, "n");
                qb.push(format_args!(
                    ") AS owned UNION ALL SELECT * FROM (SELECT {cols} FROM notes n \
                     JOIN inbox_entries i ON i.note_id = n.id WHERE i.recipient_id = "
                ));
                qb.push_bind(viewer);
                push_list_conditions(&mut qb, filter);
                push_order(&mut qb, filter, "n");
                qb.push(") AS received) AS v");
                push_order(&mut qb, filter, "v");
                let rows: Vec<NoteRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            #[tracing::instrument(skip_all, fields(note = %id))]
            async fn delete_note(&self, id: NoteId, owner: UserId) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                let deleted = delete_note_in(&mut tx, &id.to_string(), owner).await?;
                tx.commit().await?;
                Ok(deleted)
            }

            async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64, DbError> {
                let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(before.micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn fail_notes_of_blob(&self, sha256: &str, reason: &str) -> Result<u64, DbError> {
                let mut tx = self.pool.begin().await?;
                let failed: Vec<(String, String)> = sqlx::query_as(
                    "UPDATE notes SET status = 'failed', failure_reason = $2 \
                     WHERE sha256 = $1 AND status <> 'failed' RETURNING id, owner_id",
                )
                .bind(sha256)
                .bind(reason)
                .fetch_all(&mut *tx)
                .await?;
                for (id, owner) in &failed {
                    append_event(&mut tx, NewEvent {
                        kind: EventType::NoteFailed,
                        note_id: NoteId::parse(id),
                        audience: UserId::parse(owner).into_iter().collect(),
                        payload: serde_json::json!({ "note_id": id, "reason": reason }),
                    })
                    .await?;
                }
                tx.commit().await?;
                Ok(failed.len() as u64)
            }
        }

        #[async_trait]
        impl BlobIndex for $repo {
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

            async fn collect_blob(&self, sha256: &str, remove: BlobRemoval<'_>) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                let gone = sqlx::query("DELETE FROM blobs WHERE sha256 = $1 AND refcount = 0")
                    .bind(sha256)
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() == 0 {
                    return Ok(false);
                }
                remove.await.map_err(DbError::BlobRemoval)?;
                tx.commit().await?;
                Ok(true)
            }

            async fn collect_unknown_blob(&self, sha256: &str, remove: BlobRemoval<'_>) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                // A placeholder row takes the same lock an upload's reference takes: an upload
                // of these bytes either committed first (no placeholder, the file stays) or
                // waits for this transaction and then writes the bytes again.
                let claimed = sqlx::query(
                    "INSERT INTO blobs (sha256, size_bytes, refcount, created_at, orphaned_at) \
                     VALUES ($1, 0, 0, $2, $2) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(sha256)
                .bind(Timestamp::now().micros())
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() == 0 {
                    return Ok(false);
                }
                remove.await.map_err(DbError::BlobRemoval)?;
                sqlx::query("DELETE FROM blobs WHERE sha256 = $1").bind(sha256).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn blob_known(&self, sha256: &str) -> Result<bool, DbError> {
                let found: Option<i64> = sqlx::query_scalar("SELECT refcount FROM blobs WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(found.is_some())
            }

            async fn referenced_blobs(&self, after: &str, created_before: Timestamp, limit: i64) -> Result<Vec<String>, DbError> {
                Ok(sqlx::query_scalar(
                    "SELECT sha256 FROM blobs WHERE refcount > 0 AND sha256 > $1 AND created_at < $2 \
                     ORDER BY sha256 LIMIT $3",
                )
                .bind(after)
                .bind(created_before.micros())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }
        }

        #[async_trait]
        impl EventLog for $repo {
            async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<Event>, DbError> {
                let rows: Vec<EventRow> = sqlx::query_as(
                    "SELECT seq, id, type, note_id, payload, created_at FROM events \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let last = rows.last().map_or(seq, EventRow::seq);
                let audience: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT seq, user_id FROM event_audience WHERE seq > $1 AND seq <= $2",
                )
                .bind(seq)
                .bind(last)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let users = audience.iter().filter(|(s, _)| *s == row.seq()).map(|(_, u)| u.clone()).collect();
                        row.into_event(users)
                    })
                    .collect())
            }
        }

        #[async_trait]
        impl Health for $repo {
            async fn ping(&self) -> Result<(), DbError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

pub(super) use sql_repository;
