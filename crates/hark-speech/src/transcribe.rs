//! Transcribing a recording of any length: audio is pushed as it is decoded, and each 30 s
//! window is transcribed as soon as it is full. Segments come from the timestamp tokens; the
//! next window starts at the last complete segment's end (or the last word's), as OpenAI's
//! reference seeks, so text at a window's edge is neither lost nor repeated. Only the audio
//! not yet transcribed is kept.

use crate::SpeechError;
use crate::decode::{Decoded, LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD, WindowDecoder};
use crate::loudness::Loudness;
use crate::mel::{HOP, N_FFT, SAMPLE_RATE, WINDOW_FRAMES, WINDOW_SAMPLES};
use crate::model::Model;
use crate::network::{AudioContext, TokenCache, mel_tensor};
use crate::timing::{self, WordTiming};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Mel frames per second.
const FRAMES_PER_SECOND: f64 = (SAMPLE_RATE / HOP) as f64;
/// Languages written without spaces between words.
const UNSPACED_LANGUAGES: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];

/// How to transcribe.
#[derive(Clone, Debug, Default)]
pub struct TranscribeOptions {
    /// The language spoken, as a code such as `en`; detected from the first 30 s when `None`.
    /// English-only (`.en`) models take only `en`.
    pub language: Option<String>,
    /// Text that precedes the recording: names and spellings the model should prefer.
    pub prompt: Option<String>,
    /// Raised by the caller to stop the transcription at the next decoding step.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// The text of a recording in timed segments.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transcript {
    pub language: String,
    pub duration_seconds: f64,
    pub segments: Vec<Segment>,
}

/// A stretch of speech, mostly a sentence or a phrase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segment {
    /// Seconds from the start of the recording.
    pub start: f64,
    pub end: f64,
    /// The text, without surrounding spaces.
    pub text: String,
    /// The geometric mean of its tokens' probabilities, 0 to 1.
    pub confidence: f64,
    /// Its words in order, each within the segment.
    pub words: Vec<Word>,
}

/// A word with its punctuation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
    /// The mean probability of its tokens, 0 to 1.
    pub confidence: f64,
}

/// The language to transcribe in, as far as it is known.
enum Language {
    Known(LanguageChoice),
    Detect,
    Unsupported(String),
}

struct LanguageChoice {
    code: String,
    /// `<|startoftranscript|>`, then for multilingual models the language and task tokens.
    sot_sequence: Vec<u32>,
}

/// A transcription in progress. Push 16 kHz mono samples as they come, then `finish`.
pub struct Transcriber<'m> {
    model: &'m Model,
    cancel: Option<Arc<AtomicBool>>,
    language: Language,
    /// The samples not yet transcribed, from half an FFT before the next window on.
    audio: Vec<f32>,
    /// Which sample of the recording `audio[0]` is.
    audio_start: usize,
    samples: usize,
    /// The mel frame the next window starts at.
    seek: usize,
    /// Earlier text the next window is conditioned on.
    context: Vec<u32>,
    segments: Vec<Segment>,
    last_speech_end: f64,
}

/// A window's segment before its words are timed.
struct Draft {
    start: f64,
    end: f64,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    words: Vec<Word>,
}

impl<'m> Transcriber<'m> {
    pub const SAMPLE_RATE: u32 = SAMPLE_RATE as u32;

    pub(crate) fn new(model: &'m Model, options: TranscribeOptions) -> Self {
        let tokens = &model.tokens;
        let language = match (options.language, model.info.multilingual) {
            (None, false) => Language::Known(LanguageChoice {
                code: "en".into(),
                sot_sequence: vec![tokens.sot],
            }),
            (Some(code), false) if code == "en" => Language::Known(LanguageChoice {
                code,
                sot_sequence: vec![tokens.sot],
            }),
            (None, true) => Language::Detect,
            (Some(code), true) => match tokens.language(&code) {
                Some(token) => Language::Known(LanguageChoice {
                    sot_sequence: vec![tokens.sot, token, tokens.transcribe],
                    code,
                }),
                None => Language::Unsupported(code),
            },
            (Some(code), false) => Language::Unsupported(code),
        };
        let context = options
            .prompt
            .as_deref()
            .map(|prompt| tokens.encode(&format!(" {}", prompt.trim())))
            .unwrap_or_default();
        Self {
            model,
            cancel: options.cancel,
            language,
            audio: Vec::new(),
            audio_start: 0,
            samples: 0,
            seek: 0,
            context,
            segments: Vec::new(),
            last_speech_end: 0.0,
        }
    }

    /// Adds samples (16 kHz mono, -1 to 1) and transcribes every window they complete.
    pub fn push(&mut self, samples: &[f32]) -> Result<(), SpeechError> {
        self.check_language()?;
        self.audio.extend_from_slice(samples);
        self.samples += samples.len();
        let model = self.model;
        model.run(|| {
            while self.samples >= self.seek * HOP + WINDOW_SAMPLES - N_FFT / 2 {
                self.transcribe_window(WINDOW_FRAMES)?;
            }
            Ok(())
        })
    }

    /// Transcribes what is left and returns the whole transcript.
    pub fn finish(mut self) -> Result<Transcript, SpeechError> {
        self.check_language()?;
        let content_frames = self.samples / HOP;
        let model = self.model;
        model.run(|| {
            while self.seek < content_frames {
                self.transcribe_window((content_frames - self.seek).min(WINDOW_FRAMES))?;
            }
            Ok::<_, SpeechError>(())
        })?;
        let duration = self.samples as f64 / SAMPLE_RATE as f64;
        let language = match self.language {
            Language::Known(choice) => choice.code,
            // Nothing long enough to detect a language in.
            _ => String::new(),
        };
        Ok(Transcript {
            language,
            duration_seconds: duration,
            segments: tidy(self.segments, duration),
        })
    }

    fn check_language(&self) -> Result<(), SpeechError> {
        match &self.language {
            Language::Unsupported(code) => Err(SpeechError::UnsupportedLanguage {
                language: code.clone(),
                model: self.model.info.name.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn check_cancel(&self) -> Result<(), SpeechError> {
        match &self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(SpeechError::Cancelled),
            _ => Ok(()),
        }
    }

    /// The window's audio: from half an FFT before the seek point, zeros past the end, the
    /// start of the recording reflected before it (as `torch.stft(center=True)` pads).
    fn window_audio(&self) -> Vec<f32> {
        let first = (self.seek * HOP) as isize - (N_FFT / 2) as isize;
        (0..WINDOW_SAMPLES as isize)
            .map(|k| {
                let index = (first + k).unsigned_abs();
                index
                    .checked_sub(self.audio_start)
                    .and_then(|i| self.audio.get(i))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect()
    }

    /// Transcribes the window at `seek`, of which `frames` hold audio, and moves `seek` on.
    fn transcribe_window(&mut self, frames: usize) -> Result<(), SpeechError> {
        self.check_cancel()?;
        let model = self.model;
        let window_audio = self.window_audio();
        let loudness = Loudness::of(&window_audio, frames);
        if loudness.is_silent() {
            self.seek += frames;
            self.drop_consumed_audio();
            return Ok(());
        }
        let mel = model.mel.log_mel(&window_audio, WINDOW_FRAMES);
        let features = model
            .network
            .encoder
            .forward(&mel_tensor(mel, model.mel.n_mels())?)?;
        let audio = model.network.decoder.audio_context(&features)?;
        if matches!(self.language, Language::Detect) {
            self.language = Language::Known(self.detect_language(&audio)?);
        }
        let Language::Known(language) = &self.language else {
            unreachable!("the language was checked, then detected")
        };
        let decoder = WindowDecoder {
            model,
            audio: &audio,
            sot_sequence: &language.sot_sequence,
            cancel: self.cancel.as_deref(),
        };
        let decoded = decoder.decode_with_fallback(&self.context, self.seek as u64)?;
        let window_start = self.seek as f64 / FRAMES_PER_SECOND;
        let previous_seek = self.seek;

        let skip = decoded.no_speech_prob > NO_SPEECH_THRESHOLD
            && decoded.avg_logprob <= LOGPROB_THRESHOLD;
        let mut drafts = Vec::new();
        if skip {
            self.seek += frames;
        } else {
            let (split, single_ending, last_timestamp) = self.split(&decoded, window_start, frames);
            drafts = split;
            self.seek += match (single_ending, last_timestamp) {
                (false, Some(steps)) => steps * 2,
                _ => frames,
            };
            let spaced = !UNSPACED_LANGUAGES.contains(&language.code.as_str());
            let sot_sequence = language.sot_sequence.clone();
            let last_word_end = self.time_words(
                &mut drafts,
                &audio,
                &sot_sequence,
                frames,
                window_start,
                spaced,
            )?;
            if !single_ending && let Some(end) = last_word_end.filter(|&end| end > window_start) {
                self.seek = (end * FRAMES_PER_SECOND).round() as usize;
            }
        }
        self.seek = self.seek.max(previous_seek + 1);
        self.keep(drafts, &decoded, &loudness, window_start);
        self.drop_consumed_audio();
        Ok(())
    }

    /// Forgets the audio before the next window.
    fn drop_consumed_audio(&mut self) {
        let keep_from = (self.seek * HOP).saturating_sub(N_FFT / 2);
        self.audio.drain(
            ..keep_from
                .saturating_sub(self.audio_start)
                .min(self.audio.len()),
        );
        self.audio_start = self.audio_start.max(keep_from);
    }

    /// Splits the window's tokens into segments at pairs of timestamps. Also returns whether
    /// the tokens end on a single timestamp (the window's text is complete) and, otherwise,
    /// the last timestamp closing a complete segment, in 20 ms steps.
    fn split(
        &self,
        decoded: &Decoded,
        window_start: f64,
        frames: usize,
    ) -> (Vec<Draft>, bool, Option<usize>) {
        let tokens = &self.model.tokens;
        let all = &decoded.tokens;
        let is_ts: Vec<bool> = all.iter().map(|&t| tokens.is_timestamp(t)).collect();
        let single_ending = is_ts.len() >= 2 && !is_ts[is_ts.len() - 2] && is_ts[is_ts.len() - 1];
        let mut cuts: Vec<usize> = (1..all.len())
            .filter(|&i| is_ts[i - 1] && is_ts[i])
            .collect();
        let draft = |range: std::ops::Range<usize>, start: f64, end: f64| Draft {
            start,
            end,
            tokens: all[range.clone()].to_vec(),
            logprobs: decoded.logprobs[range].to_vec(),
            words: Vec::new(),
        };
        if cuts.is_empty() {
            let mut duration = frames as f64 / FRAMES_PER_SECOND;
            if let Some(&last) = all.iter().rev().find(|&&t| tokens.is_timestamp(t))
                && last != tokens.timestamp_begin
            {
                duration = tokens.seconds(last);
            }
            let drafts = vec![draft(0..all.len(), window_start, window_start + duration)];
            return (drafts, single_ending, None);
        }
        if single_ending {
            cuts.push(all.len());
        }
        let mut drafts = Vec::with_capacity(cuts.len());
        let mut from = 0;
        for &cut in &cuts {
            let (first, last) = (all[from], all[cut - 1]);
            drafts.push(draft(
                from..cut,
                window_start + tokens.seconds(first),
                window_start + tokens.seconds(last),
            ));
            from = cut;
        }
        let last_timestamp = (all[from - 1] - tokens.timestamp_begin) as usize;
        (drafts, single_ending, Some(last_timestamp))
    }

    /// Times the words of the window's segments (OpenAI's `add_word_timestamps`), trimming
    /// implausibly long words at pauses and sentence ends. Returns the last word's end.
    fn time_words(
        &mut self,
        drafts: &mut [Draft],
        audio: &AudioContext,
        sot_sequence: &[u32],
        frames: usize,
        window_start: f64,
        spaced: bool,
    ) -> Result<Option<f64>, SpeechError> {
        let eot = self.model.tokens.eot;
        let text: Vec<(u32, f64)> = drafts
            .iter()
            .flat_map(|d| d.tokens.iter().zip(&d.logprobs))
            .filter(|&(&t, _)| t < eot)
            .map(|(&t, &lp)| (t, f64::from(lp).exp()))
            .collect();
        let (text_tokens, probabilities): (Vec<u32>, Vec<f64>) = text.into_iter().unzip();
        let mut alignment = timing::align(
            self.model,
            audio,
            sot_sequence,
            &text_tokens,
            &probabilities,
            frames,
            spaced,
        )?;
        let mut durations: Vec<f64> = alignment
            .iter()
            .map(|w| w.end - w.start)
            .filter(|&d| d > 0.0)
            .collect();
        durations.sort_by(f64::total_cmp);
        let median = durations.get(durations.len() / 2).map_or(0.0, |&m| {
            if durations.len().is_multiple_of(2) {
                (m + durations[durations.len() / 2 - 1]) / 2.0
            } else {
                m
            }
        });
        let median = median.min(0.7);
        let max_duration = median * 2.0;
        if !durations.is_empty() {
            const SENTENCE_ENDS: [&str; 6] = [".", "。", "!", "！", "?", "？"];
            for i in 1..alignment.len() {
                if alignment[i].end - alignment[i].start > max_duration {
                    if SENTENCE_ENDS.contains(&alignment[i].word.as_str()) {
                        alignment[i].end = alignment[i].start + max_duration;
                    } else if SENTENCE_ENDS.contains(&alignment[i - 1].word.as_str()) {
                        alignment[i].start = alignment[i].end - max_duration;
                    }
                }
            }
        }
        timing::merge_punctuation(&mut alignment);

        let mut timings = alignment.into_iter().peekable();
        let mut last_end = None;
        for draft in drafts.iter_mut() {
            let text_count = draft.tokens.iter().filter(|&&t| t < eot).count();
            let mut taken = 0;
            let mut words: Vec<WordTiming> = Vec::new();
            while taken < text_count {
                let Some(timing) = timings.next() else { break };
                taken += timing.tokens;
                if !timing.word.is_empty() {
                    words.push(WordTiming {
                        start: window_start + timing.start,
                        end: window_start + timing.end,
                        ..timing
                    });
                }
            }
            self.fit_words(draft, &mut words, median, max_duration);
            if let Some(last) = words.last() {
                last_end = Some(last.end);
            }
            draft.words = words
                .into_iter()
                .map(|w| Word {
                    word: w.word.trim().to_owned(),
                    start: w.start,
                    end: w.end,
                    confidence: w.probability.clamp(0.0, 1.0),
                })
                .collect();
        }
        Ok(last_end)
    }

    /// OpenAI's boundary rules: after a pause the first words may not be long, and the segment
    /// takes its first and last words' times unless they overrun it by half a second.
    fn fit_words(
        &mut self,
        draft: &mut Draft,
        words: &mut [WordTiming],
        median: f64,
        max_duration: f64,
    ) {
        let Some(first) = words.first() else { return };
        let first_long = first.end - first.start > max_duration;
        let second_long = words.len() > 1 && words[1].end - first.start > max_duration * 2.0;
        if first.end - self.last_speech_end > median * 4.0 && (first_long || second_long) {
            if words.len() > 1 && words[1].end - words[1].start > max_duration {
                let boundary = (words[1].end / 2.0).max(words[1].end - max_duration);
                words[0].end = boundary;
                words[1].start = boundary;
            }
            words[0].start = (words[0].end - max_duration).max(0.0);
        }
        if draft.start < words[0].end && draft.start - 0.5 > words[0].start {
            words[0].start = (words[0].end - median).min(draft.start).max(0.0);
        } else {
            draft.start = words[0].start;
        }
        let last = words.len() - 1;
        if draft.end > words[last].start && draft.end + 0.5 < words[last].end {
            words[last].end = (words[last].start + median).max(draft.end);
        } else {
            draft.end = words[last].end;
        }
        self.last_speech_end = draft.end;
    }

    /// Keeps the window's segments that have text and sound, their words trimmed of the pauses
    /// around them, and adds their tokens to the context of the next window.
    fn keep(
        &mut self,
        drafts: Vec<Draft>,
        decoded: &Decoded,
        loudness: &Loudness,
        window_start: f64,
    ) {
        let tokens = &self.model.tokens;
        let sounding = |start: f64, end: f64| {
            loudness
                .sounding(start - window_start, end - window_start)
                .map(|(s, e)| (s + window_start, e + window_start))
        };
        for mut draft in drafts {
            let text = tokens.decode(&draft.tokens);
            let text = text.trim();
            // Text over silence was imagined.
            if text.is_empty()
                || draft.start >= draft.end
                || sounding(draft.start, draft.end).is_none()
            {
                continue;
            }
            for word in &mut draft.words {
                if let Some((start, end)) = sounding(word.start, word.end) {
                    (word.start, word.end) = (start, end);
                }
            }
            if is_anomaly(&draft.words) {
                continue;
            }
            if let (Some(first), Some(last)) = (draft.words.first(), draft.words.last()) {
                (draft.start, draft.end) = (first.start, last.end);
            }
            let text_logprobs: Vec<f64> = draft
                .tokens
                .iter()
                .zip(&draft.logprobs)
                .filter(|&(&t, _)| t < tokens.eot)
                .map(|(_, &lp)| f64::from(lp))
                .collect();
            let mean = if text_logprobs.is_empty() {
                decoded.avg_logprob
            } else {
                text_logprobs.iter().sum::<f64>() / text_logprobs.len() as f64
            };
            self.context.extend(&draft.tokens);
            self.segments.push(Segment {
                start: draft.start,
                end: draft.end,
                text: text.to_owned(),
                confidence: mean.exp().clamp(0.0, 1.0),
                words: draft.words,
            });
        }
        // A decoding that needed a high temperature is a poor context for the next window.
        if decoded.temperature > 0.5 {
            self.context.clear();
        }
        let max = self.model.dims.text_ctx / 2 - 1;
        if self.context.len() > max {
            self.context.drain(..self.context.len() - max);
        }
    }

    /// The most probable language of the window (for multilingual models asked to detect).
    fn detect_language(&self, audio: &AudioContext) -> Result<LanguageChoice, SpeechError> {
        let tokens = &self.model.tokens;
        let decoder = &self.model.network.decoder;
        let hidden = decoder.step(tokens.sot, &mut TokenCache::default(), audio)?;
        let logits = decoder.logits(&hidden);
        let (code, token) = tokens
            .languages
            .iter()
            .max_by(|a, b| logits[a.1 as usize].total_cmp(&logits[b.1 as usize]))
            .map(|(code, token)| (code.clone(), *token))
            .ok_or_else(|| candle_core::Error::Msg("the vocabulary has no languages".into()))?;
        Ok(LanguageChoice {
            code,
            sot_sequence: vec![tokens.sot, token, tokens.transcribe],
        })
    }
}

/// Whether a segment's words look imagined, by OpenAI's measure (`is_segment_anomaly`): among
/// the first eight, improbable, very short or overlong words. Timed to their sound, words the
/// model made up over a pause are all of these.
fn is_anomaly(words: &[Word]) -> bool {
    const PUNCTUATION: &str = "\"'“¿([{-\"'.。,，!！?？:：”)]}、";
    let words: Vec<&Word> = words
        .iter()
        .filter(|w| !PUNCTUATION.contains(w.word.as_str()))
        .take(8)
        .collect();
    if words.is_empty() {
        return false;
    }
    let score: f64 = words
        .iter()
        .map(|w| {
            let duration = w.end - w.start;
            f64::from(u8::from(w.confidence < 0.15))
                + (0.133 - duration).max(0.0) * 15.0
                + (duration - 2.0).max(0.0)
        })
        .sum();
    score >= 3.0 || score + 0.01 >= words.len() as f64
}

/// Holds every time to the recording and every word to its segment, in order: the model's
/// timestamps may run past the end of the audio, and word timings past their segment.
fn tidy(mut segments: Vec<Segment>, duration: f64) -> Vec<Segment> {
    let mut previous_end: f64 = 0.0;
    for segment in &mut segments {
        segment.start = segment.start.clamp(previous_end, duration);
        segment.end = segment.end.clamp(segment.start, duration);
        previous_end = segment.end;
        let mut word_end = segment.start;
        for word in &mut segment.words {
            word.start = word.start.clamp(word_end, segment.end);
            word.end = word.end.clamp(word.start, segment.end);
            word_end = word.end;
        }
    }
    segments
}
