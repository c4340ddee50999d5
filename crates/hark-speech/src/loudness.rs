//! The loudness of a window in 20 ms blocks (one per encoder frame). Whisper normalises each
//! window to its own peak, so it cannot tell faint noise from speech and may write text into
//! silence; the absolute level tells. It also finds where a word's sound starts and ends: the
//! attention alignment gives the pause before a word to the word.

use crate::mel::{HOP, N_FFT, SAMPLE_RATE};

/// Samples per block: two mel hops, one encoder frame.
const BLOCK: usize = 2 * HOP;
const BLOCK_SECONDS: f64 = BLOCK as f64 / SAMPLE_RATE as f64;
/// A window whose loudest block is quieter than -50 dBFS holds no speech.
const SILENCE_FLOOR: f32 = 0.003_16;
/// Within a window, a block 30 dB below the loudest is a pause.
const PAUSE_BELOW_PEAK: f32 = 0.031_6;

pub(crate) struct Loudness {
    /// RMS of each block of the window's audio.
    blocks: Vec<f32>,
    /// The level below which a block is a pause.
    threshold: f32,
}

impl Loudness {
    /// The loudness of `frames` mel frames of a window's audio, which starts half an FFT
    /// before its first frame.
    pub fn of(window_audio: &[f32], frames: usize) -> Self {
        let audio = &window_audio[N_FFT / 2..];
        let blocks: Vec<f32> = audio[..(frames * HOP).min(audio.len())]
            .chunks(BLOCK)
            .map(|block| (block.iter().map(|s| s * s).sum::<f32>() / block.len() as f32).sqrt())
            .collect();
        let peak = blocks.iter().copied().fold(0.0, f32::max);
        Self {
            blocks,
            threshold: (peak * PAUSE_BELOW_PEAK).max(SILENCE_FLOOR),
        }
    }

    /// Whether the window is silence or faint noise throughout.
    pub fn is_silent(&self) -> bool {
        self.blocks.iter().all(|&rms| rms < SILENCE_FLOOR)
    }

    /// The first and last sounding moments between `start` and `end` (seconds into the
    /// window), or `None` when it is all pause.
    pub fn sounding(&self, start: f64, end: f64) -> Option<(f64, f64)> {
        let first = ((start / BLOCK_SECONDS).floor().max(0.0) as usize).min(self.blocks.len());
        let last = ((end / BLOCK_SECONDS).ceil().max(0.0) as usize).min(self.blocks.len());
        let span = &self.blocks[first..last.max(first)];
        let loud = |rms: &f32| *rms >= self.threshold;
        let from = span.iter().position(loud)?;
        let to = span.iter().rposition(loud)? + 1;
        Some((
            ((first + from) as f64 * BLOCK_SECONDS).max(start),
            ((first + to) as f64 * BLOCK_SECONDS).min(end),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sound_between_pauses() {
        // 0.5 s of silence, 0.3 s of tone, 0.5 s of silence.
        let mut audio = vec![0.0; N_FFT / 2 + 8000];
        audio.extend((0..4800).map(|i| (i as f32 * 0.3).sin() * 0.3));
        audio.extend(vec![0.0; 8000]);
        let loudness = Loudness::of(&audio, 130);
        assert!(!loudness.is_silent());
        let (start, end) = loudness.sounding(0.0, 1.3).expect("a tone");
        assert!(
            (start - 0.5).abs() < 0.021 && (end - 0.8).abs() < 0.021,
            "{start} {end}"
        );
        assert_eq!(loudness.sounding(0.9, 1.3), None);
        assert!(Loudness::of(&vec![0.001; 20_000], 100).is_silent());
    }
}
