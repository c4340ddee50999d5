//! Running a claim: the steps that read the audio (integrity, transcode, waveform, loudness)
//! share one decode, each as a sink of it; the speech steps (`speech`) follow, on the same
//! copy of the audio.
//! A damaged file fails the note with the decoder's reason; anything else that goes wrong
//! (the store, the disk) is retried.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use futures_util::TryStreamExt;
use hark_api::{JobStep, Loudness, Rendition};
use hark_audio::process::{
    DamagedAudio, LoudnessSink, PcmSink, ProcessError, RenditionSink, WaveformSink,
};
use sha2::{Digest, Sha256};

use super::speech::{CancelOnDrop, Speech, SpeechFailure};
use crate::blob::{BlobKey, BlobStore};
use crate::domain::{
    Claim, Finish, StepOutcome, StoredRendition, StoredTranscript, StoredWaveform, Timestamp,
};

/// Why a speech step does not run.
const NO_SPEECH_MODEL: &str = "no speech model is configured";
/// Why `correct` does not run on a note whose owner did not ask for it.
const NOT_ASKED: &str = "correction was not asked for";

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

/// A claim's scratch directory: its copy of the original and the files it makes, removed
/// when this is dropped.
pub(super) struct PassFiles {
    dir: tempfile::TempDir,
    original: PathBuf,
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

/// Runs the claimed steps; the outcome of each, and what they made, stored. `earlier` is the
/// note's stored transcript, for a `correct` claimed without `transcribe`.
pub(super) async fn run(
    claim: &Claim,
    store: &dyn BlobStore,
    scratch: &Path,
    speech: &Speech,
    earlier: Option<StoredTranscript>,
) -> Ran {
    let mut finish = Finish::default();
    let reading: Vec<JobStep> = claim
        .steps
        .iter()
        .map(|(step, _)| *step)
        .filter(|s| decodes(*s))
        .collect();
    let model = speech.model().cloned();
    let transcribe = claimed(claim, JobStep::Transcribe).then_some(());
    let correct = claimed(claim, JobStep::Correct).then_some(());
    let mut skip = |step: JobStep, why: &str| {
        finish
            .outcomes
            .push((step, StepOutcome::Skipped(why.to_owned())));
    };
    let transcribe = match (transcribe, &model) {
        (Some(()), None) => {
            skip(JobStep::Transcribe, NO_SPEECH_MODEL);
            None
        }
        (Some(()), Some(model)) => Some(model.clone()),
        (None, _) => None,
    };
    let correct = match correct {
        Some(()) if !claim.note.correction_asked => {
            skip(JobStep::Correct, NOT_ASKED);
            false
        }
        Some(()) if model.is_none() => {
            skip(JobStep::Correct, NO_SPEECH_MODEL);
            false
        }
        Some(()) => true,
        None => false,
    };
    let mut speaking: Vec<JobStep> = Vec::new();
    if transcribe.is_some() {
        speaking.push(JobStep::Transcribe);
    }
    if correct {
        speaking.push(JobStep::Correct);
    }
    if reading.is_empty() && speaking.is_empty() {
        return finish.into();
    }
    let mut files = match prepare(claim, store, scratch).await {
        Ok(files) => files,
        Err(e) => {
            retry_all(&mut finish, reading.iter().chain(&speaking), &e);
            return finish.into();
        }
    };
    if !reading.is_empty() {
        match pass(&reading, store, &mut files).await {
            Ok(stored) => {
                finish
                    .outcomes
                    .extend(reading.iter().map(|step| (*step, StepOutcome::Done)));
                finish.renditions = stored.renditions;
                finish.waveform = stored.waveform;
                finish.loudness = stored.loudness;
            }
            Err(PassError::Damaged(damage)) => {
                let reason = format!("the audio is damaged: {damage}");
                for step in reading {
                    let outcome =
                        if step == JobStep::Integrity || !claimed(claim, JobStep::Integrity) {
                            StepOutcome::Failed(reason.clone())
                        } else {
                            StepOutcome::Skipped(INTEGRITY_FAILED.to_owned())
                        };
                    finish.outcomes.push((step, outcome));
                }
                for step in speaking {
                    let skipped = StepOutcome::Skipped(INTEGRITY_FAILED.to_owned());
                    finish.outcomes.push((step, skipped));
                }
                return finish.into();
            }
            Err(PassError::Transient(error)) => {
                retry_all(&mut finish, reading.iter().chain(&speaking), &error);
                return finish.into();
            }
        }
    }
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let mut original = earlier;
    if let Some(model) = &transcribe {
        let heard = speech
            .transcribe(
                model,
                &files.original,
                claim.note.audio.duration_seconds,
                cancel.0.clone(),
            )
            .await;
        let outcome = match heard {
            Ok(transcript) => {
                original = Some(transcript.clone());
                finish.transcripts.push(transcript);
                StepOutcome::Done
            }
            Err(SpeechFailure::Damaged(reason)) => StepOutcome::Failed(reason),
            Err(SpeechFailure::Transient(error)) => retry(error),
        };
        let transcribed = outcome == StepOutcome::Done;
        finish.outcomes.push((JobStep::Transcribe, outcome));
        if correct && !transcribed {
            // It runs again with the transcript, or is skipped with it.
            let outcome = match finish.outcomes.last() {
                Some((_, StepOutcome::Retry { .. })) => retry("waiting for the transcript".into()),
                _ => StepOutcome::Skipped("there is no transcript to correct".into()),
            };
            finish.outcomes.push((JobStep::Correct, outcome));
            return Ran {
                finish,
                files: Some(files),
            };
        }
    }
    if correct {
        let outcome = match original {
            None => StepOutcome::Skipped("there is no transcript to correct".into()),
            Some(original) => match correction(claim, store, speech, &original, &mut files).await {
                Ok((corrected, rendition)) => {
                    finish.transcripts.push(corrected);
                    finish.renditions.push(rendition);
                    StepOutcome::Done
                }
                Err(SpeechFailure::Damaged(reason)) => StepOutcome::Failed(reason),
                Err(SpeechFailure::Transient(error)) => retry(error),
            },
        };
        finish.outcomes.push((JobStep::Correct, outcome));
    }
    Ran {
        finish,
        files: Some(files),
    }
}

/// Why a step after a failed integrity check does not run.
const INTEGRITY_FAILED: &str = "not run: the integrity check failed";

fn retry(error: String) -> StepOutcome {
    StepOutcome::Retry {
        error,
        retry_at: Timestamp::now(),
    }
}

fn retry_all<'a>(finish: &mut Finish, steps: impl Iterator<Item = &'a JobStep>, error: &str) {
    for step in steps {
        finish.outcomes.push((*step, retry(error.to_owned())));
    }
}

/// The corrected transcript and the corrected audio, stored.
async fn correction(
    claim: &Claim,
    store: &dyn BlobStore,
    speech: &Speech,
    original: &StoredTranscript,
    files: &mut PassFiles,
) -> Result<(StoredTranscript, StoredRendition), SpeechFailure> {
    let corrected = speech.correct_text(original).await?;
    let audio = speech
        .corrected_audio(&files.original, original, &corrected.text, files.dir.path())
        .await?;
    let stored = store_rendition(store, files, Rendition::Corrected, &audio)
        .await
        .map_err(|e| match e {
            PassError::Damaged(damage) => SpeechFailure::Damaged(damage.to_string()),
            PassError::Transient(error) => SpeechFailure::Transient(error),
        })?;
    tracing::debug!(note = %claim.note.id, edits = corrected.edits.len(), "corrected");
    Ok((corrected, stored))
}

/// The outputs as the repository records them: renditions already in the blob store.
struct Stored {
    renditions: Vec<StoredRendition>,
    waveform: Option<String>,
    loudness: Option<Option<Loudness>>,
}

/// The claim's scratch directory, with the note's bytes copied out of the store.
async fn prepare(
    claim: &Claim,
    store: &dyn BlobStore,
    scratch: &Path,
) -> Result<PassFiles, String> {
    let made = async {
        std::fs::create_dir_all(scratch)?;
        let dir = tempfile::Builder::new()
            .prefix("job-")
            .tempdir_in(scratch)?;
        let original = dir.path().join("original");
        copy_original(claim, store, &original).await?;
        Ok::<_, PassError>(PassFiles {
            dir,
            original,
            renditions: Vec::new(),
        })
    };
    made.await.map_err(|e| match e {
        PassError::Damaged(damage) => damage.to_string(),
        PassError::Transient(error) => error,
    })
}

async fn pass(
    steps: &[JobStep],
    store: &dyn BlobStore,
    files: &mut PassFiles,
) -> Result<Stored, PassError> {
    let original = files.original.clone();
    let steps = steps.to_vec();
    let out = files.dir.path().to_path_buf();
    let made = super::background::run("pass", move || decode(&original, &out, &steps))
        .await
        .map_err(PassError::Transient)??;
    let mut renditions = Vec::with_capacity(made.renditions.len());
    for rendition in made.renditions {
        let Some(name) = Rendition::parse(rendition.name) else {
            continue;
        };
        renditions.push(store_rendition(store, files, name, &rendition).await?);
    }
    let waveform = made
        .waveform
        .map(|w| serde_json::to_string(&w).map_err(|e| PassError::Transient(e.to_string())))
        .transpose()?;
    Ok(Stored {
        renditions,
        waveform,
        loudness: made.loudness,
    })
}

/// Puts a rendition's file in the blob store; it is kept among the claim's files until its
/// reference is recorded.
async fn store_rendition(
    store: &dyn BlobStore,
    files: &mut PassFiles,
    name: Rendition,
    rendition: &hark_audio::process::Rendition,
) -> Result<StoredRendition, PassError> {
    let sha256 = digest(&rendition.path).await?;
    store
        .put_file(&BlobKey::parse(&sha256)?, &rendition.path)
        .await?;
    files
        .renditions
        .push((sha256.clone(), rendition.path.clone()));
    Ok(StoredRendition {
        name,
        sha256,
        mime: rendition.mime.to_owned(),
        duration_seconds: rendition.duration_seconds,
        size_bytes: rendition.size_bytes,
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

/// The file's SHA-256.
async fn digest(path: &Path) -> Result<String, PassError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut HashWriter(&mut hasher))?;
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
