//! The loudness step: EBU R128 integrated loudness and true peak (ITU-R BS.1770), as ffmpeg's
//! `ebur128=peak=true` filter measures them.

use super::{Pcm, PcmSink};
use ebur128::{EbuR128, Mode};
use std::io;

/// What the loudness step measured. `None` where there is nothing to measure: silence, or audio
/// too short for a gating block (400 ms).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Loudness {
    /// Integrated loudness in LUFS.
    pub integrated_lufs: Option<f64>,
    /// The highest true peak of any channel, in dBTP.
    pub true_peak_dbtp: Option<f64>,
}

/// Measures [`Loudness`] over the decode.
#[derive(Default)]
pub struct LoudnessSink {
    meter: Option<EbuR128>,
    loudness: Loudness,
}

impl std::fmt::Debug for LoudnessSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoudnessSink")
            .field("loudness", &self.loudness)
            .finish_non_exhaustive()
    }
}

impl LoudnessSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The measurement (meaningful after `finish`).
    pub fn loudness(&self) -> Loudness {
        self.loudness
    }
}

fn meter_error(e: ebur128::Error) -> io::Error {
    io::Error::other(format!("loudness meter: {e}"))
}

impl PcmSink for LoudnessSink {
    fn accept(&mut self, pcm: Pcm<'_>) -> io::Result<()> {
        let meter = match &mut self.meter {
            Some(meter) => meter,
            None => self.meter.insert(
                EbuR128::new(
                    u32::from(pcm.channels),
                    pcm.sample_rate,
                    Mode::I | Mode::TRUE_PEAK,
                )
                .map_err(meter_error)?,
            ),
        };
        meter.add_frames_f32(pcm.samples).map_err(meter_error)
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(meter) = &self.meter else {
            return Ok(());
        };
        let finite = |v: f64| v.is_finite().then_some(v);
        let integrated = meter.loudness_global().ok().and_then(finite);
        let peak = (0..meter.channels())
            .filter_map(|c| meter.true_peak(c).ok())
            .fold(0f64, f64::max);
        self.loudness = Loudness {
            integrated_lufs: integrated,
            // Silence has no peak in dB (log10(0) is -inf).
            true_peak_dbtp: finite(20.0 * peak.log10()),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(samples: &[f32], rate: u32) -> Loudness {
        let mut sink = LoudnessSink::new();
        for chunk in samples.chunks(1024) {
            sink.accept(Pcm {
                samples: chunk,
                channels: 1,
                sample_rate: rate,
            })
            .expect("accept");
        }
        sink.finish().expect("finish");
        sink.loudness()
    }

    #[test]
    fn a_full_scale_sine_and_silence() {
        // A 1 kHz sine at -20 dBFS (peak 0.1): about -23 LUFS mono, true peak -20 dBTP.
        let rate = 48_000;
        let sine: Vec<f32> = (0..rate * 3)
            .map(|i| 0.1 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate as f32).sin())
            .collect();
        let loud = measure(&sine, rate);
        let lufs = loud.integrated_lufs.expect("loudness");
        assert!((lufs + 23.0).abs() < 0.3, "{lufs}");
        let peak = loud.true_peak_dbtp.expect("peak");
        assert!((peak + 20.0).abs() < 0.3, "{peak}");
        assert_eq!(measure(&vec![0.0; 48_000 * 2], rate), Loudness::default());
        let short = measure(&sine[..4800], rate);
        assert_eq!(short.integrated_lufs, None);
        assert!(short.true_peak_dbtp.is_some());
    }
}
