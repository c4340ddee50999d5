//! Rows as both backends return them, and their conversion into the domain.

use hark_api::{JobStatus, JobStep, Loudness, NoteStatus, Role};

use hark_api::EventData;

use super::{ApiKeyRecord, DbError};
use crate::domain::{
    AudioFacts, Email, InboxEntry, JobRecord, LoggedEvent, Note, NoteId, Timestamp, User, UserId,
};

pub(super) fn corrupt(what: &str, value: &str) -> DbError {
    DbError::Corrupt(format!("{what}: {value:?}"))
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    role: String,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;

    fn try_from(row: UserRow) -> Result<User, DbError> {
        Ok(User {
            id: UserId::parse(&row.id).ok_or_else(|| corrupt("user id", &row.id))?,
            email: Email::parse(&row.email).map_err(|_| corrupt("email", &row.email))?,
            password_hash: row.password_hash,
            role: Role::parse(&row.role).ok_or_else(|| corrupt("role", &row.role))?,
            created_at: Timestamp(row.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct NoteRow {
    id: String,
    owner_id: String,
    name: String,
    title: Option<String>,
    series: Option<String>,
    format: String,
    codec: String,
    mime: String,
    duration_seconds: f64,
    sample_rate: i64,
    channels: i64,
    bitrate: i64,
    size_bytes: i64,
    sha256: String,
    status: String,
    failure_reason: Option<String>,
    tags: String,
    created_at: i64,
    renditions: String,
    loudness_lufs: Option<f64>,
    true_peak_dbtp: Option<f64>,
    correction_asked: i64,
}

impl TryFrom<NoteRow> for Note {
    type Error = DbError;

    fn try_from(row: NoteRow) -> Result<Note, DbError> {
        Ok(Note {
            id: NoteId::parse(&row.id).ok_or_else(|| corrupt("note id", &row.id))?,
            owner_id: UserId::parse(&row.owner_id)
                .ok_or_else(|| corrupt("owner id", &row.owner_id))?,
            name: row.name,
            title: row.title,
            series: row.series,
            audio: AudioFacts {
                format: row.format,
                codec: row.codec,
                mime: row.mime,
                duration_seconds: row.duration_seconds,
                sample_rate: u32::try_from(row.sample_rate).unwrap_or_default(),
                channels: u16::try_from(row.channels).unwrap_or_default(),
                bitrate: u64::try_from(row.bitrate).unwrap_or_default(),
                size_bytes: u64::try_from(row.size_bytes).unwrap_or_default(),
                sha256: row.sha256,
                tags: serde_json::from_str(&row.tags).map_err(|_| corrupt("tags", &row.tags))?,
            },
            status: NoteStatus::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
            failure_reason: row.failure_reason,
            created_at: Timestamp(row.created_at),
            renditions: serde_json::from_str(&row.renditions)
                .map_err(|_| corrupt("renditions", &row.renditions))?,
            loudness: row.loudness_lufs.zip(row.true_peak_dbtp).map(
                |(integrated_lufs, true_peak_dbtp)| Loudness {
                    integrated_lufs,
                    true_peak_dbtp,
                },
            ),
            correction_asked: row.correction_asked != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ApiKeyRow {
    id: String,
    name: String,
    prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<ApiKeyRow> for ApiKeyRecord {
    fn from(row: ApiKeyRow) -> ApiKeyRecord {
        ApiKeyRecord {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_at: Timestamp(row.created_at),
            last_used_at: row.last_used_at.map(Timestamp),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    pub(super) seq: i64,
    id: String,
    #[sqlx(rename = "type")]
    kind: String,
    payload: String,
    created_at: i64,
}

impl EventRow {
    pub(super) fn into_event(self, audience: Vec<UserId>) -> Result<LoggedEvent, DbError> {
        let payload =
            serde_json::from_str(&self.payload).map_err(|_| corrupt("payload", &self.payload))?;
        let data = EventData::from_parts(&self.kind, payload)
            .map_err(|e| corrupt("event", &format!("{}: {e}", self.kind)))?;
        Ok(LoggedEvent {
            seq: self.seq,
            id: self.id,
            created_at: Timestamp(self.created_at),
            data,
            audience,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    step: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    updated_at: i64,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = DbError;

    fn try_from(row: JobRow) -> Result<JobRecord, DbError> {
        Ok(JobRecord {
            step: JobStep::parse(&row.step).ok_or_else(|| corrupt("job step", &row.step))?,
            status: JobStatus::parse(&row.status)
                .ok_or_else(|| corrupt("job status", &row.status))?,
            attempts: u32::try_from(row.attempts).unwrap_or_default(),
            last_error: row.last_error,
            updated_at: Timestamp(row.updated_at),
        })
    }
}

/// An inbox entry with its note (`n.*`) and the entry's own columns, prefixed `inbox_`.
#[derive(sqlx::FromRow)]
pub(super) struct InboxRow {
    #[sqlx(flatten)]
    note: NoteRow,
    inbox_sender_id: String,
    inbox_sender_email: String,
    inbox_channel: Option<String>,
    inbox_delivered_at: i64,
    inbox_listened_at: Option<i64>,
    inbox_seq: i64,
}

impl TryFrom<InboxRow> for InboxEntry {
    type Error = DbError;

    fn try_from(row: InboxRow) -> Result<InboxEntry, DbError> {
        Ok(InboxEntry {
            note: row.note.try_into()?,
            sender_id: UserId::parse(&row.inbox_sender_id)
                .ok_or_else(|| corrupt("sender id", &row.inbox_sender_id))?,
            sender_email: row.inbox_sender_email,
            channel: row.inbox_channel,
            delivered_at: Timestamp(row.inbox_delivered_at),
            listened_at: row.inbox_listened_at.map(Timestamp),
            seq: row.inbox_seq,
        })
    }
}
