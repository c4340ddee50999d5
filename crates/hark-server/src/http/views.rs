//! Domain to wire: every answer's shape is built here, once.

use hark_api::{ApiKey, NoteLinks, RenditionInfo, TranscriptVersion};

use crate::db::ApiKeyRecord;
use crate::domain::{LoggedEvent, Note, StoredTranscript, User};

pub fn note(note: &Note) -> hark_api::Note {
    let this = format!("/api/v1/notes/{}", note.id);
    let audio = &note.audio;
    hark_api::Note {
        id: note.id.to_string(),
        owner_id: note.owner_id.to_string(),
        name: note.name.clone(),
        title: note.title.clone(),
        series: note.series.clone(),
        format: audio.format.clone(),
        codec: audio.codec.clone(),
        mime: audio.mime.clone(),
        duration_seconds: audio.duration_seconds,
        sample_rate: audio.sample_rate,
        channels: audio.channels,
        bitrate: audio.bitrate,
        size_bytes: audio.size_bytes,
        sha256: audio.sha256.clone(),
        status: note.status,
        failure_reason: note.failure_reason.clone(),
        tags: audio.tags.clone(),
        created_at: note.created_at.to_rfc3339(),
        renditions: note
            .renditions
            .iter()
            .map(|r| RenditionInfo {
                name: r.name,
                mime: r.mime.clone(),
                duration_seconds: r.duration_seconds,
                size_bytes: r.size_bytes,
                url: format!("{this}/audio?rendition={}", r.name),
            })
            .collect(),
        loudness: note.loudness,
        links: NoteLinks {
            audio: format!("{this}/audio"),
            this,
        },
        matches: None,
    }
}

pub fn transcript(note: &Note, transcript: StoredTranscript) -> hark_api::Transcript {
    let corrected = transcript.version == TranscriptVersion::Corrected;
    hark_api::Transcript {
        note_id: note.id.to_string(),
        version: transcript.version,
        model: transcript.model,
        language: transcript.language,
        duration_seconds: transcript.duration_seconds,
        text: transcript.text,
        segments: transcript.segments,
        edits: corrected.then_some(transcript.edits),
    }
}

pub fn user(user: &User) -> hark_api::User {
    hark_api::User {
        id: user.id.to_string(),
        email: user.email.as_str().to_owned(),
        role: user.role,
        created_at: user.created_at.to_rfc3339(),
    }
}

pub fn api_key(key: ApiKeyRecord) -> ApiKey {
    ApiKey {
        id: key.id,
        name: key.name,
        prefix: key.prefix,
        created_at: key.created_at.to_rfc3339(),
        last_used_at: key.last_used_at.map(|t| t.to_rfc3339()),
    }
}

pub fn event(event: &LoggedEvent) -> hark_api::Event {
    event.to_wire()
}
