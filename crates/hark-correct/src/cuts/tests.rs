use super::{TimedWord, Token, keep_spans};
use std::ops::Range;

const MAX_PAUSE: f64 = 0.7;

fn timed<'a>(words: &[(&'a str, f64, f64)]) -> Vec<TimedWord<'a>> {
    words
        .iter()
        .map(|&(word, start, end)| TimedWord { word, start, end })
        .collect()
}

fn assert_spans(actual: &[Range<f64>], expected: &[Range<f64>]) {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(
        actual.len() == expected.len()
            && actual
                .iter()
                .zip(expected)
                .all(|(a, e)| close(a.start, e.start) && close(a.end, e.end)),
        "kept {actual:?}, expected {expected:?}"
    );
}

#[test]
fn fluent_speech_is_one_span_with_its_edge_silences() {
    let words = timed(&[
        (" Hello", 0.5, 0.9),
        (" there,", 1.0, 1.4),
        (" friend.", 1.6, 2.1),
    ]);
    assert_spans(&keep_spans(&words, 2.5, MAX_PAUSE), &[0.0..2.5]);
}

#[test]
fn long_silence_before_the_first_and_after_the_last_word_is_trimmed() {
    let words = timed(&[(" Remember", 5.0, 5.6), (" milk.", 5.7, 6.0)]);
    assert_spans(&keep_spans(&words, 20.0, MAX_PAUSE), &[4.3..6.7]);
}

#[test]
fn a_long_pause_is_shortened_to_the_longest_allowed() {
    let words = timed(&[(" One", 0.0, 0.5), (" two.", 3.5, 4.0)]);
    let kept = keep_spans(&words, 4.0, MAX_PAUSE);

    // Half the allowed pause stays after "One", half before "two".
    assert_spans(&kept, &[0.0..0.85, 3.15..4.0]);
}

#[test]
fn a_pause_no_longer_than_allowed_is_kept_whole() {
    let words = timed(&[(" One", 0.0, 0.5), (" two.", 1.2, 1.5)]);
    assert_spans(&keep_spans(&words, 1.5, MAX_PAUSE), &[0.0..1.5]);
}

#[test]
fn a_filler_is_cut_with_the_silences_around_it_kept() {
    let words = timed(&[(" I", 0.0, 0.2), (" um,", 0.5, 0.9), (" think", 1.2, 1.5)]);
    assert_spans(&keep_spans(&words, 1.5, MAX_PAUSE), &[0.0..0.5, 0.9..1.5]);
}

#[test]
fn silences_around_a_cut_are_kept_up_to_the_longest_pause_together() {
    // 0.6 s of silence before the filler, 0.1 s after: the short side leaves its share to the
    // long one, 0.7 s in all.
    let words = timed(&[(" So", 0.0, 0.3), (" uh", 0.9, 1.2), (" yes.", 1.3, 1.6)]);
    assert_spans(&keep_spans(&words, 1.6, MAX_PAUSE), &[0.0..0.9, 1.2..1.6]);
    // 2 s either side: 0.35 s each.
    let words = timed(&[(" So", 0.0, 0.3), (" uh", 2.3, 2.6), (" yes.", 4.6, 4.9)]);
    assert_spans(&keep_spans(&words, 4.9, MAX_PAUSE), &[0.0..0.65, 4.25..4.9]);
}

#[test]
fn a_filler_before_the_first_word_goes_with_its_silence() {
    let words = timed(&[(" Um,", 0.2, 0.6), (" hello.", 1.0, 1.4)]);
    assert_spans(&keep_spans(&words, 1.4, MAX_PAUSE), &[0.6..1.4]);
}

#[test]
fn a_repeated_word_keeps_only_its_last_saying() {
    let words = timed(&[
        (" I", 0.0, 0.1),
        (" I", 0.2, 0.3),
        (" I", 0.4, 0.5),
        (" think", 0.6, 0.9),
    ]);
    assert_spans(&keep_spans(&words, 0.9, MAX_PAUSE), &[0.3..0.9]);
}

#[test]
fn a_repeat_is_found_across_punctuation_case_and_fillers() {
    let words = timed(&[
        (" We", 0.0, 0.2),
        (" I,", 0.3, 0.4),
        (" uh,", 0.5, 0.7),
        (" i", 0.8, 0.9),
        (" think.", 1.0, 1.3),
    ]);
    assert_spans(&keep_spans(&words, 1.3, MAX_PAUSE), &[0.0..0.3, 0.7..1.3]);
}

#[test]
fn a_word_broken_off_and_then_said_whole_is_cut() {
    let words = timed(&[
        (" Take", 0.0, 0.3),
        (" th-", 0.4, 0.5),
        (" th-", 0.6, 0.7),
        (" the", 0.8, 0.9),
        (" bus.", 1.0, 1.3),
    ]);
    assert_spans(&keep_spans(&words, 1.3, MAX_PAUSE), &[0.0..0.4, 0.7..1.3]);
}

#[test]
fn a_sentence_broken_off_for_another_word_is_kept() {
    let words = timed(&[
        (" We-", 0.0, 0.2),
        (" they", 0.3, 0.5),
        (" left.", 0.6, 0.9),
    ]);
    assert_spans(&keep_spans(&words, 0.9, MAX_PAUSE), &[0.0..0.9]);
}

#[test]
fn fillers_are_recognised_however_they_are_written() {
    for word in [
        "um", " Um,", "umm", "uh.", "Uhh", "uhm", "er", "erm", "Ah,", "hmm", "Hmmm...", "mm", "mmm",
    ] {
        assert!(Token::read(word).is_filler(), "{word:?}");
    }
}

#[test]
fn words_that_only_look_like_fillers_are_not_fillers() {
    for word in [
        "ER", "UM", "M", "umbrella", "her", "hum", "mhm", "I", "am", "a",
    ] {
        assert!(!Token::read(word).is_filler(), "{word:?}");
    }
}

#[test]
fn without_words_the_whole_audio_is_kept() {
    assert_spans(&keep_spans(&[], 3.0, MAX_PAUSE), &[0.0..3.0]);
    assert_spans(&keep_spans(&[], 0.0, MAX_PAUSE), &[]);
}

#[test]
fn when_every_word_is_cut_nothing_is_kept() {
    let words = timed(&[(" Um", 0.5, 0.8), (" uh...", 1.5, 1.9)]);
    assert_spans(&keep_spans(&words, 2.5, MAX_PAUSE), &[]);
}

#[test]
fn timings_outside_the_audio_are_held_inside_it() {
    let words = timed(&[(" Early", -0.5, 0.4), (" late.", 2.8, 3.6)]);
    let kept = keep_spans(&words, 3.0, MAX_PAUSE);
    assert_spans(&kept, &[0.0..0.75, 2.45..3.0]);
}

/// A small deterministic generator, so the property test needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() * from.len() as f64) as usize % from.len()]
    }
}

#[test]
fn spans_are_ordered_apart_inside_the_audio_and_hold_every_kept_word() {
    let vocabulary = [
        " I", " I", " the", " th-", " um,", " uh", " think", " we", " go.",
    ];
    let mut random = Lcg(7);
    for _ in 0..500 {
        let mut words = Vec::new();
        let mut clock = random.next() * 3.0;
        for _ in 0..(random.next() * 12.0) as usize {
            let start = clock;
            let end = start + 0.05 + random.next() * 0.5;
            words.push(TimedWord {
                word: random.pick(&vocabulary),
                start,
                end,
            });
            clock = end + random.next().powi(2) * 3.0;
        }
        let duration = clock + random.next() * 3.0;
        let kept = keep_spans(&words, duration, MAX_PAUSE);

        let inside = |t: f64| kept.iter().any(|span| span.start <= t && t <= span.end);
        for span in &kept {
            assert!(0.0 <= span.start && span.start < span.end && span.end <= duration);
        }
        for pair in kept.windows(2) {
            assert!(pair[0].end < pair[1].start, "{kept:?}");
        }
        let spoken = super::spoken(&words);
        for (word, &keep) in words.iter().zip(&spoken) {
            let middle = (word.start + word.end) / 2.0;
            assert_eq!(inside(middle), keep, "{word:?} in {kept:?}");
            if keep {
                assert!(
                    kept.iter()
                        .any(|s| s.start <= word.start && word.end <= s.end)
                );
            }
        }
        // Kept words, and at most one pause before, between and after them.
        let kept_words: Vec<_> = words
            .iter()
            .zip(&spoken)
            .filter(|(_, keep)| **keep)
            .collect();
        let kept_time: f64 = kept.iter().map(|span| span.end - span.start).sum();
        let word_time: f64 = kept_words.iter().map(|(w, _)| w.end - w.start).sum();
        let pauses = (kept_words.len() + 1) as f64 * MAX_PAUSE;
        assert!(words.is_empty() || kept_time <= word_time + pauses + 1e-9);
    }
}
