//! Whisper's input features: the log-mel spectrogram of 16 kHz audio, 25 ms Hann windows every
//! 10 ms, on mel filters built as librosa builds them (Slaney's scale and area normalisation).

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

pub(crate) const SAMPLE_RATE: usize = 16_000;
pub(crate) const N_FFT: usize = 400;
pub(crate) const HOP: usize = 160;
/// Frames in a 30 s window.
pub(crate) const WINDOW_FRAMES: usize = 3000;
/// Audio a window of frames needs: each frame is centred on its hop, so half an FFT on each side.
pub(crate) const WINDOW_SAMPLES: usize = WINDOW_FRAMES * HOP + N_FFT;

/// One mel band: its weights over a run of FFT bins.
struct Band {
    first_bin: usize,
    weights: Vec<f32>,
}

pub(crate) struct MelSpectrogram {
    bands: Vec<Band>,
    hann: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl MelSpectrogram {
    pub fn new(n_mels: usize) -> Self {
        let filters = slaney_filters(n_mels, N_FFT, SAMPLE_RATE as f64);
        let bands = filters
            .into_iter()
            .map(|row| {
                let first_bin = row.iter().position(|&w| w > 0.0).unwrap_or(0);
                let last_bin = row.iter().rposition(|&w| w > 0.0).unwrap_or(0);
                Band {
                    first_bin,
                    weights: row[first_bin..=last_bin.max(first_bin)]
                        .iter()
                        .map(|&w| w as f32)
                        .collect(),
                }
            })
            .collect();
        // The periodic Hann window, as torch.hann_window gives it.
        let hann = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        Self {
            bands,
            hann,
            fft: RealFftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    /// The normalised log-mel features of `frames` frames, band by band (n_mels, frames).
    /// `audio` starts half an FFT before the first frame's centre and holds
    /// `(frames - 1) * HOP + N_FFT` samples.
    pub fn log_mel(&self, audio: &[f32], frames: usize) -> Vec<f32> {
        let n_mels = self.n_mels();
        let mut mel = vec![0f32; n_mels * frames];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; spectrum.len()];
        for frame in 0..frames {
            let chunk = &audio[frame * HOP..frame * HOP + N_FFT];
            for ((x, s), w) in input.iter_mut().zip(chunk).zip(&self.hann) {
                *x = s * w;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffers come from the same plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (band, filter) in self.bands.iter().enumerate() {
                let energy: f32 = filter
                    .weights
                    .iter()
                    .zip(&power[filter.first_bin..])
                    .map(|(w, p)| w * p)
                    .sum();
                mel[band * frames + frame] = energy.max(1e-10).log10();
            }
        }
        // Whisper's normalisation: at most 8 (80 dB) below the loudest, then scaled near [-1, 1].
        let floor = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max) - 8.0;
        mel.iter_mut().for_each(|v| *v = (v.max(floor) + 4.0) / 4.0);
        mel
    }
}

fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / log_step
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (log_step * (mel - min_log_mel)).exp()
    } else {
        mel * F_SP
    }
}

/// librosa.filters.mel(sr, n_fft, n_mels) with its defaults: triangles evenly spaced on
/// Slaney's mel scale from 0 Hz to Nyquist, each scaled to unit area.
fn slaney_filters(n_mels: usize, n_fft: usize, sample_rate: f64) -> Vec<Vec<f64>> {
    let n_bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|i| i as f64 * sample_rate / n_fft as f64)
        .collect();
    let (low, high) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let mel_freqs: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(low + (high - low) * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|m| {
            let (left, centre, right) = (mel_freqs[m], mel_freqs[m + 1], mel_freqs[m + 2]);
            let norm = 2.0 / (right - left);
            fft_freqs
                .iter()
                .map(|&f| {
                    let rising = (f - left) / (centre - left);
                    let falling = (right - f) / (right - centre);
                    rising.min(falling).max(0.0) * norm
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_librosa() {
        // Values of librosa's filters (n_mels=80, n_fft=400, 16 kHz), as faster-whisper's
        // copy of its formula computes them.
        let filters = slaney_filters(80, 400, 16_000.0);
        assert_eq!((filters.len(), filters[0].len()), (80, 201));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-7;
        assert!(close(filters[0][1], 0.024_862_59));
        assert!(close(filters[13][13], 0.025_880_685));
        let max = filters.iter().flatten().copied().fold(0.0, f64::max);
        assert!(close(max, 0.025_880_685));
        let band_40: Vec<f64> = filters[40].iter().copied().filter(|&w| w > 0.0).collect();
        assert_eq!(band_40.len(), 3);
        for (a, b) in band_40
            .iter()
            .zip([0.005_411_11, 0.014_735_57, 0.006_518_19])
        {
            assert!(close(*a, b), "{a} vs {b}");
        }
        for (a, b) in filters[79][195..].iter().zip([
            0.002_243_8,
            0.001_795_04,
            0.001_346_28,
            0.000_897_52,
            0.000_448_76,
            0.0,
        ]) {
            assert!(close(*a, b), "{a} vs {b}");
        }
    }

    #[test]
    fn a_tone_lights_its_band() {
        let mel = MelSpectrogram::new(80);
        let audio: Vec<f32> = (0..WINDOW_SAMPLES)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let features = mel.log_mel(&audio, 10);
        let loudest = (0..80)
            .max_by(|&a, &b| features[a * 10 + 5].total_cmp(&features[b * 10 + 5]))
            .expect("80 bands");
        // The band whose triangle peaks nearest 1 kHz.
        let top = hz_to_mel(8000.0);
        let centre = |band: usize| mel_to_hz(top * (band + 1) as f64 / 81.0);
        let nearest = (0..80)
            .min_by(|&a, &b| {
                (centre(a) - 1000.0)
                    .abs()
                    .total_cmp(&(centre(b) - 1000.0).abs())
            })
            .expect("80 bands");
        assert!(
            loudest.abs_diff(nearest) <= 1,
            "band {loudest}, expected {nearest}"
        );
    }
}
