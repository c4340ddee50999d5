//! The notes use cases: upload, list, read, share, delete. The native and the seed-compatible
//! routes both call these; handlers only parse requests and shape answers. What a change
//! causes (its events and their audience) is decided in `effects`.

mod cursor;
pub mod effects;

use std::sync::Arc;

use hark_api::{
    JobStatus, JobStep, LinkRequest, ListNotesQuery, Rendition, TranscriptMatch, TranscriptVersion,
};
use tokio::sync::Notify;

use crate::auth::{LinkSignature, SignedLinks};
use crate::db::{DbError, NoteFilter, Repos};
use crate::delivery::Recipients;
use crate::domain::{
    Email, JobRecord, NewNote, Note, NoteId, StoredTranscript, StoredWaveform, Timestamp, UserId,
    search_words,
};
use crate::ingest::{Ingest, IngestError, Ingested, Spooled, UploadRequest};
use crate::pipeline::Pipeline;

/// The longest a signed link may live.
pub const MAX_LINK_SECONDS: u64 = 7 * 24 * 3600;
/// The default and the largest page of a note list.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
/// The longest transcript search.
const MAX_SEARCH_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Something processing makes, not made (yet).
    #[error("the {what} is not available (note status: {status})")]
    NotYet { what: &'static str, status: String },
    /// A rendition that does not exist (yet).
    #[error("rendition {rendition} is not available (note status: {status})")]
    RenditionMissing { rendition: String, status: String },
    #[error("this link is invalid or has expired")]
    BadLink,
    /// The note cannot do what was asked in the state it is in.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Whose eyes a read is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// A user: their own notes and the ones they received.
    User(UserId),
    /// A service token granted `notes:read`: any note.
    Service,
}

/// One page of a note list.
pub struct NotePage {
    pub notes: Vec<Note>,
    pub next_cursor: Option<String>,
    /// With a transcript search: each note's matching segments, in the order of `notes`.
    pub matches: Option<Vec<Vec<TranscriptMatch>>>,
}

/// A signed link just made.
pub struct Link {
    /// The query string (without `?`) that authorises the audio URL.
    pub query: String,
    pub expires_at: Timestamp,
}

#[derive(Clone)]
pub struct NotesService {
    repos: Repos,
    ingest: Ingest,
    links: Arc<SignedLinks>,
    /// Wakes the blob collector, so a deleted note's bytes go at once.
    collector: Arc<Notify>,
    pipeline: Pipeline,
}

impl NotesService {
    pub fn new(
        repos: Repos,
        ingest: Ingest,
        links: Arc<SignedLinks>,
        collector: Arc<Notify>,
        pipeline: Pipeline,
    ) -> NotesService {
        NotesService {
            repos,
            ingest,
            links,
            collector,
            pipeline,
        }
    }

    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    /// Turns a spooled upload into a note, with its `note.created`, delivered in the same
    /// transaction to `recipients` when there are some.
    pub async fn upload(
        &self,
        spooled: Spooled,
        request: UploadRequest,
        recipients: Option<Recipients>,
    ) -> Result<Ingested, IngestError> {
        let caused = |note: &NewNote| {
            let created = effects::created(note);
            match &recipients {
                Some(recipients) => created.delivery(recipients.delivery_of(
                    note.id,
                    note.owner_id,
                    note.title.clone(),
                )),
                None => created,
            }
        };
        let ingested = self.ingest.commit(spooled, request, &caused).await?;
        if !ingested.replayed {
            self.pipeline.wake();
        }
        Ok(ingested)
    }

    /// The jobs of a note `viewer` may see.
    pub async fn jobs(&self, viewer: Viewer, id: &str) -> Result<Vec<JobRecord>, NoteError> {
        let note = self.visible(viewer, id).await?;
        Ok(self.repos.jobs.jobs_of(note.id).await?)
    }

    /// Runs an owned note's pipeline again from the start.
    pub async fn reprocess(&self, owner: UserId, id: &str) -> Result<Vec<JobRecord>, NoteError> {
        let id = NoteId::parse(id).ok_or(NoteError::NotFound("note"))?;
        if !self.repos.jobs.restart_jobs(id, owner).await? {
            return Err(NoteError::NotFound("note"));
        }
        self.pipeline.wake();
        Ok(self.repos.jobs.jobs_of(id).await?)
    }

    /// Asks for an owned note's grammar-corrected transcript and audio; answers its jobs.
    /// A note whose audio failed cannot be transcribed, so it cannot be corrected either.
    pub async fn ask_correction(
        &self,
        owner: UserId,
        id: &str,
    ) -> Result<Vec<JobRecord>, NoteError> {
        let note = self.visible(Viewer::User(owner), id).await?;
        if note.owner_id != owner {
            return Err(NoteError::NotFound("note"));
        }
        let jobs = self.repos.jobs.jobs_of(note.id).await?;
        let damaged = jobs
            .iter()
            .any(|j| j.step == JobStep::Integrity && j.status == JobStatus::Failed);
        if damaged {
            return Err(NoteError::Conflict(format!(
                "the note's audio could not be processed: {}",
                note.failure_reason.unwrap_or_default()
            )));
        }
        if !self.repos.jobs.ask_correction(note.id, owner).await? {
            return Err(NoteError::NotFound("note"));
        }
        self.pipeline.wake();
        Ok(self.repos.jobs.jobs_of(note.id).await?)
    }

    /// A transcript of a note `viewer` may see, once made, with the note.
    pub async fn transcript(
        &self,
        viewer: Viewer,
        id: &str,
        version: TranscriptVersion,
    ) -> Result<(Note, StoredTranscript), NoteError> {
        let note = self.visible(viewer, id).await?;
        let found = self.repos.jobs.transcripts(&[note.id], version).await?;
        match found.into_iter().next() {
            Some((_, transcript)) => Ok((note, transcript)),
            None => Err(NoteError::NotYet {
                what: match version {
                    TranscriptVersion::Original => "transcript",
                    TranscriptVersion::Corrected => "corrected transcript",
                },
                status: note.status.as_str().to_owned(),
            }),
        }
    }

    /// The waveform of a note `viewer` may see, once made.
    pub async fn waveform(&self, viewer: Viewer, id: &str) -> Result<StoredWaveform, NoteError> {
        let note = self.visible(viewer, id).await?;
        let stored = self.repos.jobs.waveform(note.id).await?;
        let Some(json) = stored else {
            return Err(NoteError::NotYet {
                what: "waveform",
                status: note.status.as_str().to_owned(),
            });
        };
        serde_json::from_str(&json)
            .map_err(|e| NoteError::Db(DbError::Corrupt(format!("waveform: {e}"))))
    }

    /// The note if `viewer` may see it; `NotFound` otherwise, exactly as for a missing note.
    pub async fn visible(&self, viewer: Viewer, id: &str) -> Result<Note, NoteError> {
        let id = NoteId::parse(id).ok_or(NoteError::NotFound("note"))?;
        let note = match viewer {
            Viewer::User(user) => self.repos.notes.note_for_viewer(id, user).await?,
            Viewer::Service => self.repos.notes.note_by_id(id).await?,
        };
        note.ok_or(NoteError::NotFound("note"))
    }

    /// The note a signed link names, if the link is genuine and unexpired.
    pub async fn linked(
        &self,
        id: &str,
        rendition: Option<Rendition>,
        signature: Option<LinkSignature>,
    ) -> Result<Note, NoteError> {
        let id = NoteId::parse(id).ok_or(NoteError::NotFound("note"))?;
        let genuine = signature.is_some_and(|sig| {
            let rendition = rendition.map(Rendition::as_str);
            self.links.verify(id, rendition, &sig, Timestamp::now())
        });
        if !genuine {
            return Err(NoteError::BadLink);
        }
        let note = self.repos.notes.note_by_id(id).await?;
        note.ok_or(NoteError::NotFound("note"))
    }

    /// The newest note of that name `viewer` may see (the seed routes' `?name=`).
    pub async fn newest_named(&self, viewer: UserId, name: &str) -> Result<Note, NoteError> {
        if name.is_empty() {
            return Err(NoteError::Invalid("name must not be empty".into()));
        }
        let name = plain_text(name, "name")?;
        let note = self.repos.notes.newest_named(viewer, name).await?;
        note.ok_or(NoteError::NotFound("note"))
    }

    /// Deletes an owned note; its bytes go once nothing else references them.
    pub async fn delete(&self, owner: UserId, id: &str) -> Result<(), NoteError> {
        let id = NoteId::parse(id).ok_or(NoteError::NotFound("note"))?;
        let deleted = self
            .repos
            .notes
            .delete_note(id, owner, &effects::deleted)
            .await?;
        deleted.ok_or(NoteError::NotFound("note"))?;
        self.collector.notify_one();
        Ok(())
    }

    /// Deletes a user with their notes; their bytes go once nothing else references them.
    pub async fn delete_user(&self, id: UserId) -> Result<bool, NoteError> {
        let deleted = delete_user(&self.repos, id).await?;
        self.collector.notify_one();
        Ok(deleted)
    }

    /// Signs a link to a note's audio (or one of its renditions).
    pub fn link(&self, note: &Note, request: &LinkRequest) -> Result<Link, NoteError> {
        let expires_in = request.expires_in.unwrap_or(3600);
        if !(1..=MAX_LINK_SECONDS).contains(&expires_in) {
            return Err(NoteError::Invalid(format!(
                "expires_in must be 1 to {MAX_LINK_SECONDS} seconds"
            )));
        }
        let expires_at = Timestamp(
            Timestamp::now()
                .unix_seconds()
                .saturating_add(expires_in as i64)
                * 1_000_000,
        );
        Ok(Link {
            query: self.links.sign(
                note.id,
                request.rendition.map(Rendition::as_str),
                expires_at,
            ),
            expires_at,
        })
    }

    /// Validates a list query and runs it.
    pub async fn list(
        &self,
        viewer: UserId,
        query: &ListNotesQuery,
    ) -> Result<NotePage, NoteError> {
        let filter = self.filter(viewer, query).await?;
        let limit = filter.limit as usize - 1;
        let mut notes = self.repos.notes.list_notes(&filter).await?;
        let next_cursor = if notes.len() > limit {
            notes.truncate(limit);
            notes.last().map(|last| cursor::encode(filter.sort, last))
        } else {
            None
        };
        let matches = if let Some(words) = &filter.transcript_words {
            let ids: Vec<NoteId> = notes.iter().map(|n| n.id).collect();
            let transcripts = self
                .repos
                .jobs
                .transcripts(&ids, TranscriptVersion::Original)
                .await?;
            Some(
                ids.iter()
                    .map(|id| {
                        transcripts
                            .iter()
                            .find(|(of, _)| of == id)
                            .map(|(_, t)| t.matches(words))
                            .unwrap_or_default()
                    })
                    .collect(),
            )
        } else {
            None
        };
        Ok(NotePage {
            notes,
            next_cursor,
            matches,
        })
    }

    async fn filter(
        &self,
        viewer: UserId,
        query: &ListNotesQuery,
    ) -> Result<NoteFilter, NoteError> {
        let invalid = |message: &str| NoteError::Invalid(message.to_owned());
        let sort = query.sort.unwrap_or_default();
        let search = optional_text(query.q.as_deref(), "q")?;
        if search
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(NoteError::Invalid(format!(
                "q must be at most {MAX_SEARCH_CHARS} characters"
            )));
        }
        let transcript_words = search.as_deref().map(search_words);
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid("limit must be 1 to 500"));
        }
        let sender = match query.sender.as_deref() {
            None => None,
            Some(s) => Some(self.resolve_user(s).await?),
        };
        Ok(NoteFilter {
            viewer,
            max_duration: seconds(query.max_duration, "max_duration")?,
            min_duration: seconds(query.min_duration, "min_duration")?,
            name_contains: optional_text(query.name.as_deref(), "name")?,
            sender,
            channel: optional_text(query.channel.as_deref(), "channel")?,
            status: query.status,
            format: query.format.map(|f| f.as_str().to_owned()),
            created_after: instant(query.created_after.as_deref(), "created_after")?,
            created_before: instant(query.created_before.as_deref(), "created_before")?,
            transcript_words,
            sort,
            after: query
                .cursor
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|c| cursor::decode(c, sort))
                .transpose()?,
            // One more than asked: whether it comes back tells if there is a next page.
            limit: limit + 1,
        })
    }

    /// A user given by id or email. An unknown one matches nothing, so it is not an error: the
    /// list is simply empty (and reveals nothing about who exists).
    async fn resolve_user(&self, given: &str) -> Result<UserId, NoteError> {
        if let Some(id) = UserId::parse(given) {
            return Ok(id);
        }
        let found = match Email::parse(given) {
            Ok(email) => self.repos.users.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        Ok(found.map_or_else(UserId::generate, |u| u.id))
    }
}

/// Bytes of a note to serve: its original or one of its renditions.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFile {
    /// The blob's key, also the entity tag.
    pub sha256: String,
    pub size_bytes: u64,
    pub mime: String,
    /// The name to offer for saving it.
    pub name: String,
    pub created_at: Timestamp,
}

/// The audio asked for: the original, or a rendition once processing has made it
/// (`RenditionMissing` until then).
pub fn audio_of(note: &Note, rendition: Option<Rendition>) -> Result<AudioFile, NoteError> {
    let Some(wanted) = rendition else {
        return Ok(AudioFile {
            sha256: note.audio.sha256.clone(),
            size_bytes: note.audio.size_bytes,
            mime: note.audio.mime.clone(),
            name: note.name.clone(),
            created_at: note.created_at,
        });
    };
    let made = note.renditions.iter().find(|r| r.name == wanted);
    let made = made.ok_or_else(|| NoteError::RenditionMissing {
        rendition: wanted.as_str().to_owned(),
        status: note.status.as_str().to_owned(),
    })?;
    let stem = note
        .name
        .rsplit_once('.')
        .map_or(note.name.as_str(), |(stem, _)| stem);
    let extension = match wanted {
        Rendition::Mp3 => "mp3",
        Rendition::Opus | Rendition::Corrected => "ogg",
    };
    Ok(AudioFile {
        sha256: made.sha256.clone(),
        size_bytes: made.size_bytes,
        mime: made.mime.clone(),
        name: format!("{stem}.{extension}"),
        created_at: note.created_at,
    })
}

/// Marks every note stored in a blob as failed, each with its `note.failed`.
pub async fn fail_notes_of_blob(repos: &Repos, sha256: &str, reason: &str) -> Result<u64, DbError> {
    repos
        .notes
        .fail_notes_of_blob(sha256, reason, &effects::failed)
        .await
}

/// Deletes a user with their notes, each with its `note.deleted`.
pub async fn delete_user(repos: &Repos, id: UserId) -> Result<bool, DbError> {
    repos.users.delete_user(id, &effects::deleted).await
}

/// Text from a client that goes into a query: control characters (NUL above all, which
/// PostgreSQL refuses in text) are refused, not sent to the database.
pub fn plain_text<'a>(value: &'a str, field: &str) -> Result<&'a str, NoteError> {
    if value.chars().any(char::is_control) {
        return Err(NoteError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value)
}

fn optional_text(value: Option<&str>, field: &str) -> Result<Option<String>, NoteError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => plain_text(v, field).map(|v| Some(v.to_owned())),
        None => Ok(None),
    }
}

fn seconds(value: Option<f64>, field: &str) -> Result<Option<f64>, NoteError> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(NoteError::Invalid(format!(
            "{field} must be a non-negative number of seconds"
        ))),
        other => Ok(other),
    }
}

fn instant(value: Option<&str>, field: &str) -> Result<Option<Timestamp>, NoteError> {
    value
        .map(|v| {
            Timestamp::parse_rfc3339(v)
                .ok_or_else(|| NoteError::Invalid(format!("{field} must be an RFC 3339 instant")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use hark_api::AudioFormat;

    #[test]
    fn the_wire_formats_are_the_formats_the_probe_detects() {
        let probed: Vec<&str> = hark_audio::Format::ALL.iter().map(|f| f.name()).collect();
        let wire: Vec<&str> = AudioFormat::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(probed, wire);
    }
}
