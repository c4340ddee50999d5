//! Notes on the wire.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A note's processing status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteStatus {
    Pending,
    Processing,
    Ready,
    Failed,
}

impl NoteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "processing" => Some(Self::Processing),
            "ready" => Some(Self::Ready),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Tags read from the file (ID3, Vorbis comments, MP4 atoms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AudioTags {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Where a note's resources live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub audio: String,
}

/// One stored audio file and what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    /// UUIDv7.
    pub id: String,
    pub owner_id: String,
    /// The client's file name; not unique.
    pub name: String,
    pub title: Option<String>,
    pub series: Option<String>,
    /// Container: wav, mp3, ogg, flac, m4a, webm.
    pub format: String,
    /// Codec, as ffprobe names it: pcm_s16le, mp3, opus, vorbis, flac, aac, alac, ...
    pub codec: String,
    pub mime: String,
    pub duration_seconds: f64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Average bits per second.
    pub bitrate: u64,
    pub size_bytes: u64,
    /// Hex SHA-256 of the bytes as stored.
    pub sha256: String,
    pub status: NoteStatus,
    pub failure_reason: Option<String>,
    pub tags: AudioTags,
    /// RFC 3339, UTC, microsecond precision (so it can be passed back as `created_after`).
    pub created_at: String,
    /// Derived files (filled by processing).
    pub renditions: Vec<String>,
    pub links: NoteLinks,
}

/// A page of notes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NoteList {
    pub items: Vec<Note>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Filters and order for a note list. Every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListNotesQuery {
    /// Only notes at most this long (seconds).
    #[serde(alias = "maxduration")]
    pub max_duration: Option<f64>,
    /// Only notes at least this long (seconds).
    #[serde(alias = "minduration")]
    pub min_duration: Option<f64>,
    /// Only notes whose name contains this (case-insensitive).
    pub name: Option<String>,
    /// Only notes sent by this user (id or email).
    pub sender: Option<String>,
    /// Only notes delivered through this channel.
    pub channel: Option<String>,
    /// pending, processing, ready or failed.
    pub status: Option<String>,
    /// wav, mp3, ogg, flac, m4a or webm.
    pub format: Option<String>,
    /// RFC 3339.
    pub created_after: Option<String>,
    /// RFC 3339.
    pub created_before: Option<String>,
    /// Words in the transcript. Transcription is not available on this server yet, so this
    /// answers 400 rather than silently matching everything.
    pub q: Option<String>,
    /// created_at, -created_at (default), duration, -duration, name, -name.
    pub sort: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A request for a signed link to a note's audio.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LinkRequest {
    /// Seconds, 1 to 604800 (7 days); default 3600.
    pub expires_in: Option<u64>,
    /// A derived rendition instead of the original.
    pub rendition: Option<String>,
}

/// A signed link that serves audio with no other credential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignedLink {
    pub url: String,
    /// RFC 3339; the link answers 403 from this instant on.
    pub expires_at: String,
}
