//! Decoding one 30 s window into tokens, as OpenAI's reference decodes: greedy, with its logit
//! filters (blank and special tokens suppressed, timestamp tokens paired and never going
//! back), the no-speech probability read at the first step, and a retry at higher
//! temperatures when the text repeats itself (compresses too well) or is improbable.

use crate::SpeechError;
use crate::model::Model;
use crate::network::{AudioContext, TokenCache};
use crate::softmax::log_sum_exp;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

const TEMPERATURES: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// Text that gzip shrinks more than this repeats itself.
const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
/// Below this mean token log-probability a decoding failed...
pub(crate) const LOGPROB_THRESHOLD: f64 = -1.0;
/// ...unless the window is likely silence.
pub(crate) const NO_SPEECH_THRESHOLD: f64 = 0.6;
/// The first timestamp of a window is at most this far in (in timestamp steps of 20 ms).
const MAX_INITIAL_TIMESTAMP_STEPS: usize = 50;

/// One window's decoding.
pub(crate) struct Decoded {
    /// The sampled tokens, timestamps included, without the closing end-of-text.
    pub tokens: Vec<u32>,
    /// Each sampled token's log-probability.
    pub logprobs: Vec<f32>,
    pub avg_logprob: f64,
    pub no_speech_prob: f64,
    pub temperature: f64,
    pub compression_ratio: f64,
}

impl Decoded {
    fn failed(&self) -> bool {
        self.compression_ratio > COMPRESSION_RATIO_THRESHOLD || self.avg_logprob < LOGPROB_THRESHOLD
    }

    /// Whether the window holds no speech: the model says so, and what it wrote is improbable.
    pub fn is_silence(&self) -> bool {
        self.no_speech_prob > NO_SPEECH_THRESHOLD && self.avg_logprob < LOGPROB_THRESHOLD
    }
}

pub(crate) struct WindowDecoder<'a> {
    pub model: &'a Model,
    pub audio: &'a AudioContext,
    /// `<|startoftranscript|>`, then for multilingual models the language and task.
    pub sot_sequence: &'a [u32],
    pub cancel: Option<&'a AtomicBool>,
}

impl WindowDecoder<'_> {
    /// Decodes at rising temperatures until a decoding passes; if none does, the most probable.
    pub fn decode_with_fallback(&self, prompt: &[u32], seed: u64) -> Result<Decoded, SpeechError> {
        let mut rng = Rng(seed | 1);
        let mut best: Option<Decoded> = None;
        for temperature in TEMPERATURES {
            let decoded = self.decode(prompt, temperature, &mut rng)?;
            if !decoded.failed() || decoded.is_silence() {
                return Ok(decoded);
            }
            if best
                .as_ref()
                .is_none_or(|b| decoded.avg_logprob > b.avg_logprob)
            {
                best = Some(decoded);
            }
        }
        Ok(best.expect("at least one temperature"))
    }

    fn check_cancel(&self) -> Result<(), SpeechError> {
        match self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(SpeechError::Cancelled),
            _ => Ok(()),
        }
    }

    fn decode(
        &self,
        prompt: &[u32],
        temperature: f64,
        rng: &mut Rng,
    ) -> Result<Decoded, SpeechError> {
        let model = self.model;
        let tokens = &model.tokens;
        let decoder = &model.network.decoder;
        let text_ctx = model.dims.text_ctx;
        let mut initial = Vec::with_capacity(text_ctx);
        if !prompt.is_empty() {
            initial.push(tokens.sot_prev);
            initial.extend(&prompt[prompt.len().saturating_sub(text_ctx / 2 - 1)..]);
        }
        let sot_index = initial.len();
        initial.extend(self.sot_sequence);

        let mut cache = TokenCache::default();
        let (hidden, _) = decoder.forward(&initial, &mut cache, self.audio, &[])?;
        let no_speech_prob = match tokens.no_speech {
            Some(no_speech) => {
                let at_sot = decoder.logits(&hidden.get(sot_index)?.to_vec1()?);
                softmax_at(&at_sot, no_speech as usize)
            }
            None => 0.0,
        };
        let mut logits = decoder.logits(&hidden.get(hidden.dim(0)? - 1)?.to_vec1()?);
        let mut sampled = Vec::new();
        let mut logprobs = Vec::new();
        let mut sum_logprob = 0.0;
        for _ in 0..text_ctx / 2 {
            self.check_cancel()?;
            self.filter(&mut logits, &sampled);
            let log_probs = log_softmax(&logits);
            let token = if temperature == 0.0 {
                argmax(&logits)
            } else {
                sample(&logits, temperature, rng)
            };
            sum_logprob += f64::from(log_probs[token]);
            let token = token as u32;
            if token == tokens.eot {
                break;
            }
            sampled.push(token);
            logprobs.push(log_probs[token as usize]);
            if cache.len() >= text_ctx {
                break;
            }
            let hidden = decoder.step(token, &mut cache, self.audio)?;
            logits = decoder.logits(&hidden);
        }
        let text = tokens.decode(&sampled);
        Ok(Decoded {
            avg_logprob: sum_logprob / (sampled.len() + 1) as f64,
            tokens: sampled,
            logprobs,
            no_speech_prob,
            temperature,
            compression_ratio: compression_ratio(&text),
        })
    }

    /// OpenAI's logit filters: suppress blank and special tokens, and keep timestamps in pairs
    /// (one closes a segment, the next opens one), never going back, with the text of a
    /// segment ending only at a timestamp.
    fn filter(&self, logits: &mut [f32], sampled: &[u32]) {
        let model = self.model;
        let tokens = &model.tokens;
        let begin = tokens.timestamp_begin as usize;
        let eot = tokens.eot as usize;
        let vocab = logits.len();
        let suppress = |logits: &mut [f32], range: std::ops::Range<usize>| {
            logits[range]
                .iter_mut()
                .for_each(|l| *l = f32::NEG_INFINITY)
        };
        if sampled.is_empty() {
            for &t in &model.suppress_begin {
                suppress(logits, t as usize..t as usize + 1);
            }
        }
        for &t in &model.suppress {
            suppress(logits, t as usize..t as usize + 1);
        }
        let no_timestamps = tokens.no_timestamps as usize;
        suppress(logits, no_timestamps..no_timestamps + 1);

        let is_timestamp = |t: &u32| tokens.is_timestamp(*t);
        let last_was_timestamp = sampled.last().is_some_and(is_timestamp);
        let penultimate_was_timestamp =
            sampled.len() < 2 || is_timestamp(&sampled[sampled.len() - 2]);
        if last_was_timestamp {
            if penultimate_was_timestamp {
                suppress(logits, begin..vocab);
            } else {
                suppress(logits, 0..eot);
            }
        }
        if let Some(&last) = sampled.iter().rev().find(|t| is_timestamp(t)) {
            // Timestamps never go back, and a segment is never empty.
            let floor = if last_was_timestamp && !penultimate_was_timestamp {
                last
            } else {
                last + 1
            };
            suppress(logits, begin..(floor as usize).min(vocab));
        }
        if sampled.is_empty() {
            suppress(logits, 0..begin);
            let last_allowed = begin + MAX_INITIAL_TIMESTAMP_STEPS;
            suppress(logits, (last_allowed + 1).min(vocab)..vocab);
        }
        // When timestamps together are likelier than any one text token, take a timestamp.
        let log_probs = log_softmax(logits);
        let timestamp = log_sum_exp(&log_probs[begin..]);
        let text = log_probs[..begin]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        if timestamp > text {
            suppress(logits, 0..begin);
        }
    }
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

pub(crate) fn log_softmax(values: &[f32]) -> Vec<f32> {
    let total = log_sum_exp(values);
    values.iter().map(|v| v - total).collect()
}

fn softmax_at(values: &[f32], index: usize) -> f64 {
    f64::from((values[index] - log_sum_exp(values)).exp())
}

/// Samples from the softmax of `logits / temperature`.
fn sample(logits: &[f32], temperature: f64, rng: &mut Rng) -> usize {
    let scaled: Vec<f32> = logits.iter().map(|l| l / temperature as f32).collect();
    let total = log_sum_exp(&scaled);
    let mut target = rng.next_f64();
    let mut last_possible = 0;
    for (i, l) in scaled.iter().enumerate() {
        let p = f64::from((l - total).exp());
        if p > 0.0 {
            last_possible = i;
            target -= p;
            if target <= 0.0 {
                return i;
            }
        }
    }
    last_possible
}

/// How much zlib shrinks the text, as OpenAI measures repetition.
fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .expect("compressing into memory cannot fail");
    text.len() as f64 / compressed.len() as f64
}

/// xorshift64*: reproducible sampling, seeded per window.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_text_compresses_past_the_threshold() {
        assert!(
            compression_ratio(&"the same words again ".repeat(20)) > COMPRESSION_RATIO_THRESHOLD
        );
        assert!(
            compression_ratio("Please leave the parcel at the front door if nobody answers.")
                < COMPRESSION_RATIO_THRESHOLD
        );
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let lp = log_softmax(&[1.0, 2.0, f32::NEG_INFINITY, 0.5]);
        let total: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(lp[2], f32::NEG_INFINITY);
    }

    #[test]
    fn sampling_never_picks_a_suppressed_token() {
        let mut rng = Rng(7);
        let logits = [0.0, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
        for _ in 0..200 {
            let t = sample(&logits, 1.0, &mut rng);
            assert!(t == 0 || t == 2);
        }
    }
}
