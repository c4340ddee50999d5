//! Processing jobs: one per step of a note's pipeline, and what the steps make.

use hark_api::{JobStatus, JobStep, Loudness, NoteStatus, Rendition};
use serde::{Deserialize, Serialize};

use super::{Note, Timestamp, UserId};

/// A derived audio file of a note, stored as a blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRendition {
    pub name: Rendition,
    /// The blob's key.
    pub sha256: String,
    pub mime: String,
    pub duration_seconds: f64,
    pub size_bytes: u64,
}

/// A job as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub step: JobStep,
    pub status: JobStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
}

/// Jobs of one note that a worker claimed, all under one lease.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Fences the claim: only its holder may record results, and only while it holds it.
    pub lease_id: String,
    pub note: Note,
    /// Each claimed step with the attempt this is (1 for the first).
    pub steps: Vec<(JobStep, u32)>,
}

/// How a step's attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Done,
    /// The step does not apply (no speech model, say), and why.
    Skipped(String),
    /// It cannot succeed: the note fails with this reason.
    Failed(String),
    /// It may succeed later: queued again after `retry_at`.
    Retry {
        error: String,
        retry_at: Timestamp,
    },
}

/// What a worker records for its claim, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    pub outcomes: Vec<(JobStep, StepOutcome)>,
    /// Renditions made, replacing those of the same name.
    pub renditions: Vec<StoredRendition>,
    /// The waveform as its JSON.
    pub waveform: Option<String>,
    /// The loudness measured: `Some(None)` for audio with none (silence).
    pub loudness: Option<Option<Loudness>>,
    /// Transcripts made (original by `transcribe`, corrected by `correct`), replacing those of
    /// the same version. A speech step recorded without one removes its version's transcript.
    pub transcripts: Vec<super::StoredTranscript>,
}

/// What recording a claim's results did.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Steps whose results were recorded; the others' leases had been lost (the note was
    /// deleted or reprocessed, or the lease expired and another worker claimed them).
    pub recorded: Vec<JobStep>,
    /// Rendition blobs that a collector was deleting when they were referenced: their bytes
    /// must be written again once it is done.
    pub blobs_being_deleted: Vec<String>,
}

/// A note whose status the pipeline just changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub note: Note,
    pub from: NoteStatus,
    /// Who received the note: they may see it, so they hear how it ends.
    pub recipients: Vec<UserId>,
}

/// A note's waveform as kept: both shapes `/waveform` answers in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredWaveform {
    #[serde(flatten)]
    pub waveform: hark_api::Waveform,
    pub audiowaveform: hark_api::AudioWaveform,
}
