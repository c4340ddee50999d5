//! Running a claim: the steps that read the audio (integrity, transcode, waveform, loudness)
//! share one decode, each as a sink of it; the speech steps have no model yet and are skipped.
//! A damaged file fails the note with the decoder's reason; anything else that goes wrong
//! (the store, the disk) is retried.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use hark_api::{JobStep, Loudness, Rendition};
use hark_audio::process::{
    DamagedAudio, LoudnessSink, PcmSink, ProcessError, RenditionSink, WaveformSink,
};
use sha2::{Digest, Sha256};

use crate::blob::{BlobKey, BlobStore};
use crate::domain::{Claim, Finish, StepOutcome, StoredRendition, StoredWaveform, Timestamp};

/// Why a speech step does not run.
const NO_SPEECH_MODEL: &str = "no speech model is configured";

/// What the pass over the audio made.
#[derive(Default)]
struct Made {
    renditions: Vec<hark_audio::process::Rendition>,
    waveform: Option<StoredWaveform>,
    loudness: Option<Option<Loudness>>,
}

/// Why the pass over the audio stopped.
enum PassError {
    Damaged(DamagedAudio),
    /// Not the audio's fault: worth another attempt.
    Transient(String),
}

impl From<std::io::Error> for PassError {
    fn from(e: std::io::Error) -> PassError {
        PassError::Transient(e.to_string())
    }
}

impl From<crate::blob::BlobError> for PassError {
    fn from(e: crate::blob::BlobError) -> PassError {
        PassError::Transient(e.to_string())
    }
}

/// A claim's run: what to record, and the pass's files, kept until it is recorded.
pub(super) struct Ran {
    pub finish: Finish,
    pub files: Option<PassFiles>,
}

impl From<Finish> for Ran {
    fn from(finish: Finish) -> Ran {
        Ran {
            finish,
            files: None,
        }
    }
}

/// A pass's scratch directory: its copy of the original and its renditions' files, removed
/// when this is dropped.
pub(super) struct PassFiles {
    _dir: tempfile::TempDir,
    /// Each rendition's blob key and its file.
    renditions: Vec<(String, PathBuf)>,
}

impl PassFiles {
    /// The local file holding the bytes of the rendition blob `sha256`.
    pub fn rendition(&self, sha256: &str) -> Option<&Path> {
        self.renditions
            .iter()
            .find(|(sha, _)| sha == sha256)
            .map(|(_, path)| path.as_path())
    }
}

/// Runs the claimed steps; the outcome of each, and what they made, stored.
pub(super) async fn run(claim: &Claim, store: &dyn BlobStore, scratch: &Path) -> Ran {
    let mut finish = Finish::default();
    let (reading, speech): (Vec<JobStep>, Vec<JobStep>) = claim
        .steps
        .iter()
        .map(|(step, _)| *step)
        .partition(|s| decodes(*s));
    for step in speech {
        finish
            .outcomes
            .push((step, StepOutcome::Skipped(NO_SPEECH_MODEL.to_owned())));
    }
    if reading.is_empty() {
        return finish.into();
    }
    let stored = match pass(claim, &reading, store, scratch).await {
        Ok(stored) => stored,
        Err(PassError::Damaged(damage)) => {
            let reason = format!("the audio is damaged: {damage}");
            for step in reading {
                let outcome = if step == JobStep::Integrity || !claimed(claim, JobStep::Integrity) {
                    StepOutcome::Failed(reason.clone())
                } else {
                    StepOutcome::Skipped("not run: the integrity check failed".to_owned())
                };
                finish.outcomes.push((step, outcome));
            }
            return finish.into();
        }
        Err(PassError::Transient(error)) => {
            for step in reading {
                let retry = StepOutcome::Retry {
                    error: error.clone(),
                    retry_at: Timestamp::now(),
                };
                finish.outcomes.push((step, retry));
            }
            return finish.into();
        }
    };
    finish
        .outcomes
        .extend(reading.into_iter().map(|step| (step, StepOutcome::Done)));
    finish.renditions = stored.renditions;
    finish.waveform = stored.waveform;
    finish.loudness = stored.loudness;
    Ran {
        finish,
        files: Some(stored.files),
    }
}

/// The outputs as the repository records them: renditions already in the blob store.
struct Stored {
    renditions: Vec<StoredRendition>,
    waveform: Option<String>,
    loudness: Option<Option<Loudness>>,
    files: PassFiles,
}

async fn pass(
    claim: &Claim,
    steps: &[JobStep],
    store: &dyn BlobStore,
    scratch: &Path,
) -> Result<Stored, PassError> {
    std::fs::create_dir_all(scratch)?;
    let dir = tempfile::Builder::new()
        .prefix("job-")
        .tempdir_in(scratch)?;
    let original = dir.path().join("original");
    copy_original(claim, store, &original).await?;
    let steps = steps.to_vec();
    let out = dir.path().to_path_buf();
    let made = tokio::task::spawn_blocking(move || decode(&original, &out, &steps))
        .await
        .map_err(|e| PassError::Transient(format!("the pass stopped: {e}")))??;
    let mut renditions = Vec::with_capacity(made.renditions.len());
    let mut files = Vec::with_capacity(made.renditions.len());
    for rendition in made.renditions {
        let Some(name) = Rendition::parse(rendition.name) else {
            continue;
        };
        let sha256 = durable_digest(&rendition.path).await?;
        store
            .put_file(&BlobKey::parse(&sha256)?, &rendition.path)
            .await?;
        files.push((sha256.clone(), rendition.path));
        renditions.push(StoredRendition {
            name,
            sha256,
            mime: rendition.mime.to_owned(),
            duration_seconds: rendition.duration_seconds,
            size_bytes: rendition.size_bytes,
        });
    }
    let waveform = made
        .waveform
        .map(|w| serde_json::to_string(&w).map_err(|e| PassError::Transient(e.to_string())))
        .transpose()?;
    Ok(Stored {
        renditions,
        waveform,
        loudness: made.loudness,
        files: PassFiles {
            _dir: dir,
            renditions: files,
        },
    })
}

fn claimed(claim: &Claim, step: JobStep) -> bool {
    claim.steps.iter().any(|(s, _)| *s == step)
}

/// Copies the note's bytes out of the store, whichever it is, into `to`.
async fn copy_original(claim: &Claim, store: &dyn BlobStore, to: &Path) -> Result<(), PassError> {
    let key = BlobKey::parse(&claim.note.audio.sha256)?;
    let mut bytes = store
        .read_range(&key, 0..claim.note.audio.size_bytes)
        .await?;
    let mut file = tokio::fs::File::create(to).await?;
    while let Some(chunk) = bytes.try_next().await? {
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    Ok(())
}

/// One decode of `original` into a sink per step; renditions are written into `out`.
fn decode(original: &Path, out: &Path, steps: &[JobStep]) -> Result<Made, PassError> {
    let mut waveform = steps.contains(&JobStep::Waveform).then(WaveformSink::new);
    let mut loudness = steps.contains(&JobStep::Loudness).then(LoudnessSink::new);
    let mut renditions = if steps.contains(&JobStep::Transcode) {
        Some(RenditionSink::new(out)?)
    } else {
        None
    };
    let mut sinks: Vec<&mut dyn PcmSink> = Vec::new();
    if let Some(sink) = waveform.as_mut() {
        sinks.push(sink);
    }
    if let Some(sink) = loudness.as_mut() {
        sinks.push(sink);
    }
    if let Some(sink) = renditions.as_mut() {
        sinks.push(sink);
    }
    match hark_audio::process::decode_into(original, &mut sinks) {
        Ok(_) => {}
        Err(ProcessError::Damaged(damage)) => return Err(PassError::Damaged(damage)),
        Err(ProcessError::Io(e)) => return Err(e.into()),
    }
    Ok(Made {
        renditions: renditions.map(|sink| sink.renditions()).unwrap_or_default(),
        waveform: waveform.map(|sink| stored_waveform(&sink.waveform())),
        loudness: loudness.map(|sink| {
            let measured = sink.loudness();
            measured.integrated_lufs.zip(measured.true_peak_dbtp).map(
                |(integrated_lufs, true_peak_dbtp)| Loudness {
                    integrated_lufs,
                    true_peak_dbtp,
                },
            )
        }),
    })
}

fn stored_waveform(waveform: &hark_audio::process::Waveform) -> StoredWaveform {
    // Three decimals are more than a screen can show, and keep a long note's waveform small.
    let rounded = |values: Vec<f32>| -> Vec<f32> {
        values
            .into_iter()
            .map(|v| (v * 1000.0).round() / 1000.0)
            .collect()
    };
    let audiowaveform = waveform.audiowaveform();
    StoredWaveform {
        waveform: hark_api::Waveform {
            peaks: rounded(waveform.peaks()),
            per_second: hark_audio::process::PIXELS_PER_SECOND,
            bars: rounded(waveform.bars()),
        },
        audiowaveform: hark_api::AudioWaveform {
            version: 2,
            channels: 1,
            sample_rate: audiowaveform.sample_rate,
            samples_per_pixel: audiowaveform.samples_per_pixel,
            bits: 8,
            length: u32::try_from(audiowaveform.length()).unwrap_or(u32::MAX),
            data: audiowaveform.data.iter().map(|&v| i32::from(v)).collect(),
        },
    }
}

/// The file's SHA-256, once it is on disk for good (the store adopts it as it is).
async fn durable_digest(path: &Path) -> Result<String, PassError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut HashWriter(&mut hasher))?;
        file.sync_all()?;
        Ok::<_, std::io::Error>(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(|e| PassError::Transient(e.to_string()))?
    .map_err(PassError::from)
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether a step is served by the pass over the audio.
fn decodes(step: JobStep) -> bool {
    matches!(
        step,
        JobStep::Integrity | JobStep::Transcode | JobStep::Waveform | JobStep::Loudness
    )
}
