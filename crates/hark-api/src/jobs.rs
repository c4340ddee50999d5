//! Processing on the wire: a note's jobs, its renditions, waveform and loudness, and the
//! presentation shape of seed 001.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::notes::Rendition;

/// One processing step of a note.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JobStep {
    /// A full decode of every packet.
    Integrity,
    /// The Opus and MP3 renditions.
    Transcode,
    Waveform,
    /// EBU R128 integrated loudness and true peak.
    Loudness,
    Transcribe,
    Correct,
}

impl JobStep {
    /// Every step, in the order a note's jobs are listed.
    pub const ALL: [JobStep; 6] = [
        Self::Integrity,
        Self::Transcode,
        Self::Waveform,
        Self::Loudness,
        Self::Transcribe,
        Self::Correct,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Integrity => "integrity",
            Self::Transcode => "transcode",
            Self::Waveform => "waveform",
            Self::Loudness => "loudness",
            Self::Transcribe => "transcribe",
            Self::Correct => "correct",
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Skipped,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Done,
        Self::Failed,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// Whether the job will not run again in this run of the pipeline.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Skipped)
    }
}

/// One job of a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub step: JobStep,
    pub status: JobStatus,
    /// Times the step was started in this run.
    pub attempts: u32,
    /// Why it failed, or why it was skipped.
    pub last_error: Option<String>,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

/// `GET /api/v1/notes/{id}/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub note_id: String,
    pub items: Vec<Job>,
}

/// A derived version of a note's audio that exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenditionInfo {
    pub name: Rendition,
    pub mime: String,
    pub duration_seconds: f64,
    pub size_bytes: u64,
    /// Where the caller fetches it (with the same credentials as the note).
    pub url: String,
}

/// EBU R128 measurements of a note's audio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Loudness {
    /// Integrated loudness, LUFS.
    pub integrated_lufs: f64,
    /// True peak, dBTP.
    pub true_peak_dbtp: f64,
}

/// `GET /api/v1/notes/{id}/waveform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Waveform {
    /// The loudest sample of each slice of `1 / per_second` s, 0..1 of full scale.
    pub peaks: Vec<f32>,
    pub per_second: u32,
    /// A summary of 100 bars (0..1) for a voice-note bubble.
    pub bars: Vec<f32>,
}

/// `GET /api/v1/notes/{id}/waveform?format=audiowaveform`: the BBC audiowaveform JSON shape
/// (version 2, one channel, 8 bits, a min and a max per pixel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AudioWaveform {
    pub version: u32,
    pub channels: u32,
    pub sample_rate: u32,
    pub samples_per_pixel: u32,
    pub bits: u32,
    pub length: u32,
    pub data: Vec<i32>,
}

/// What `/waveform` answers: the peaks, or the audiowaveform shape when asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WaveformAnswer {
    Peaks(Waveform),
    Audiowaveform(AudioWaveform),
}

/// The shapes `/waveform` answers in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaveformFormat {
    #[default]
    Json,
    Audiowaveform,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaveformQuery {
    pub format: Option<WaveformFormat>,
}

/// Processing status in the presentation shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessingStatus {
    Pending,
    Processing,
    Finished,
    Failed,
}

/// One transcript segment in the presentation shape; times in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresentationSegment {
    /// 1-based index of the segment.
    pub file_segment_id: u64,
    pub file_id: String,
    pub segment_text: String,
    pub start_time: u64,
    pub end_time: u64,
}

/// `GET /api/presentation/files/{fileId}` (seed 001).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresentationFile {
    pub file_id: String,
    pub processing_status: ProcessingStatus,
    pub file_name: String,
    /// URL of the MP3 rendition.
    pub mp3_path: String,
    /// URL of the original audio.
    pub original_filepath: String,
    pub series_title: Option<String>,
    pub segments: Vec<PresentationSegment>,
}

string_forms!(JobStep, JobStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentation_speaks_camel_case() {
        let file = PresentationFile {
            file_id: "f".into(),
            processing_status: ProcessingStatus::Finished,
            file_name: "a.wav".into(),
            mp3_path: "http://h/a.mp3".into(),
            original_filepath: "http://h/a".into(),
            series_title: None,
            segments: vec![PresentationSegment {
                file_segment_id: 1,
                file_id: "f".into(),
                segment_text: "hi".into(),
                start_time: 0,
                end_time: 1500,
            }],
        };
        let json = serde_json::to_value(&file).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"fileId": "f", "processingStatus": "FINISHED", "fileName": "a.wav",
                "mp3Path": "http://h/a.mp3", "originalFilepath": "http://h/a", "seriesTitle": null,
                "segments": [{"fileSegmentId": 1, "fileId": "f", "segmentText": "hi",
                    "startTime": 0, "endTime": 1500}]})
        );
    }

    #[test]
    fn steps_and_statuses_round_trip() {
        for step in JobStep::ALL {
            assert_eq!(JobStep::parse(step.as_str()), Some(step));
        }
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
    }
}
