//! Ingest: an upload becomes a note. Spool to a temporary file (size caps, hash), verify the
//! client's digest, probe the bytes, then commit: blob first (durable before the row), then the
//! row with its event. Any failure on the way leaves no note, and the spool file goes when dropped.

mod committer;
mod spool;

use std::path::PathBuf;
use std::sync::Arc;

use hark_audio::ProbeError;

use crate::blob::{BlobError, BlobKey, BlobStore};
use crate::db::{DbError, EffectsOf, InsertOutcome, NoteInsert, Repos};
use crate::domain::{AudioFacts, NewNote, Note, NoteId, NoteName, UserId};
use crate::maintenance::restore_collected_blob;
use crate::metrics::PROBE_FAILURES;

pub use committer::Committer;
pub use spool::{Spooled, spool};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the upload exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the audio lasts {duration:.1} s; at most {limit} s are accepted")]
    TooLong { duration: f64, limit: f64 },
    #[error("unsupported audio: {detected}")]
    Unsupported { detected: String },
    #[error("the body's SHA-256 is {actual}, not the {expected} that Content-Digest declares")]
    ChecksumMismatch { expected: String, actual: String },
    #[error("the body is not valid gzip: {0}")]
    BadEncoding(String),
    #[error("the upload was interrupted: {0}")]
    Body(String),
    #[error("Idempotency-Key {0:?} was already used for a different upload")]
    IdempotencyKeyReused(String),
    #[error("the note first created with this Idempotency-Key has since been deleted")]
    ReplayedNoteGone,
    #[error("invalid field: {0}")]
    Invalid(String),
    /// The uploader's account was deleted since their token was issued.
    #[error("invalid token: unknown user")]
    UnknownOwner,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("ingest I/O: {0}")]
    Io(std::io::Error),
}

/// Fields that travel with an upload, from the query string or form fields.
#[derive(Debug, Default, Clone)]
pub struct UploadFields {
    pub name: Option<String>,
    pub title: Option<String>,
    pub series: Option<String>,
    /// Correction asked for (`correct=true`).
    pub correct: bool,
}

impl UploadFields {
    /// Refuses values no note can take, as `commit` would: for the query's fields, which a
    /// form field may replace before the commit sees them.
    pub fn check(&self) -> Result<(), IngestError> {
        if let Some(name) = &self.name {
            NoteName::parse(name).map_err(IngestError::Invalid)?;
        }
        clean_text(self.title.as_deref(), "title")?;
        clean_text(self.series.as_deref(), "series")?;
        Ok(())
    }
}

/// Everything about an upload besides its bytes.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub owner: UserId,
    pub fields: UploadFields,
    pub idempotency_key: Option<String>,
    /// From `Content-Digest: sha-256=:...:`.
    pub expected_sha256: Option<[u8; 32]>,
    /// The body's hash as it travelled (before gunzip, the whole form), when a digest is given.
    pub wire_sha256: Option<[u8; 32]>,
}

/// A committed upload: a new note, or the first result of a retried one.
#[derive(Debug)]
pub struct Ingested {
    pub note: Note,
    pub replayed: bool,
}

#[derive(Clone)]
pub struct Ingest {
    pub repos: Repos,
    /// Commits notes in batches (group commit).
    pub committer: Committer,
    pub store: Arc<dyn BlobStore>,
    pub tmp_dir: PathBuf,
    pub max_bytes: u64,
    pub max_duration_seconds: f64,
}

impl Ingest {
    /// Turns a spooled body into a note, committing `effects` of it in the same transaction.
    #[tracing::instrument(skip_all, fields(owner = %request.owner, size = spooled.size))]
    pub async fn commit(
        &self,
        mut spooled: Spooled,
        request: UploadRequest,
        effects: &EffectsOf<'_, NewNote>,
    ) -> Result<Ingested, IngestError> {
        let sha256 = spooled.sha256_hex();
        if let Some(expected) = request.expected_sha256
            && expected != spooled.sha256
            && request.wire_sha256 != Some(expected)
        {
            return Err(IngestError::ChecksumMismatch {
                expected: hex::encode(expected),
                actual: sha256,
            });
        }
        if let Some(key) = &request.idempotency_key
            && let Some((note_id, first_sha)) = self
                .repos
                .notes
                .idempotent_result(request.owner, key)
                .await?
        {
            return self
                .replay(request.owner, key, note_id, &first_sha, &sha256)
                .await;
        }
        let info = probed_audio(spooled.take_audio())?;
        if info.duration_seconds > self.max_duration_seconds {
            return Err(IngestError::TooLong {
                duration: info.duration_seconds,
                limit: self.max_duration_seconds,
            });
        }
        let new = self.new_note(&request, &spooled, info)?;
        let key = BlobKey::parse(&sha256)?;
        // Durable with the rest of its batch, before the batch's transaction commits.
        self.store.put_file_unsynced(&key, &spooled.path).await?;
        let insert = NoteInsert {
            effects: effects(&new),
            note: new,
            idempotency_key: request.idempotency_key.clone(),
        };
        let committed = match self.committer.commit(insert).await {
            Err(DbError::MissingReference(_)) => return Err(IngestError::UnknownOwner),
            other => other?,
        };
        match committed {
            InsertOutcome::Inserted {
                note,
                blob_deleting,
            } => {
                if blob_deleting {
                    // The spool file still holds the bytes.
                    restore_collected_blob::<IngestError>(
                        &self.repos,
                        self.store.as_ref(),
                        &key,
                        &spooled.path,
                    )
                    .await?;
                }
                Ok(Ingested {
                    note: *note,
                    replayed: false,
                })
            }
            InsertOutcome::Replayed {
                note_id,
                sha256: first_sha,
            } => {
                let key = request.idempotency_key.as_deref().unwrap_or_default();
                self.replay(request.owner, key, note_id, &first_sha, &sha256)
                    .await
            }
        }
    }

    async fn replay(
        &self,
        owner: UserId,
        key: &str,
        note_id: NoteId,
        first_sha: &str,
        sha: &str,
    ) -> Result<Ingested, IngestError> {
        if first_sha != sha {
            return Err(IngestError::IdempotencyKeyReused(key.to_owned()));
        }
        let note = self.repos.notes.note_for_viewer(note_id, owner).await?;
        let note = note.ok_or(IngestError::ReplayedNoteGone)?;
        Ok(Ingested {
            note,
            replayed: true,
        })
    }

    fn new_note(
        &self,
        request: &UploadRequest,
        spooled: &Spooled,
        info: hark_audio::AudioInfo,
    ) -> Result<NewNote, IngestError> {
        let id = NoteId::generate();
        let name = match request.fields.name.as_deref() {
            Some(raw) => NoteName::parse(raw)
                .map_err(IngestError::Invalid)?
                .map(NoteName::into_string),
            None => None,
        };
        let tags = info.tags;
        Ok(NewNote {
            id,
            owner_id: request.owner,
            name: name.unwrap_or_else(|| format!("{id}.{}", info.format.extension())),
            title: clean_text(request.fields.title.as_deref(), "title")?,
            series: clean_text(request.fields.series.as_deref(), "series")?,
            correction_asked: request.fields.correct,
            audio: AudioFacts {
                format: info.format.name().to_owned(),
                codec: info.codec,
                mime: info.format.mime().to_owned(),
                duration_seconds: info.duration_seconds,
                sample_rate: info.sample_rate,
                channels: info.channels,
                bitrate: info.bitrate,
                size_bytes: spooled.size,
                sha256: spooled.sha256_hex(),
                tags: hark_api::AudioTags {
                    title: tags.title,
                    artist: tags.artist,
                    album: tags.album,
                    date: tags.date,
                    genre: tags.genre,
                    comment: tags.comment,
                },
            },
        })
    }
}

/// Optional free text: at most 500 characters as given, trimmed, empty means absent.
fn clean_text(value: Option<&str>, field: &str) -> Result<Option<String>, IngestError> {
    if value.is_some_and(|v| v.chars().count() > 500) {
        return Err(IngestError::Invalid(format!(
            "{field} must be at most 500 characters"
        )));
    }
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(value.chars().filter(|c| !c.is_control()).collect()))
}

/// The probe's answer as an ingest outcome.
pub fn probed_audio(
    probed: Result<hark_audio::AudioInfo, ProbeError>,
) -> Result<hark_audio::AudioInfo, IngestError> {
    match probed {
        Ok(info) => Ok(info),
        Err(ProbeError::Unsupported { detected }) => {
            metrics::counter!(PROBE_FAILURES).increment(1);
            Err(IngestError::Unsupported { detected })
        }
        Err(ProbeError::Io(e)) => Err(IngestError::Io(e)),
    }
}
