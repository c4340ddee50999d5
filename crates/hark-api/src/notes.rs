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
    pub const ALL: [NoteStatus; 4] = [Self::Pending, Self::Processing, Self::Ready, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

/// The order of a note list: a field, descending when it starts with `-`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Sort {
    #[serde(rename = "created_at")]
    CreatedAt,
    #[default]
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "duration")]
    Duration,
    #[serde(rename = "-duration")]
    DurationDesc,
    #[serde(rename = "name")]
    Name,
    #[serde(rename = "-name")]
    NameDesc,
}

impl Sort {
    pub const ALL: [Sort; 6] = [
        Self::CreatedAt,
        Self::CreatedAtDesc,
        Self::Duration,
        Self::DurationDesc,
        Self::Name,
        Self::NameDesc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::CreatedAtDesc => "-created_at",
            Self::Duration => "duration",
            Self::DurationDesc => "-duration",
            Self::Name => "name",
            Self::NameDesc => "-name",
        }
    }
}

/// A derived version of a note's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rendition {
    /// MP3, 64 kbps.
    Mp3,
    /// Opus in Ogg, 24 kbps mono.
    Opus,
    /// The grammar-corrected audio.
    Corrected,
}

impl Rendition {
    pub const ALL: [Rendition; 3] = [Self::Mp3, Self::Opus, Self::Corrected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Opus => "opus",
            Self::Corrected => "corrected",
        }
    }
}

/// A container format the server accepts, by its short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    Wav,
    Mp3,
    Ogg,
    Flac,
    /// MP4/M4A, AAC or ALAC inside.
    M4a,
    /// WebM or Matroska.
    Webm,
}

impl AudioFormat {
    pub const ALL: [AudioFormat; 6] = [
        Self::Wav,
        Self::Mp3,
        Self::Ogg,
        Self::Flac,
        Self::M4a,
        Self::Webm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
            Self::Flac => "flac",
            Self::M4a => "m4a",
            Self::Webm => "webm",
        }
    }
}

string_forms!(NoteStatus, Sort, Rendition, AudioFormat);

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
    /// Derived files, one per rendition that exists (empty until processing made them).
    pub renditions: Vec<crate::jobs::RenditionInfo>,
    /// EBU R128 measurements, once processing measured them (none for silence).
    pub loudness: Option<crate::jobs::Loudness>,
    pub links: NoteLinks,
    /// With `q=` only: the transcript's segments that matched, in order, so a player can jump
    /// to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<crate::speech::TranscriptMatch>>,
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
    #[param(minimum = 0)]
    pub max_duration: Option<f64>,
    /// Only notes at least this long (seconds).
    #[serde(alias = "minduration")]
    #[param(minimum = 0)]
    pub min_duration: Option<f64>,
    /// Only notes whose name contains this (case-insensitive).
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<String>,
    /// Only notes sent by this user (id or email).
    pub sender: Option<String>,
    /// Only notes delivered through this channel.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub channel: Option<String>,
    pub status: Option<NoteStatus>,
    pub format: Option<AudioFormat>,
    /// RFC 3339.
    #[param(format = DateTime)]
    pub created_after: Option<String>,
    /// RFC 3339.
    #[param(format = DateTime)]
    pub created_before: Option<String>,
    /// Words in the transcript: every one must occur (case and accents do not count; a `q`
    /// with no words matches nothing). Each item then carries `matches`.
    #[param(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub q: Option<String>,
    /// Default `-created_at`.
    pub sort: Option<Sort>,
    /// Default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A request for a signed link to a note's audio.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LinkRequest {
    /// Seconds, 1 to 604800 (7 days); default 3600. Any JSON number with no fraction counts,
    /// `3600.0` as well as `3600`.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 604800)]
    pub expires_in: Option<u64>,
    /// A derived rendition instead of the original.
    pub rendition: Option<Rendition>,
}

/// A non-negative JSON number with no fractional part, as an integer: JSON does not tell `1`
/// from `1.0`, and clients that hold every number as a float send the latter.
fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    struct WholeNumber;

    impl<'de> serde::de::Visitor<'de> for WholeNumber {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative whole number")
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Option<u64>, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Option<u64>, E> {
            // Past 2^53 a float names no single integer; such values are out of range anyway.
            if v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v) {
                Ok(Some(v as u64))
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            d.deserialize_any(self)
        }
    }

    deserializer.deserialize_option(WholeNumber)
}

/// A signed link that serves audio with no other credential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignedLink {
    pub url: String,
    /// RFC 3339; the link answers 403 from this instant on.
    pub expires_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_travel_as_their_names() {
        fn check<T: Serialize + std::str::FromStr + PartialEq + std::fmt::Debug>(
            value: T,
            name: &str,
        ) where
            T::Err: std::fmt::Debug,
        {
            let quoted = serde_json::to_string(&value).expect("serialises");
            assert_eq!(quoted, format!("\"{name}\""));
            assert_eq!(name.parse::<T>().expect("parses"), value);
        }
        NoteStatus::ALL
            .into_iter()
            .for_each(|v| check(v, v.as_str()));
        Sort::ALL.into_iter().for_each(|v| check(v, v.as_str()));
        Rendition::ALL
            .into_iter()
            .for_each(|v| check(v, v.as_str()));
        AudioFormat::ALL
            .into_iter()
            .for_each(|v| check(v, v.as_str()));
        assert!("-size".parse::<Sort>().is_err());
    }

    #[test]
    fn link_expiry_takes_any_whole_json_number() {
        let expiry = |json: &str| {
            serde_json::from_str::<LinkRequest>(json)
                .map(|r| r.expires_in)
                .ok()
        };
        assert_eq!(expiry(r#"{"expires_in":3600}"#), Some(Some(3600)));
        assert_eq!(expiry(r#"{"expires_in":3600.0}"#), Some(Some(3600)));
        assert_eq!(expiry(r#"{"expires_in":3.6e3}"#), Some(Some(3600)));
        assert_eq!(expiry(r#"{"expires_in":null}"#), Some(None));
        assert_eq!(expiry("{}"), Some(None));
        assert_eq!(expiry(r#"{"expires_in":1.5}"#), None);
        assert_eq!(expiry(r#"{"expires_in":-1}"#), None);
        assert_eq!(expiry(r#"{"expires_in":"60"}"#), None);
    }
}
