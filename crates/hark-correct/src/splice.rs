//! Joining the kept stretches of a recording, with a fade at each cut so none clicks.

use std::f64::consts::PI;
use std::ops::Range;

/// Further than any audio reaches, and small enough that a frame index times the channel count
/// never overflows.
const FRAME_LIMIT: u64 = u64::MAX / u16::MAX as u64;

/// Joins the kept stretches of interleaved audio as it streams past, block by block.
///
/// Each kept stretch fades in over its first `fade_seconds` and out over its last, along a
/// raised cosine that starts and ends at silence: the join of two stretches then has no step
/// in it, which is what a click is. A stretch too short for two whole fades fades in over its
/// first half and out over its second.
///
/// A stretch is kept to the nearest frame at either end, so the output is as long as the kept
/// time to within a frame per stretch.
#[derive(Debug, Clone)]
pub struct Splicer {
    channels: usize,
    stretches: Vec<Stretch>,
    /// How many stretches lie wholly behind the audio seen so far.
    passed: usize,
    /// Samples seen so far, counting every channel.
    position: u64,
}

/// A kept stretch in frames: `start..end`, fading over `fade` frames at each end.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    start: u64,
    end: u64,
    fade: u64,
}

impl Stretch {
    /// The gain of frame `frame`, which lies in the stretch.
    fn gain(&self, frame: u64) -> f32 {
        let from_edge = (frame - self.start).min(self.end - 1 - frame);
        if from_edge >= self.fade {
            return 1.0;
        }
        (0.5 - 0.5 * (PI * from_edge as f64 / self.fade as f64).cos()) as f32
    }
}

impl Splicer {
    /// A splicer for audio of `sample_rate` and `channels` that keeps `keep` (seconds from the
    /// start). Overlapping or touching spans are kept as one, with no cut between them.
    pub fn new(sample_rate: u32, channels: u16, keep: &[Range<f64>], fade_seconds: f64) -> Splicer {
        let rate = f64::from(sample_rate);
        let to_frame =
            |seconds: f64| (seconds.max(0.0) * rate).round().min(FRAME_LIMIT as f64) as u64;
        let mut frames: Vec<Range<u64>> = keep
            .iter()
            .filter(|span| span.start.is_finite() && span.end.is_finite())
            .map(|span| to_frame(span.start)..to_frame(span.end))
            .filter(|frames| !frames.is_empty())
            .collect();
        frames.sort_by_key(|frames| frames.start);

        let mut joined: Vec<Range<u64>> = Vec::with_capacity(frames.len());
        for span in frames {
            match joined.last_mut() {
                Some(previous) if span.start <= previous.end => {
                    previous.end = previous.end.max(span.end);
                }
                _ => joined.push(span),
            }
        }
        let fade = to_frame(fade_seconds);
        Splicer {
            channels: usize::from(channels.max(1)),
            stretches: joined
                .into_iter()
                .map(|span| Stretch {
                    fade: fade.min((span.end - span.start) / 2),
                    start: span.start,
                    end: span.end,
                })
                .collect(),
            passed: 0,
            position: 0,
        }
    }

    /// Takes the next block of interleaved samples and appends what is kept of it to `out`.
    /// Blocks may be of any length; a frame may even be split between two of them.
    pub fn push(&mut self, block: &[f32], out: &mut Vec<f32>) {
        let channels = self.channels as u64;
        let block_start = self.position;
        let block_end = block_start + block.len() as u64;
        self.position = block_end;

        for stretch in &self.stretches[self.passed..] {
            if stretch.start * channels >= block_end {
                break;
            }
            let first = (stretch.start * channels).max(block_start);
            let last = (stretch.end * channels).min(block_end);
            for sample in first..last {
                let gain = stretch.gain(sample / channels);
                out.push(block[(sample - block_start) as usize] * gain);
            }
        }
        let passed = self.stretches[self.passed..]
            .iter()
            .take_while(|stretch| stretch.end * channels <= block_end)
            .count();
        self.passed += passed;
    }

    /// Samples per channel the whole output holds, once the audio has been pushed to its end.
    pub fn output_frames(&self) -> u64 {
        self.stretches.iter().map(|s| s.end - s.start).sum()
    }
}

/// The kept stretches of `samples` (interleaved), joined with a fade of `fade_seconds` at each
/// cut: the whole of a [`Splicer`]'s work at once, for audio already in memory.
pub fn splice(
    samples: &[f32],
    sample_rate: u32,
    channels: u16,
    keep: &[Range<f64>],
    fade_seconds: f64,
) -> Vec<f32> {
    let mut splicer = Splicer::new(sample_rate, channels, keep, fade_seconds);
    let kept_samples = splicer.output_frames() * u64::from(channels.max(1));
    let mut out = Vec::with_capacity(samples.len().min(kept_samples as usize));
    splicer.push(samples, &mut out);
    out
}

#[cfg(test)]
mod tests;
