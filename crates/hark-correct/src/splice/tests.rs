use super::{Splicer, splice};
use std::f64::consts::TAU;
use std::ops::Range;

const RATE: u32 = 48_000;
const FADE: f64 = 0.010;
const TONE: f64 = 440.0;

/// A full-scale sine, the loudest a click can hide in; the second channel (if any) inverted.
fn sine(channels: u16, seconds: f64) -> Vec<f32> {
    let frames = (seconds * f64::from(RATE)) as usize;
    (0..frames)
        .flat_map(|frame| {
            let value = (TAU * TONE * frame as f64 / f64::from(RATE)).sin() as f32;
            (0..channels).map(move |channel| if channel % 2 == 0 { value } else { -value })
        })
        .collect()
}

/// Where each stretch starts and ends in the output, in frames.
fn pieces(keep: &[Range<f64>]) -> Vec<Range<usize>> {
    let frame = |seconds: f64| (seconds * f64::from(RATE)).round() as usize;
    let mut at = 0;
    keep.iter()
        .map(|span| {
            let length = frame(span.end) - frame(span.start);
            at += length;
            at - length..at
        })
        .collect()
}

fn largest_step(samples: &[f32]) -> f32 {
    samples
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).abs())
        .fold(0.0, f32::max)
}

/// Cuts from a crest of the tone to a trough: without fades, the worst click there is.
fn crest_to_trough() -> Vec<Range<f64>> {
    let period = 1.0 / TONE;
    vec![
        0.0..100.25 * period,
        200.75 * period..300.25 * period,
        350.75 * period..1.0,
    ]
}

#[test]
fn the_output_is_as_long_as_the_kept_time_to_within_a_frame_per_stretch() {
    let keep = [0.1234..0.5678, 1.00013..1.99991, 2.5..3.0];
    let out = splice(&sine(2, 3.0), RATE, 2, &keep, FADE);

    let kept_frames: f64 = keep
        .iter()
        .map(|s| (s.end - s.start) * f64::from(RATE))
        .sum();
    let frames = out.len() / 2;
    assert_eq!(out.len() % 2, 0);
    assert!(
        (frames as f64 - kept_frames).abs() <= keep.len() as f64,
        "{frames} frames"
    );
    assert_eq!(
        frames as u64,
        Splicer::new(RATE, 2, &keep, FADE).output_frames()
    );
}

#[test]
fn each_stretch_starts_and_ends_in_silence() {
    let keep = crest_to_trough();
    let out = splice(&sine(1, 1.0), RATE, 1, &keep, FADE);

    for piece in pieces(&keep) {
        for edge in [piece.start, piece.end - 1] {
            assert!(out[edge].abs() < 1e-3, "sample {edge} is {}", out[edge]);
        }
        // Still quiet a millisecond in: a fade, not a single zeroed sample.
        assert!(out[piece.start + 48].abs() < 0.03);
        assert!(out[piece.end - 49].abs() < 0.03);
    }
}

#[test]
fn a_join_is_no_steeper_than_the_tone_itself() {
    let keep = crest_to_trough();
    let tone = sine(1, 1.0);
    let faded = splice(&tone, RATE, 1, &keep, FADE);
    let unfaded = splice(&tone, RATE, 1, &keep, 0.0);

    // The steepest a 440 Hz full-scale sine gets between samples is about 0.058.
    let smooth = largest_step(&tone);
    assert!(
        largest_step(&faded) < smooth + 0.01,
        "{}",
        largest_step(&faded)
    );
    // The same cuts without fades jump from crest to trough: the measure does see clicks.
    assert!(largest_step(&unfaded) > 1.5);
}

#[test]
fn audio_pushed_in_blocks_of_any_size_splices_as_it_would_whole() {
    let keep = [0.05..0.31, 0.3101..0.7, 0.9..1.6];
    let audio = sine(2, 2.0);
    let whole = splice(&audio, RATE, 2, &keep, FADE);

    let mut splicer = Splicer::new(RATE, 2, &keep, FADE);
    let mut streamed = Vec::new();
    let mut rest = audio.as_slice();
    // Odd sizes split frames between blocks.
    for size in [1, 3, 7, 4096, 333, 960].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (block, after) = rest.split_at(size.min(rest.len()));
        splicer.push(block, &mut streamed);
        rest = after;
    }
    assert_eq!(streamed, whole);
}

#[test]
fn every_channel_of_a_frame_gets_the_same_gain() {
    let out = splice(&sine(2, 1.0), RATE, 2, &crest_to_trough(), FADE);
    for frame in out.chunks_exact(2) {
        assert_eq!(frame[1], -frame[0]);
    }
}

#[test]
fn keeping_everything_changes_nothing_but_the_two_ends() {
    let audio = sine(1, 1.0);
    let out = splice(&audio, RATE, 1, &[0.0..1.0], FADE);
    let fade = (FADE * f64::from(RATE)) as usize;

    assert_eq!(out.len(), audio.len());
    assert_eq!(
        out[fade..audio.len() - fade],
        audio[fade..audio.len() - fade]
    );
    assert_eq!(out[0], 0.0);
}

#[test]
fn overlapping_or_touching_spans_are_kept_as_one_without_a_fade_between() {
    let level = vec![1.0f32; RATE as usize];
    let out = splice(&level, RATE, 1, &[0.0..0.5, 0.5..0.75, 0.6..1.0], FADE);

    assert_eq!(out.len(), level.len());
    assert_eq!(out[RATE as usize / 2], 1.0);
    assert_eq!(out[RATE as usize * 3 / 4], 1.0);
}

#[test]
fn a_stretch_shorter_than_two_fades_fades_over_its_halves() {
    let level = vec![1.0f32; RATE as usize];
    // 5 ms kept with 10 ms fades: in over 2.5 ms, out over 2.5 ms.
    let out = splice(&level, RATE, 1, &[0.5..0.505], FADE);

    assert_eq!(out.len(), 240);
    assert_eq!(out[0], 0.0);
    assert_eq!(out[239], 0.0);
    let peak = out.iter().copied().fold(0.0, f32::max);
    assert!(peak > 0.99 && peak <= 1.0, "{peak}");
    assert!(out[..120].windows(2).all(|pair| pair[0] <= pair[1]));
}

#[test]
fn nothing_kept_gives_no_audio_and_spans_past_the_end_stop_with_it() {
    let audio = sine(1, 1.0);
    assert!(splice(&audio, RATE, 1, &[], FADE).is_empty());

    let out = splice(&audio, RATE, 1, &[0.5..2.0], FADE);
    assert_eq!(out.len(), audio.len() / 2);
}
