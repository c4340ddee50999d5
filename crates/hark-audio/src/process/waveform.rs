//! The waveform step: the lowest and highest sample over all channels in every 1/20 s, from which
//! come the peaks a player draws, the bars of a voice-note bubble, and BBC audiowaveform's JSON.

use super::{Pcm, PcmSink};
use std::fmt::Write as _;
use std::io;

/// Columns per second of audio.
pub const PIXELS_PER_SECOND: u32 = 20;

/// Bars in the summary a voice-note bubble shows.
pub const SUMMARY_BARS: usize = 100;

/// The waveform of a whole file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Waveform {
    /// The rate of the audio it was taken from.
    pub sample_rate: u32,
    /// Per 1/20 s column: the lowest sample of any channel, in -1..1.
    pub min: Vec<f32>,
    /// Per 1/20 s column: the highest sample of any channel, in -1..1.
    pub max: Vec<f32>,
}

/// BBC audiowaveform's JSON data format, version 2, 8-bit, one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioWaveform {
    pub sample_rate: u32,
    pub samples_per_pixel: u32,
    /// Min and max of each pixel in turn, in -128..127.
    pub data: Vec<i8>,
}

impl AudioWaveform {
    /// Pixels: half the data.
    pub fn length(&self) -> usize {
        self.data.len() / 2
    }

    /// `{"version":2,"channels":1,"sample_rate":..,"samples_per_pixel":..,"bits":8,"length":..,
    /// "data":[min,max,...]}`
    pub fn to_json(&self) -> String {
        let mut json = format!(
            "{{\"version\":2,\"channels\":1,\"sample_rate\":{},\"samples_per_pixel\":{},\
             \"bits\":8,\"length\":{},\"data\":[",
            self.sample_rate,
            self.samples_per_pixel,
            self.length()
        );
        for (i, value) in self.data.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(json, "{sep}{value}");
        }
        json.push_str("]}");
        json
    }
}

impl Waveform {
    /// The loudest sample of the file, in 0..1.
    pub fn peak_amplitude(&self) -> f32 {
        self.min
            .iter()
            .chain(&self.max)
            .fold(0f32, |peak, s| peak.max(s.abs()))
            .min(1.0)
    }

    /// One peak (the largest absolute sample) per 1/20 s, scaled so the loudest is 1; all 0 for
    /// silence.
    pub fn peaks(&self) -> Vec<f32> {
        let scale = self.scale();
        self.min
            .iter()
            .zip(&self.max)
            .map(|(lo, hi)| (lo.abs().max(hi.abs()) * scale).min(1.0))
            .collect()
    }

    /// [`SUMMARY_BARS`] bars over the whole file, each the highest peak in its stretch, scaled
    /// so the loudest is 1. A file shorter than 5 s repeats columns rather than having fewer bars.
    pub fn bars(&self) -> Vec<f32> {
        let peaks = self.peaks();
        if peaks.is_empty() {
            return vec![0.0; SUMMARY_BARS];
        }
        (0..SUMMARY_BARS)
            .map(|bar| {
                let from = bar * peaks.len() / SUMMARY_BARS;
                let to = ((bar + 1) * peaks.len() / SUMMARY_BARS).max(from + 1);
                peaks[from..to.min(peaks.len())]
                    .iter()
                    .fold(0f32, |a, &b| a.max(b))
            })
            .collect()
    }

    /// The same columns as audiowaveform data (its pixels are whole samples: rates that are not
    /// a multiple of 20 round to the nearest).
    pub fn audiowaveform(&self) -> AudioWaveform {
        let to_8_bits = |s: f32| (s * 128.0).round().clamp(-128.0, 127.0) as i8;
        AudioWaveform {
            sample_rate: self.sample_rate,
            samples_per_pixel: (self.sample_rate as f32 / PIXELS_PER_SECOND as f32)
                .round()
                .max(1.0) as u32,
            data: self
                .min
                .iter()
                .zip(&self.max)
                .flat_map(|(&lo, &hi)| [to_8_bits(lo), to_8_bits(hi)])
                .collect(),
        }
    }

    fn scale(&self) -> f32 {
        let peak = self.peak_amplitude();
        if peak > 0.0 { 1.0 / peak } else { 0.0 }
    }
}

/// Collects a [`Waveform`] from the decode.
#[derive(Debug, Default)]
pub struct WaveformSink {
    waveform: Waveform,
    /// Frames seen so far.
    frames: u64,
    /// The current column's extremes, if it has begun.
    column: Option<(f32, f32)>,
}

impl WaveformSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The waveform so far (all of it, after `finish`).
    pub fn waveform(&self) -> Waveform {
        self.waveform.clone()
    }

    /// The frame at which column `n` starts; columns are exactly 1/20 s, however the rate
    /// divides.
    fn column_start(&self, n: usize) -> u64 {
        n as u64 * u64::from(self.waveform.sample_rate) / u64::from(PIXELS_PER_SECOND)
    }

    fn close_column(&mut self) {
        if let Some((lo, hi)) = self.column.take() {
            self.waveform.min.push(lo.max(-1.0));
            self.waveform.max.push(hi.min(1.0));
        }
    }
}

impl PcmSink for WaveformSink {
    fn accept(&mut self, pcm: Pcm<'_>) -> io::Result<()> {
        self.waveform.sample_rate = pcm.sample_rate;
        let width = usize::from(pcm.channels.max(1));
        let mut rest = pcm.samples;
        while !rest.is_empty() {
            let column = self.waveform.min.len();
            let end = self.column_start(column + 1);
            let take = (end.saturating_sub(self.frames) as usize)
                .max(1)
                .min(rest.len() / width);
            if take == 0 {
                break;
            }
            let (now, later) = rest.split_at(take * width);
            let (lo, hi) = self.column.unwrap_or((f32::INFINITY, f32::NEG_INFINITY));
            let (lo, hi) = now
                .iter()
                .fold((lo, hi), |(lo, hi), &s| (lo.min(s), hi.max(s)));
            self.column = Some((lo, hi));
            self.frames += take as u64;
            if self.frames >= end {
                self.close_column();
            }
            rest = later;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.close_column();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waveform_of(samples: &[f32], channels: u16, rate: u32, block: usize) -> Waveform {
        let mut sink = WaveformSink::new();
        for chunk in samples.chunks(block * usize::from(channels)) {
            sink.accept(Pcm {
                samples: chunk,
                channels,
                sample_rate: rate,
            })
            .expect("accept");
        }
        sink.finish().expect("finish");
        sink.waveform()
    }

    #[test]
    fn columns_are_a_twentieth_of_a_second_whatever_the_blocks() {
        // 1.01 s at 22050 Hz (not a multiple of 20): 21 columns, the last partial.
        let samples: Vec<f32> = (0..22_270)
            .map(|i| ((i % 100) as f32 - 50.0) / 100.0)
            .collect();
        let whole = waveform_of(&samples, 1, 22_050, samples.len());
        assert_eq!(whole.min.len(), 21);
        for block in [1, 7, 1152, 4096] {
            assert_eq!(
                waveform_of(&samples, 1, 22_050, block),
                whole,
                "block {block}"
            );
        }
        assert_eq!(whole.peaks().len(), 21);
        assert!((whole.peak_amplitude() - 0.5).abs() < 1e-6);
        assert_eq!(whole.bars().len(), SUMMARY_BARS);
    }

    #[test]
    fn every_channel_counts_and_json_has_min_max_pairs() {
        // Stereo: the left is quiet, the right reaches -0.8 in the second column.
        let mut samples = vec![0.1f32; 2 * 4800];
        samples[2 * 3000 + 1] = -0.8;
        let w = waveform_of(&samples, 2, 48_000, 480);
        assert_eq!(w.max.len(), 2);
        assert_eq!(w.min[1], -0.8);
        assert_eq!(w.peaks(), vec![0.125, 1.0]);
        let json = w.audiowaveform().to_json();
        assert_eq!(
            json,
            "{\"version\":2,\"channels\":1,\"sample_rate\":48000,\"samples_per_pixel\":2400,\
             \"bits\":8,\"length\":2,\"data\":[13,13,-102,13]}"
        );
    }

    #[test]
    fn silence_has_zero_peaks() {
        let w = waveform_of(&[0.0; 1600], 1, 16_000, 160);
        assert_eq!(w.peaks(), vec![0.0, 0.0]);
        assert!(w.bars().iter().all(|&b| b == 0.0));
    }
}
