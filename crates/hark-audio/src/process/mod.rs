//! One pass over an upload: a single decode of the whole file feeds every processing step.
//!
//! [`decode_into`] decodes every packet (with the container readers probing uses) and hands the
//! audio, trimmed of encoder delay and padding, to each [`PcmSink`]. A step is a sink: the
//! waveform ([`WaveformSink`]), loudness ([`LoudnessSink`]) and renditions ([`RenditionSink`])
//! are independent, and a new one (speech-to-text) is added without touching them. A damaged
//! file stops the pass with a [`DamagedAudio`] that says what is wrong and where; no input makes
//! it panic.

mod decode;
mod loudness;
mod ogg_writer;
mod renditions;
mod resample;
mod waveform;

pub use decode::decode_into;
pub use loudness::{Loudness, LoudnessSink};
pub use renditions::{OpusFile, Rendition, RenditionSink};
pub use resample::MonoSink;
pub use waveform::{AudioWaveform, PIXELS_PER_SECOND, Waveform, WaveformSink};

use crate::Format;
use std::io;
use std::path::Path;

/// A block of decoded audio: interleaved samples in -1..1.
#[derive(Debug, Clone, Copy)]
pub struct Pcm<'a> {
    /// `frames() * channels` samples, channel by channel within each frame.
    pub samples: &'a [f32],
    pub channels: u16,
    pub sample_rate: u32,
}

impl Pcm<'_> {
    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

/// A processing step fed by the decode. Channel count and rate stay the same for a whole file.
pub trait PcmSink {
    /// Takes the next block of audio (one decoded packet).
    fn accept(&mut self, pcm: Pcm<'_>) -> io::Result<()>;

    /// Called once after the last block, if the whole file decoded.
    fn finish(&mut self) -> io::Result<()>;
}

/// What the decode of a whole file found.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeSummary {
    pub format: Format,
    /// ffprobe's `codec_name`, as in [`crate::AudioInfo::codec`].
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Samples per channel handed to the sinks.
    pub frames: u64,
    /// `frames / sample_rate`.
    pub duration_seconds: f64,
}

/// Why a file did not decode: said for a person, e.g. "damaged MP3: 91 KB of unrecognised data
/// after the last frame (at about 2.3 s)".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} (at about {at_seconds:.1} s)")]
pub struct DamagedAudio {
    pub reason: String,
    /// How far into the audio the problem is: what had decoded before it.
    pub at_seconds: f64,
}

/// Why a pass over a file stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The file is damaged (or not audio we decode): the note fails with this reason.
    #[error(transparent)]
    Damaged(#[from] DamagedAudio),
    /// Reading the file or writing an output failed; not the file's fault, worth retrying.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Everything the pipeline makes of one file in one pass.
#[derive(Debug, Clone)]
pub struct Processed {
    pub summary: DecodeSummary,
    pub waveform: Waveform,
    pub loudness: Loudness,
    /// The Opus and MP3 renditions, in that order.
    pub renditions: Vec<Rendition>,
}

/// Decodes `path` once into the waveform, loudness and renditions steps; the renditions are
/// written to `rendition_dir` (see [`RenditionSink::new`]). Blocking and CPU-bound: run it on a
/// blocking thread.
pub fn process_file(path: &Path, rendition_dir: &Path) -> Result<Processed, ProcessError> {
    let mut waveform = WaveformSink::new();
    let mut loudness = LoudnessSink::new();
    let mut renditions = RenditionSink::new(rendition_dir)?;
    let summary = decode_into(path, &mut [&mut waveform, &mut loudness, &mut renditions])?;
    Ok(Processed {
        summary,
        waveform: waveform.waveform(),
        loudness: loudness.loudness(),
        renditions: renditions.renditions(),
    })
}
