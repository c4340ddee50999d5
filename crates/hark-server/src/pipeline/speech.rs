//! The speech steps. `transcribe` runs the Whisper model over the note's audio, decoded again
//! as 16 kHz mono and fed to the model window by window (a long note is never held whole).
//! `correct` makes the grammar-corrected transcript and the corrected audio: the corrected
//! text spoken by the configured synthesiser, or else the original voice with fillers,
//! stuttered repeats and long pauses cut out. Both run on blocking threads; inference uses the
//! model's own pool of `[speech] threads`.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use hark_api::{TranscriptSegment, TranscriptVersion, TranscriptWord};
use hark_audio::process::{MonoSink, OpusFile, PcmSink, ProcessError};
use hark_correct::{Corrector, Splicer, TimedWord};
use hark_speech::{Model, TranscribeOptions};

use crate::config::SpeechConfig;
use crate::domain::StoredTranscript;

/// Fade at each cut of the corrected audio: long enough that no click is heard.
const FADE_SECONDS: f64 = 0.01;

/// What the speech steps run with: the model (if one is installed), the grammar rules (built
/// on first use: they take a moment), and the synthesiser settings.
pub struct Speech {
    model: Option<Arc<Model>>,
    corrector: OnceLock<Arc<Corrector>>,
    settings: SpeechConfig,
    http: reqwest::Client,
}

/// Why a speech step did not produce its result.
#[derive(Debug, thiserror::Error)]
pub enum SpeechFailure {
    /// The audio itself cannot be decoded.
    #[error("the audio is damaged: {0}")]
    Damaged(String),
    /// Anything else: worth another attempt.
    #[error("{0}")]
    Transient(String),
}

impl From<io::Error> for SpeechFailure {
    fn from(e: io::Error) -> Self {
        SpeechFailure::Transient(e.to_string())
    }
}

impl Speech {
    /// Loads the model in `model_dir` when there is one. A model that is there but cannot be
    /// loaded is reported, and the steps are skipped as without one.
    pub fn load(settings: &SpeechConfig) -> Speech {
        let dir = &settings.model_dir;
        let model = if dir.join("config.json").exists() {
            match Model::load(dir, settings.thread_count()) {
                Ok(model) => {
                    tracing::info!(model = model.name(), dir = %dir.display(), "speech model loaded");
                    Some(Arc::new(model))
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "the speech model could not be loaded; transcription is off");
                    None
                }
            }
        } else {
            tracing::info!(dir = %dir.display(), "no speech model installed; transcription is off (see `hark model import`)");
            None
        };
        Speech {
            model,
            corrector: OnceLock::new(),
            settings: settings.clone(),
            http: reqwest::Client::new(),
        }
    }

    pub fn model(&self) -> Option<&Arc<Model>> {
        self.model.as_ref()
    }

    fn corrector(&self) -> Arc<Corrector> {
        self.corrector
            .get_or_init(|| Arc::new(Corrector::new()))
            .clone()
    }

    /// Transcribes the audio file at `path` on a blocking thread; stops early once `cancel`
    /// is set (the claim was lost, the client went away).
    pub async fn transcribe(
        &self,
        model: &Arc<Model>,
        path: &Path,
        duration_seconds: f64,
        cancel: Arc<AtomicBool>,
    ) -> Result<StoredTranscript, SpeechFailure> {
        self.transcribe_with(model, path, duration_seconds, None, None, cancel)
            .await
    }

    /// As `transcribe`, in `language` and with `prompt` as the text before the audio.
    pub async fn transcribe_with(
        &self,
        model: &Arc<Model>,
        path: &Path,
        duration_seconds: f64,
        language: Option<String>,
        prompt: Option<String>,
        cancel: Arc<AtomicBool>,
    ) -> Result<StoredTranscript, SpeechFailure> {
        let (model, path) = (model.clone(), path.to_owned());
        let options = TranscribeOptions {
            language,
            prompt,
            cancel: Some(cancel),
        };
        super::background::run("transcribe", move || {
            transcribe_file(&model, &path, duration_seconds, options)
        })
        .await
        .map_err(SpeechFailure::Transient)?
    }

    /// The corrected transcript of `original`.
    pub async fn correct_text(
        &self,
        original: &StoredTranscript,
    ) -> Result<StoredTranscript, SpeechFailure> {
        let corrector = self.corrector();
        let original = original.clone();
        super::background::run("correct", move || corrected(&corrector, &original))
            .await
            .map_err(SpeechFailure::Transient)
    }

    /// The corrected audio as an Ogg Opus file in `dir`: the synthesiser speaking `text` when
    /// one is configured, otherwise `original_audio` with what `transcript`'s words show to be
    /// fillers, stutters and long pauses cut out.
    pub async fn corrected_audio(
        &self,
        original_audio: &Path,
        transcript: &StoredTranscript,
        text: &str,
        dir: &Path,
    ) -> Result<hark_audio::process::Rendition, SpeechFailure> {
        let out = dir.join("corrected.ogg");
        let tts = &self.settings.tts;
        if !tts.command.trim().is_empty() || !tts.url.trim().is_empty() {
            let spoken = dir.join("spoken");
            self.synthesise(text, &spoken).await?;
            return super::background::run("reencode", move || reencode(&spoken, &out))
                .await
                .map_err(SpeechFailure::Transient)?;
        }
        let words: Vec<(String, f64, f64)> = transcript
            .segments
            .iter()
            .flat_map(|s| s.words.iter())
            .map(|w| (w.word.clone(), w.start, w.end))
            .collect();
        let (audio, duration, max_pause) = (
            original_audio.to_owned(),
            transcript.duration_seconds,
            self.settings.max_pause_seconds,
        );
        super::background::run("cut", move || {
            let timed: Vec<TimedWord<'_>> = words
                .iter()
                .map(|(word, start, end)| TimedWord {
                    word,
                    start: *start,
                    end: *end,
                })
                .collect();
            let keep = hark_correct::keep_spans(&timed, duration, max_pause);
            cut(&audio, &out, &keep)
        })
        .await
        .map_err(SpeechFailure::Transient)?
    }

    /// Writes the synthesiser's audio for `text` to `to`.
    async fn synthesise(&self, text: &str, to: &Path) -> Result<(), SpeechFailure> {
        let tts = &self.settings.tts;
        let failed = |e: String| SpeechFailure::Transient(format!("the speech synthesiser: {e}"));
        if !tts.command.trim().is_empty() {
            let mut parts = tts.command.split_whitespace();
            let program = parts.next().unwrap_or_default();
            let mut child = tokio::process::Command::new(program)
                .args(parts)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| failed(format!("{program}: {e}")))?;
            if let Some(mut stdin) = child.stdin.take() {
                tokio::io::AsyncWriteExt::write_all(&mut stdin, text.as_bytes())
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            }
            let output = child
                .wait_with_output()
                .await
                .map_err(|e| failed(e.to_string()))?;
            if !output.status.success() || output.stdout.is_empty() {
                return Err(failed(format!(
                    "{program} exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            let mut wav = output.stdout;
            settle_streamed_wav(&mut wav);
            tokio::fs::write(to, &wav).await?;
            return Ok(());
        }
        use secrecy::ExposeSecret;
        let mut request = self.http.post(&tts.url).json(&serde_json::json!({
            "model": tts.model,
            "voice": tts.voice,
            "input": text,
            "response_format": "wav",
        }));
        let key = tts.api_key.expose_secret();
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("{} answered {status}", tts.url)));
        }
        let bytes = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        tokio::fs::write(to, &bytes).await?;
        Ok(())
    }
}

/// A WAV written to a pipe cannot go back to fill in its sizes, so its header claims more audio
/// (often 0xFFFFFFFF bytes) than follows; the sizes are set to what arrived.
fn settle_streamed_wav(wav: &mut [u8]) {
    if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return;
    }
    let total = u32::try_from(wav.len() - 8).unwrap_or(u32::MAX);
    wav[4..8].copy_from_slice(&total.to_le_bytes());
    let mut at = 12;
    while at + 8 <= wav.len() {
        let size = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]);
        if &wav[at..at + 4] == b"data" {
            let rest = u32::try_from(wav.len() - at - 8).unwrap_or(u32::MAX);
            wav[at + 4..at + 8].copy_from_slice(&size.min(rest).to_le_bytes());
            return;
        }
        at += 8 + size as usize + (size as usize & 1);
    }
}

/// One decode of `path` into the model.
fn transcribe_file(
    model: &Model,
    path: &Path,
    duration_seconds: f64,
    options: TranscribeOptions,
) -> Result<StoredTranscript, SpeechFailure> {
    let mut transcriber = model.transcriber(options);
    {
        let mut sink = MonoSink::new(hark_speech::Transcriber::SAMPLE_RATE, |block: &[f32]| {
            transcriber.push(block).map_err(io::Error::other)
        });
        decode(path, &mut sink)?;
    }
    let heard = transcriber
        .finish()
        .map_err(|e| SpeechFailure::Transient(e.to_string()))?;
    let segments: Vec<TranscriptSegment> = heard
        .segments
        .into_iter()
        .map(|s| (s.text.trim().to_owned(), s))
        .filter(|(text, _)| !text.is_empty())
        .enumerate()
        .map(|(id, (text, s))| TranscriptSegment {
            id: id as u32,
            start: millis(s.start.min(duration_seconds)),
            end: millis(s.end.min(duration_seconds)),
            text,
            confidence: s.confidence.clamp(0.0, 1.0),
            words: s
                .words
                .into_iter()
                .map(|w| TranscriptWord {
                    word: w.word.trim().to_owned(),
                    start: millis(w.start.min(duration_seconds)),
                    end: millis(w.end.min(duration_seconds)),
                    confidence: w.confidence.clamp(0.0, 1.0),
                })
                .filter(|w| !w.word.is_empty())
                .collect(),
        })
        .collect();
    Ok(StoredTranscript {
        version: TranscriptVersion::Original,
        model: model.name().to_owned(),
        language: heard.language,
        duration_seconds,
        text: text_of(&segments),
        segments,
        edits: Vec::new(),
    })
}

/// A transcript's text: its segments' texts, a space between each.
fn text_of(segments: &[TranscriptSegment]) -> String {
    let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
    texts.join(" ")
}

/// Seconds rounded to the millisecond: finer is noise, and it keeps stored JSON short.
fn millis(seconds: f64) -> f64 {
    (seconds.max(0.0) * 1000.0).round() / 1000.0
}

/// The corrected transcript: the edits of the whole text, and each segment's text with the
/// edits that fall inside it applied (the words keep their timings).
fn corrected(corrector: &Corrector, original: &StoredTranscript) -> StoredTranscript {
    let edits = corrector.edits(&original.text);
    let mut segments = original.segments.clone();
    // Where each segment's text starts in the whole text, in chars (one space between).
    let mut start = 0;
    for segment in &mut segments {
        let length = segment.text.chars().count();
        let inside: Vec<hark_correct::Edit> = edits
            .iter()
            .filter(|e| e.offset >= start && e.offset + e.length <= start + length)
            .map(|e| hark_correct::Edit {
                offset: e.offset - start,
                ..e.clone()
            })
            .collect();
        segment.text = hark_correct::apply(&segment.text, &inside);
        start += length + 1;
    }
    StoredTranscript {
        version: TranscriptVersion::Corrected,
        text: hark_correct::apply(&original.text, &edits),
        edits: edits
            .into_iter()
            .map(|e| hark_api::TranscriptEdit {
                offset: e.offset,
                length: e.length,
                replacement: e.replacement,
                rule: e.rule,
                message: e.message,
            })
            .collect(),
        segments,
        ..original.clone()
    }
}

/// The original with only the `keep` spans, faded at each cut, as Ogg Opus.
fn cut(
    original: &Path,
    out: &Path,
    keep: &[std::ops::Range<f64>],
) -> Result<hark_audio::process::Rendition, SpeechFailure> {
    let mut file = OpusFile::create(out, OpusFile::SAMPLE_RATE)?;
    let mut splicer = Splicer::new(OpusFile::SAMPLE_RATE, 1, keep, FADE_SECONDS);
    let mut kept = Vec::new();
    {
        let mut sink = MonoSink::new(OpusFile::SAMPLE_RATE, |block: &[f32]| {
            kept.clear();
            splicer.push(block, &mut kept);
            file.push(&kept)
        });
        decode(original, &mut sink)?;
    }
    Ok(file.finish()?)
}

/// The synthesiser's audio (any format Hark reads) as Ogg Opus.
fn reencode(spoken: &Path, out: &Path) -> Result<hark_audio::process::Rendition, SpeechFailure> {
    let mut file = OpusFile::create(out, OpusFile::SAMPLE_RATE)?;
    {
        let mut sink = MonoSink::new(OpusFile::SAMPLE_RATE, |block: &[f32]| file.push(block));
        decode(spoken, &mut sink)?;
    }
    Ok(file.finish()?)
}

fn decode(path: &Path, sink: &mut dyn PcmSink) -> Result<(), SpeechFailure> {
    match hark_audio::process::decode_into(path, &mut [sink]) {
        Ok(_) => Ok(()),
        Err(ProcessError::Damaged(damage)) => Err(SpeechFailure::Damaged(damage.to_string())),
        Err(ProcessError::Io(e)) => Err(e.into()),
    }
}

/// Sets the flag when dropped: a claim's future dropped (its lease lost) stops the blocking
/// work it started.
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::settle_streamed_wav;

    #[test]
    fn a_streamed_wav_gets_the_sizes_of_what_arrived() {
        let mut wav =
            b"RIFF\xff\xff\xff\xffWAVEfmt \x02\x00\x00\x00abdata\xff\xff\xff\xff1234".to_vec();
        settle_streamed_wav(&mut wav);
        assert_eq!(&wav[4..8], &(wav.len() as u32 - 8).to_le_bytes());
        assert_eq!(&wav[26..30], &4u32.to_le_bytes());
        // Anything else is left alone.
        let mut other = b"OggS....".to_vec();
        settle_streamed_wav(&mut other);
        assert_eq!(other, b"OggS....");
    }
}
