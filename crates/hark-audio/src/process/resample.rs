//! Downmix to mono and resample (to 48 kHz for the renditions, 16 kHz for speech), streaming
//! block by block. The output has exactly as many samples as the input's duration at the output
//! rate (the resampler's delay is dropped at the start and its tail flushed at the end).

use super::{Pcm, PcmSink};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};
use std::io;
use std::ops::Range;

/// The rate every rendition is made at.
pub(super) const OUT_RATE: u32 = 48_000;

/// Input frames per resampler call.
const CHUNK: usize = 1024;

/// Mono audio at any rate in, `rate_out` out.
pub(super) struct Resample {
    rate_in: u32,
    rate_out: u32,
    /// `None` when the input is already at the output rate.
    resampler: Option<Fft<f32>>,
    /// Mono input not yet resampled.
    pending: Vec<f32>,
    /// Resampler output.
    out: Vec<f32>,
    /// Output frames still to drop: the resampler's delay.
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

fn resample_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("resampler: {e}"))
}

/// Appends `pcm` downmixed to mono (the mean of its channels) to `mono`.
pub(super) fn downmix(pcm: Pcm<'_>, mono: &mut Vec<f32>) {
    let width = usize::from(pcm.channels.max(1));
    if width == 1 {
        mono.extend_from_slice(pcm.samples);
    } else {
        let scale = 1.0 / width as f32;
        mono.extend(
            pcm.samples
                .chunks_exact(width)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
}

impl Resample {
    pub(super) fn new(rate_in: u32, rate_out: u32) -> io::Result<Self> {
        let resampler = if rate_in == rate_out {
            None
        } else {
            let r = Fft::<f32>::new(
                rate_in as usize,
                rate_out as usize,
                CHUNK,
                1,
                FixedSync::Input,
            )
            .map_err(resample_error)?;
            Some(r)
        };
        let (out_len, delay) = resampler
            .as_ref()
            .map_or((0, 0), |r| (r.output_frames_max(), r.output_delay()));
        Ok(Resample {
            rate_in,
            rate_out,
            resampler,
            pending: Vec::with_capacity(CHUNK * 2),
            out: vec![0.0; out_len],
            delay_left: delay,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Takes a block of mono audio; hands on whatever resampled audio is ready.
    pub(super) fn push(
        &mut self,
        mono: &[f32],
        emit: &mut impl FnMut(&[f32]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.frames_in += mono.len() as u64;
        if self.resampler.is_none() {
            self.frames_out += mono.len() as u64;
            return emit(mono);
        }
        self.pending.extend_from_slice(mono);
        let mut used = 0;
        while self.pending.len() - used >= CHUNK {
            let (consumed, new) = self.run(used, None)?;
            used += consumed;
            self.hand_on(new, u64::MAX, emit)?;
        }
        self.pending.drain(..used);
        Ok(())
    }

    /// Flushes the resampler: the output ends exactly where the input's duration does.
    pub(super) fn finish(
        &mut self,
        emit: &mut impl FnMut(&[f32]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.resampler.is_none() {
            return Ok(());
        }
        let target = (self.frames_in as f64 * f64::from(self.rate_out) / f64::from(self.rate_in))
            .round() as u64;
        let rest = self.pending.len();
        self.pending.resize(CHUNK, 0.0);
        let (_, new) = self.run(0, Some(rest))?;
        self.hand_on(new, target, emit)?;
        // Silence through the resampler until its delayed tail is all out.
        // (The delay is well under one chunk's output; the bound only guards against a stall.)
        for _ in 0..8 {
            if self.frames_out >= target {
                break;
            }
            let (_, new) = self.run(0, Some(0))?;
            self.hand_on(new, target, emit)?;
        }
        self.pending.clear();
        Ok(())
    }

    /// One resampler call on `pending[from..from + CHUNK]`, of which only `partial` frames if
    /// given; returns the input frames used and where the new output (delay dropped) is in
    /// `self.out`.
    fn run(&mut self, from: usize, partial: Option<usize>) -> io::Result<(usize, Range<usize>)> {
        let Some(resampler) = &mut self.resampler else {
            return Ok((0, 0..0));
        };
        let input = &self.pending[from..from + CHUNK];
        let input = InterleavedSlice::new(input, 1, CHUNK).map_err(resample_error)?;
        let out_len = self.out.len();
        let mut output =
            InterleavedSlice::new_mut(&mut self.out[..], 1, out_len).map_err(resample_error)?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (consumed, produced) = resampler
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(resample_error)?;
        let drop = self.delay_left.min(produced);
        self.delay_left -= drop;
        Ok((consumed, drop..produced))
    }

    /// Emits `self.out[new]`, but no more than brings the output to `cap` frames.
    fn hand_on(
        &mut self,
        new: Range<usize>,
        cap: u64,
        emit: &mut impl FnMut(&[f32]) -> io::Result<()>,
    ) -> io::Result<()> {
        let room = usize::try_from(cap.saturating_sub(self.frames_out)).unwrap_or(usize::MAX);
        let end = new.end.min(new.start.saturating_add(room));
        if end > new.start {
            self.frames_out += (end - new.start) as u64;
            emit(&self.out[new.start..end])?;
        }
        Ok(())
    }
}

/// A step that wants the audio as mono at one rate (speech recognition at 16 kHz, a corrected
/// rendition at 48 kHz): downmixes and resamples each block, and hands it to `emit`.
pub struct MonoSink<F: FnMut(&[f32]) -> io::Result<()>> {
    rate_out: u32,
    emit: F,
    /// Made at the first block, when the input rate is known.
    resample: Option<Resample>,
    mono: Vec<f32>,
}

impl<F: FnMut(&[f32]) -> io::Result<()>> MonoSink<F> {
    pub fn new(rate_out: u32, emit: F) -> Self {
        MonoSink {
            rate_out,
            emit,
            resample: None,
            mono: Vec::new(),
        }
    }
}

impl<F: FnMut(&[f32]) -> io::Result<()>> PcmSink for MonoSink<F> {
    fn accept(&mut self, pcm: Pcm<'_>) -> io::Result<()> {
        let resample = match &mut self.resample {
            Some(resample) => resample,
            None => self
                .resample
                .insert(Resample::new(pcm.sample_rate, self.rate_out)?),
        };
        self.mono.clear();
        downmix(pcm, &mut self.mono);
        resample.push(&self.mono, &mut self.emit)
    }

    fn finish(&mut self) -> io::Result<()> {
        match &mut self.resample {
            Some(resample) => resample.finish(&mut self.emit),
            None => Ok(()),
        }
    }
}
