//! The processing queue in the metadata database. A claim is one statement that picks the note
//! whose job has waited longest and takes all of its claimable jobs under a fresh lease
//! (PostgreSQL skips rows another claim is taking; SQLite has one writer). Results are recorded
//! only by the holder of the lease, in one transaction with the note's new status and its
//! event.

use async_trait::async_trait;
use hark_api::{
    JobStatus, JobStep, NoteStatus, Rendition, TranscriptEdit, TranscriptSegment, TranscriptVersion,
};
use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Type};

use super::{Backend, ROWS_PER_STATEMENT, SqlRepo};
use crate::db::rows::{JobRow, NoteRow};
use crate::db::{DbError, EffectsOf, JobRepo};
use crate::domain::{
    Claim, Effects, Finish, Finished, JobRecord, Note, NoteId, Settled, StepOutcome,
    StoredRendition, StoredTranscript, Timestamp, UserId,
};

/// A job that a claim may take at the time bound first: queued and due, or running under an
/// expired lease.
const CLAIMABLE: &str = "((status = 'queued' AND run_after <= $1) \
     OR (status = 'running' AND lease_expires_at < $1))";

/// The step whose job makes a transcript version.
fn step_making(version: TranscriptVersion) -> JobStep {
    match version {
        TranscriptVersion::Original => JobStep::Transcribe,
        TranscriptVersion::Corrected => JobStep::Correct,
    }
}

/// A transcript's `body` column.
#[derive(Serialize, Deserialize)]
struct TranscriptBody {
    segments: Vec<TranscriptSegment>,
    #[serde(default)]
    edits: Vec<TranscriptEdit>,
}

/// The step whose job records a rendition.
fn step_of(rendition: Rendition) -> JobStep {
    match rendition {
        Rendition::Opus | Rendition::Mp3 => JobStep::Transcode,
        Rendition::Corrected => JobStep::Correct,
    }
}

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
    /// Queues every step of each note, as a new run: a step already there starts over.
    pub(super) async fn queue_pipelines(
        conn: &mut DB::Connection,
        notes: &[NoteId],
    ) -> Result<(), DbError> {
        Self::queue_steps(conn, notes, &JobStep::ALL).await
    }

    /// Queues these steps of each note, as a new run of them.
    async fn queue_steps(
        conn: &mut DB::Connection,
        notes: &[NoteId],
        steps: &[JobStep],
    ) -> Result<(), DbError> {
        let now = Timestamp::now().micros();
        let rows: Vec<(String, JobStep)> = notes
            .iter()
            .flat_map(|note| steps.iter().map(|step| (note.to_string(), *step)))
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO jobs (note_id, step, status, attempts, run_after, updated_at) ",
            );
            insert.push_values(chunk, |mut row, (note, step)| {
                row.push_bind(note.clone())
                    .push_bind(step.as_str().to_owned())
                    .push_bind(JobStatus::Queued.as_str().to_owned())
                    .push_bind(0_i64)
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(
                " ON CONFLICT (note_id, step) DO UPDATE SET status = excluded.status, \
                 attempts = 0, last_error = NULL, run_after = excluded.run_after, \
                 lease_id = NULL, lease_expires_at = NULL, updated_at = excluded.updated_at",
            );
            insert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Locks the note's jobs, in the one order every transaction that changes them takes:
    /// first of all what it locks, so two of them (a pass recording its outcomes, a deletion,
    /// a reprocess) wait for each other instead of deadlocking. Nothing where the engine has
    /// one writer at a time.
    pub(super) async fn lock_jobs(conn: &mut DB::Connection, note: NoteId) -> Result<(), DbError> {
        if DB::FOR_UPDATE.is_empty() {
            return Ok(());
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT step FROM jobs WHERE note_id = $1 ORDER BY step{}",
            DB::FOR_UPDATE
        )))
        .bind(note.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Releases every rendition of a note that is going; call before the note's row goes.
    pub(super) async fn drop_renditions(
        conn: &mut DB::Connection,
        note: NoteId,
    ) -> Result<(), DbError> {
        let mut released: Vec<String> =
            sqlx::query_scalar("DELETE FROM renditions WHERE note_id = $1 RETURNING sha256")
                .bind(note.to_string())
                .fetch_all(&mut *conn)
                .await?;
        // A note's rendition blobs are locked in the order of their keys (and its original's
        // after them): notes of the same audio share renditions, and two orders could deadlock.
        released.sort_unstable();
        for sha in released {
            Self::release_blob(conn, &sha).await?;
        }
        Ok(())
    }
}

// `NoteRow` and `JobRow` are private to `db`; the lint cannot see through `pub(super)`.
#[allow(private_bounds)]
impl<DB> SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> NoteRow: FromRow<'r, DB::Row>,
    for<'r> JobRow: FromRow<'r, DB::Row>,
{
    /// Sets a claimed job's outcome; `false` when the claim no longer holds it.
    async fn record_outcome(
        conn: &mut DB::Connection,
        claim: &Claim,
        step: JobStep,
        outcome: &StepOutcome,
        now: i64,
    ) -> Result<bool, DbError> {
        let (status, error, run_after) = match outcome {
            StepOutcome::Done => (JobStatus::Done, None, now),
            StepOutcome::Skipped(why) => (JobStatus::Skipped, Some(why.clone()), now),
            StepOutcome::Failed(why) => (JobStatus::Failed, Some(why.clone()), now),
            StepOutcome::Retry { error, retry_at } => {
                (JobStatus::Queued, Some(error.clone()), retry_at.micros())
            }
        };
        let updated = sqlx::query(
            "UPDATE jobs SET status = $1, last_error = $2, run_after = $3, lease_id = NULL, \
             lease_expires_at = NULL, updated_at = $4 \
             WHERE note_id = $5 AND step = $6 AND lease_id = $7 AND status = 'running'",
        )
        .bind(status.as_str().to_owned())
        .bind(error)
        .bind(run_after)
        .bind(now)
        .bind(claim.note.id.to_string())
        .bind(step.as_str().to_owned())
        .bind(claim.lease_id.clone())
        .execute(&mut *conn)
        .await?;
        Ok(DB::rows_affected(&updated) == 1)
    }

    /// Stores renditions in place of those of the same name, moving the blob references;
    /// answers the blobs a collector was deleting.
    async fn store_renditions(
        conn: &mut DB::Connection,
        note: NoteId,
        renditions: &[&StoredRendition],
    ) -> Result<Vec<String>, DbError> {
        let mut replaced = Vec::new();
        for rendition in renditions {
            let old: Option<String> = sqlx::query_scalar(
                "DELETE FROM renditions WHERE note_id = $1 AND name = $2 RETURNING sha256",
            )
            .bind(note.to_string())
            .bind(rendition.name.as_str().to_owned())
            .fetch_optional(&mut *conn)
            .await?;
            replaced.extend(old);
        }
        // Blob rows are taken in the order of their keys (see `drop_renditions`), and for the
        // same bytes the new reference before the old one is dropped: bytes that did not
        // change never pass through zero references.
        let mut blobs: Vec<&str> = renditions
            .iter()
            .map(|r| r.sha256.as_str())
            .chain(replaced.iter().map(String::as_str))
            .collect();
        blobs.sort_unstable();
        blobs.dedup();
        let mut being_deleted = Vec::new();
        for sha in blobs {
            for rendition in renditions.iter().filter(|r| r.sha256 == sha) {
                let deleting =
                    Self::reference_blob(conn, sha, rendition.size_bytes, Timestamp::now()).await?;
                if deleting {
                    being_deleted.push(sha.to_owned());
                }
            }
            for _ in replaced.iter().filter(|old| *old == sha) {
                Self::release_blob(conn, sha).await?;
            }
        }
        for rendition in renditions {
            sqlx::query(
                "INSERT INTO renditions (note_id, name, sha256, mime, duration_seconds, size_bytes) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(note.to_string())
            .bind(rendition.name.as_str().to_owned())
            .bind(rendition.sha256.clone())
            .bind(rendition.mime.clone())
            .bind(rendition.duration_seconds)
            .bind(rendition.size_bytes as i64)
            .execute(&mut *conn)
            .await?;
        }
        // The note's row shows them all, so reading a note needs no join.
        let all: Vec<(String, String, String, f64, i64)> = sqlx::query_as(
            "SELECT name, sha256, mime, duration_seconds, size_bytes FROM renditions \
             WHERE note_id = $1 ORDER BY name",
        )
        .bind(note.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let all: Vec<StoredRendition> = all
            .into_iter()
            .filter_map(|(name, sha256, mime, duration_seconds, size)| {
                Some(StoredRendition {
                    name: Rendition::parse(&name)?,
                    sha256,
                    mime,
                    duration_seconds,
                    size_bytes: u64::try_from(size).unwrap_or_default(),
                })
            })
            .collect();
        sqlx::query("UPDATE notes SET renditions = $1 WHERE id = $2")
            .bind(serde_json::to_string(&all).unwrap_or_else(|_| "[]".into()))
            .bind(note.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(being_deleted)
    }

    /// Locks an owned note's jobs and makes it `pending` again, with the assignments in `also`
    /// (each followed by a comma); `false` when the owner has no such note.
    async fn reopen_owned(
        conn: &mut DB::Connection,
        note: NoteId,
        owner: UserId,
        also: &'static str,
    ) -> Result<bool, DbError> {
        Self::lock_jobs(conn, note).await?;
        let owned: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE notes SET {also}status = 'pending', failure_reason = NULL \
             WHERE id = $1 AND owner_id = $2 RETURNING id"
        )))
        .bind(note.to_string())
        .bind(owner.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        Ok(owned.is_some())
    }

    /// Replaces the note's transcript of `version` with `made` (none: removes it).
    async fn store_transcript(
        conn: &mut DB::Connection,
        note: NoteId,
        version: TranscriptVersion,
        made: Option<&StoredTranscript>,
    ) -> Result<(), DbError> {
        sqlx::query("DELETE FROM transcripts WHERE note_id = $1 AND version = $2")
            .bind(note.to_string())
            .bind(version.as_str().to_owned())
            .execute(&mut *conn)
            .await?;
        let Some(made) = made else {
            return Ok(());
        };
        let body = TranscriptBody {
            segments: made.segments.clone(),
            edits: made.edits.clone(),
        };
        sqlx::query(
            "INSERT INTO transcripts (note_id, version, model, language, duration_seconds, \
             text, body, search_words) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(note.to_string())
        .bind(version.as_str().to_owned())
        .bind(made.model.clone())
        .bind(made.language.clone())
        .bind(made.duration_seconds)
        .bind(made.text.clone())
        .bind(serde_json::to_string(&body).map_err(|e| DbError::Corrupt(e.to_string()))?)
        .bind(made.search_words())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The note's jobs, in pipeline order.
    async fn jobs_in(conn: &mut DB::Connection, note: NoteId) -> Result<Vec<JobRecord>, DbError> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT step, status, attempts, last_error, updated_at FROM jobs WHERE note_id = $1",
        )
        .bind(note.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut jobs: Vec<JobRecord> = rows
            .into_iter()
            .map(JobRecord::try_from)
            .collect::<Result<_, _>>()?;
        jobs.sort_by_key(|job| job.step);
        Ok(jobs)
    }

    /// The status the note's jobs add up to: failed as soon as one failed, ready once every
    /// one is final, processing until then.
    async fn settle(
        conn: &mut DB::Connection,
        note: NoteId,
        effects: &EffectsOf<'_, Settled>,
    ) -> Result<(), DbError> {
        let current: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT status FROM notes WHERE id = $1{}",
            DB::FOR_UPDATE
        )))
        .bind(note.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(from) = current.as_deref().and_then(NoteStatus::parse) else {
            return Ok(());
        };
        let jobs = Self::jobs_in(conn, note).await?;
        let failed = jobs
            .iter()
            .filter(|job| job.status == JobStatus::Failed)
            .min_by_key(|job| job.step);
        let (status, reason) = match failed {
            Some(job) => (
                NoteStatus::Failed,
                Some(job.last_error.clone().unwrap_or_default()),
            ),
            None if jobs.iter().all(|job| job.status.is_final()) => (NoteStatus::Ready, None),
            None => (NoteStatus::Processing, None),
        };
        // A failed note stays failed (the reconciler may have failed it for a missing blob)
        // until a reprocess starts a new run.
        if status == from || from == NoteStatus::Failed {
            return Ok(());
        }
        let row: NoteRow = sqlx::query_as(
            "UPDATE notes SET status = $1, failure_reason = $2 WHERE id = $3 RETURNING *",
        )
        .bind(status.as_str().to_owned())
        .bind(reason)
        .bind(note.to_string())
        .fetch_one(&mut *conn)
        .await?;
        let note: Note = row.try_into()?;
        let recipients: Vec<String> =
            sqlx::query_scalar("SELECT recipient_id FROM inbox_entries WHERE note_id = $1")
                .bind(note.id.to_string())
                .fetch_all(&mut *conn)
                .await?;
        let recipients = recipients
            .iter()
            .filter_map(|id| UserId::parse(id))
            .collect();
        let settled = Settled {
            note,
            from,
            recipients,
        };
        Self::commit_effects(conn, &effects(&settled)).await
    }
}

#[async_trait]
#[allow(private_bounds)]
impl<DB> JobRepo for SqlRepo<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> NoteRow: FromRow<'r, DB::Row>,
    for<'r> JobRow: FromRow<'r, DB::Row>,
{
    async fn claim_jobs(&self, lease_until: Timestamp) -> Result<Option<Claim>, DbError> {
        let lease_id = uuid::Uuid::now_v7().to_string();
        let now = Timestamp::now().micros();
        let pick = format!("SELECT note_id FROM jobs WHERE {CLAIMABLE} ORDER BY run_after LIMIT 1");
        let take = |note: &str| {
            format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_id = $2, \
                 lease_expires_at = $3, updated_at = $1 WHERE note_id = {note} AND {CLAIMABLE} \
                 RETURNING note_id, step, attempts"
            )
        };
        let (mut tx, claimed) = loop {
            let mut tx = self.pool.begin().await?;
            // One writer at a time (no row locks): the statement that takes the jobs picks
            // their note. Otherwise the pick locks nothing, since a row locked there, before
            // the note's lower steps, would be out of the one order in which deletions and
            // passes lock them; another claim may take the note meanwhile, and then none of
            // its jobs is claimable once they are locked here and the next pick passes it by.
            let picked = if DB::FOR_UPDATE.is_empty() {
                None
            } else {
                let picked: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(pick.clone()))
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(note) = picked.as_deref().and_then(NoteId::parse) else {
                    return Ok(None);
                };
                Self::lock_jobs(&mut tx, note).await?;
                Some(note)
            };
            let statement = match picked {
                Some(_) => take("$4"),
                None => take(&format!("({pick})")),
            };
            let mut taking =
                sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(statement))
                    .bind(now)
                    .bind(lease_id.clone())
                    .bind(lease_until.micros());
            if let Some(note) = picked {
                taking = taking.bind(note.to_string());
            }
            let claimed = taking.fetch_all(&mut *tx).await?;
            if !claimed.is_empty() || picked.is_none() {
                break (tx, claimed);
            }
        };
        let Some((note_id, _, _)) = claimed.first() else {
            return Ok(None);
        };
        let row: NoteRow = sqlx::query_as(
            "UPDATE notes SET status = CASE WHEN status = 'pending' THEN 'processing' \
             ELSE status END WHERE id = $1 RETURNING *",
        )
        .bind(note_id.clone())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut steps: Vec<(JobStep, u32)> = claimed
            .iter()
            .filter_map(|(_, step, attempts)| {
                Some((JobStep::parse(step)?, u32::try_from(*attempts).ok()?))
            })
            .collect();
        steps.sort();
        Ok(Some(Claim {
            lease_id,
            note: row.try_into()?,
            steps,
        }))
    }

    async fn extend_lease(&self, claim: &Claim, until: Timestamp) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        // An update alone would lock the lease's rows in the order it finds them.
        Self::lock_jobs(&mut tx, claim.note.id).await?;
        let extended = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1 \
             WHERE note_id = $2 AND lease_id = $3 AND status = 'running'",
        )
        .bind(until.micros())
        .bind(claim.note.id.to_string())
        .bind(claim.lease_id.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&extended) > 0)
    }

    async fn finish_jobs(
        &self,
        claim: &Claim,
        finish: &Finish,
        effects: &EffectsOf<'_, Settled>,
    ) -> Result<Finished, DbError> {
        let now = Timestamp::now().micros();
        let mut tx = self.pool.begin().await?;
        Self::lock_jobs(&mut tx, claim.note.id).await?;
        let mut recorded = Vec::new();
        for (step, outcome) in &finish.outcomes {
            if Self::record_outcome(&mut tx, claim, *step, outcome, now).await? {
                recorded.push(*step);
            }
        }
        if recorded.is_empty() {
            tx.rollback().await?;
            return Ok(Finished {
                recorded,
                blobs_being_deleted: Vec::new(),
            });
        }
        let note = claim.note.id;
        let renditions: Vec<&StoredRendition> = finish
            .renditions
            .iter()
            .filter(|r| recorded.contains(&step_of(r.name)))
            .collect();
        let blobs_being_deleted = if renditions.is_empty() {
            Vec::new()
        } else {
            Self::store_renditions(&mut tx, note, &renditions).await?
        };
        if let Some(waveform) = finish
            .waveform
            .as_ref()
            .filter(|_| recorded.contains(&JobStep::Waveform))
        {
            sqlx::query(
                "INSERT INTO waveforms (note_id, data) VALUES ($1, $2) \
                 ON CONFLICT (note_id) DO UPDATE SET data = excluded.data",
            )
            .bind(note.to_string())
            .bind(waveform.clone())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(loudness) = finish
            .loudness
            .filter(|_| recorded.contains(&JobStep::Loudness))
        {
            sqlx::query("UPDATE notes SET loudness_lufs = $1, true_peak_dbtp = $2 WHERE id = $3")
                .bind(loudness.map(|l| l.integrated_lufs))
                .bind(loudness.map(|l| l.true_peak_dbtp))
                .bind(note.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for version in TranscriptVersion::ALL {
            if recorded.contains(&step_making(version)) {
                let made = finish.transcripts.iter().find(|t| t.version == version);
                Self::store_transcript(&mut tx, note, version, made).await?;
            }
        }
        Self::settle(&mut tx, note, effects).await?;
        tx.commit().await?;
        self.announce_commit();
        Ok(Finished {
            recorded,
            blobs_being_deleted,
        })
    }

    async fn jobs_of(&self, note: NoteId) -> Result<Vec<JobRecord>, DbError> {
        let mut conn = self.pool.acquire().await?;
        Self::jobs_in(&mut conn, note).await
    }

    async fn restart_jobs(&self, note: NoteId, owner: UserId) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        if !Self::reopen_owned(&mut tx, note, owner, "").await? {
            return Ok(false);
        }
        Self::commit_effects(&mut tx, &Effects::none().pipeline(note)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ask_correction(&self, note: NoteId, owner: UserId) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        if !Self::reopen_owned(&mut tx, note, owner, "correction_asked = 1, ").await? {
            return Ok(false);
        }
        let transcribed: Option<String> = sqlx::query_scalar(
            "SELECT status FROM jobs WHERE note_id = $1 AND step = 'transcribe'",
        )
        .bind(note.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let steps: &[JobStep] = if transcribed.as_deref() == Some(JobStatus::Done.as_str()) {
            &[JobStep::Correct]
        } else {
            &[JobStep::Transcribe, JobStep::Correct]
        };
        Self::queue_steps(&mut tx, &[note], steps).await?;
        tx.commit().await?;
        self.announce_commit();
        Ok(true)
    }

    async fn transcripts(
        &self,
        notes: &[NoteId],
        version: TranscriptVersion,
    ) -> Result<Vec<(NoteId, StoredTranscript)>, DbError> {
        let mut found = Vec::new();
        for chunk in notes.chunks(ROWS_PER_STATEMENT) {
            let mut select = QueryBuilder::<DB>::new(
                "SELECT note_id, model, language, duration_seconds, text, body \
                 FROM transcripts WHERE version = ",
            );
            select
                .push_bind(version.as_str().to_owned())
                .push(" AND note_id IN (");
            let mut ids = select.separated(", ");
            for note in chunk {
                ids.push_bind(note.to_string());
            }
            select.push(")");
            let rows: Vec<(String, String, String, f64, String, String)> =
                select.build_query_as().fetch_all(&self.pool).await?;
            for (note_id, model, language, duration_seconds, text, body) in rows {
                let note = NoteId::parse(&note_id)
                    .ok_or_else(|| DbError::Corrupt(format!("transcript of note {note_id}")))?;
                let body: TranscriptBody = serde_json::from_str(&body)
                    .map_err(|e| DbError::Corrupt(format!("transcript of note {note_id}: {e}")))?;
                found.push((
                    note,
                    StoredTranscript {
                        version,
                        model,
                        language,
                        duration_seconds,
                        text,
                        segments: body.segments,
                        edits: body.edits,
                    },
                ));
            }
        }
        Ok(found)
    }

    async fn waveform(&self, note: NoteId) -> Result<Option<String>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT data FROM waveforms WHERE note_id = $1")
                .bind(note.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn queue_depth(&self) -> Result<i64, DbError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'queued'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
