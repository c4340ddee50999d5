//! Speech on the wire: a note's transcript with its segments and words, the edits of a
//! corrected one, and the segments a transcript search matched.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Which transcript of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptVersion {
    /// As the speech model heard it.
    #[default]
    Original,
    /// Grammar-corrected, with its edits.
    Corrected,
}

impl TranscriptVersion {
    pub const ALL: [TranscriptVersion; 2] = [Self::Original, Self::Corrected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Corrected => "corrected",
        }
    }
}

/// A word with its time in the note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptWord {
    /// As spoken, with the punctuation that follows it.
    pub word: String,
    /// Seconds from the start of the note.
    pub start: f64,
    pub end: f64,
    /// 0 to 1.
    pub confidence: f64,
}

/// A stretch of speech: a sentence or so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptSegment {
    /// 0-based, in order.
    pub id: u32,
    /// Seconds from the start of the note.
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// 0 to 1.
    pub confidence: f64,
    /// In order, each inside the segment.
    pub words: Vec<TranscriptWord>,
}

/// One correction of the original text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptEdit {
    /// Where the edit starts in the original `text`, in Unicode scalar values.
    pub offset: usize,
    /// How many scalar values it replaces.
    pub length: usize,
    pub replacement: String,
    /// The rule that asked for it.
    pub rule: String,
    pub message: String,
}

/// A note's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    pub note_id: String,
    pub version: TranscriptVersion,
    /// The speech model that made it, e.g. `whisper-tiny.en`.
    pub model: String,
    /// ISO 639-1.
    pub language: String,
    pub duration_seconds: f64,
    pub text: String,
    pub segments: Vec<TranscriptSegment>,
    /// The corrections made (the corrected version only): sorted, not overlapping, with
    /// offsets into the original text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edits: Option<Vec<TranscriptEdit>>,
}

/// How a transcript is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptFormat {
    #[default]
    Json,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// The text alone.
    Txt,
}

impl TranscriptFormat {
    pub const ALL: [TranscriptFormat; 4] = [Self::Json, Self::Srt, Self::Vtt, Self::Txt];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::Txt => "txt",
        }
    }
}

/// `GET /api/v1/notes/{id}/transcript`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// Default `json`.
    pub format: Option<TranscriptFormat>,
    /// Default `original`.
    pub version: Option<TranscriptVersion>,
}

/// A segment of a note's transcript that a search (`q=`) matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptMatch {
    /// Seconds from the start of the note: where a player jumps to.
    pub start: f64,
    pub end: f64,
    pub text: String,
}

string_forms!(TranscriptVersion, TranscriptFormat);
