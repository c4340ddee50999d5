//! Speech made at test time with espeak-ng and sox (Debian packages `espeak-ng`, `sox`):
//! sentences of known text, and single words joined by silences of known length, so
//! transcripts and word timings can be checked against what was said.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// The sample rate of the audio made here.
pub const SAMPLE_RATE: u32 = 16_000;

/// `text` spoken by espeak-ng (American English, 150 words a minute), 16 kHz mono.
pub fn spoken(text: &str) -> Vec<f32> {
    let mut espeak = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "--stdout", text])
        .stdout(Stdio::piped())
        .spawn()
        .expect("espeak-ng runs (apt-get install espeak-ng)");
    let mut wav = Vec::new();
    espeak
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut wav)
        .expect("read espeak-ng's output");
    assert!(
        espeak.wait().expect("espeak-ng ends").success(),
        "espeak-ng failed"
    );
    resample(&wav)
}

/// Converts a WAV file's bytes to 16 kHz mono float samples with sox.
fn resample(wav: &[u8]) -> Vec<f32> {
    let mut sox = Command::new("sox")
        .args(["-t", "wav", "-", "-t", "raw", "-r", "16000", "-c", "1"])
        .args(["-e", "floating-point", "-b", "32", "-L", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sox runs (apt-get install sox)");
    let mut stdin = sox.stdin.take().expect("piped stdin");
    let wav = wav.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&wav));
    let mut raw = Vec::new();
    sox.stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut raw)
        .expect("read sox's output");
    writer
        .join()
        .expect("the writer thread")
        .expect("write to sox");
    assert!(sox.wait().expect("sox ends").success(), "sox failed");
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `samples` without the near-silence (below 1% of the peak) at either end.
pub fn trimmed(samples: &[f32]) -> &[f32] {
    let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    let loud = |s: &f32| s.abs() > peak * 0.01;
    let first = samples.iter().position(loud).unwrap_or(0);
    let last = samples.iter().rposition(loud).map_or(0, |i| i + 1);
    &samples[first..last.max(first)]
}

/// The words spoken one by one, each clip trimmed of its silences, joined by `gap_seconds` of
/// silence (and as much before the first). Returns the audio and each word's onset in seconds.
pub fn words_with_gaps(words: &[&str], gap_seconds: f64) -> (Vec<f32>, Vec<f64>) {
    let gap = vec![0.0; (gap_seconds * f64::from(SAMPLE_RATE)) as usize];
    let mut audio = gap.clone();
    let mut onsets = Vec::with_capacity(words.len());
    for word in words {
        onsets.push(audio.len() as f64 / f64::from(SAMPLE_RATE));
        audio.extend_from_slice(trimmed(&spoken(word)));
        audio.extend_from_slice(&gap);
    }
    (audio, onsets)
}

/// Silence of `seconds`.
pub fn silence(seconds: f64) -> Vec<f32> {
    vec![0.0; (seconds * f64::from(SAMPLE_RATE)) as usize]
}

/// Words as a transcript is scored: lower case, apostrophes kept, other punctuation dropped.
pub fn normalized_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// The word error rate of `hypothesis` against `reference`: substitutions, deletions and
/// insertions (a word-level edit distance) per reference word.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let reference = normalized_words(reference);
    let hypothesis = normalized_words(hypothesis);
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut row = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            row[j + 1] = substitution.min(previous[j + 1] + 1).min(row[j] + 1);
        }
        previous = row;
    }
    previous[hypothesis.len()] as f64 / reference.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_error_rate_counts_edits_per_reference_word() {
        assert_eq!(word_error_rate("the cat sat", "The cat sat."), 0.0);
        assert_eq!(word_error_rate("the cat sat", "the bat sat"), 1.0 / 3.0);
        assert_eq!(
            word_error_rate("the cat sat", "the cat sat down"),
            1.0 / 3.0
        );
        assert_eq!(
            word_error_rate("the cat sat on it", "cat sat it"),
            2.0 / 5.0
        );
        assert_eq!(word_error_rate("don't stop", "Don't stop!"), 0.0);
    }

    #[test]
    fn spoken_words_are_joined_at_known_onsets() {
        let (audio, onsets) = words_with_gaps(&["apple", "river"], 0.5);
        assert_eq!(onsets[0], 0.5);
        assert!(onsets[1] > 0.8 && onsets[1] < 1.8, "{onsets:?}");
        let at = |t: f64| (t * f64::from(SAMPLE_RATE)) as usize;
        // Silence before each onset, sound just after it.
        assert!(
            audio[at(onsets[1]) - 800..at(onsets[1])]
                .iter()
                .all(|&s| s == 0.0)
        );
        assert!(
            audio[at(onsets[1])..at(onsets[1]) + 1600]
                .iter()
                .any(|s| s.abs() > 0.01)
        );
        assert!((audio.len() as f64 / f64::from(SAMPLE_RATE) - onsets[1]) > 0.5);
    }
}
