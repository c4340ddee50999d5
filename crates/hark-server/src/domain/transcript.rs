//! Transcripts: what the speech model heard in a note, and its grammar-corrected version.

use hark_api::{TranscriptEdit, TranscriptMatch, TranscriptSegment, TranscriptVersion};
use unicode_normalization::UnicodeNormalization;

/// A transcript as stored beside its note.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTranscript {
    pub version: TranscriptVersion,
    pub model: String,
    pub language: String,
    pub duration_seconds: f64,
    pub text: String,
    pub segments: Vec<TranscriptSegment>,
    /// The corrected version's edits (none in the original).
    pub edits: Vec<TranscriptEdit>,
}

impl StoredTranscript {
    /// The words a search matches it by (see [`search_words`]), space-separated.
    pub fn search_words(&self) -> String {
        search_words(&self.text).join(" ")
    }

    /// SubRip subtitles: a cue per segment.
    pub fn srt(&self) -> String {
        let mut out = String::new();
        for (n, segment) in self.cues().enumerate() {
            let (start, end) = (clock(segment.start, ','), clock(segment.end, ','));
            out.push_str(&format!(
                "{}\n{start} --> {end}\n{}\n\n",
                n + 1,
                one_line(&segment.text)
            ));
        }
        out
    }

    /// WebVTT subtitles: a cue per segment, its text escaped as WebVTT requires.
    pub fn vtt(&self) -> String {
        let mut out = String::from("WEBVTT\n\n");
        for segment in self.cues() {
            let (start, end) = (clock(segment.start, '.'), clock(segment.end, '.'));
            let text = one_line(&segment.text)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            out.push_str(&format!("{start} --> {end}\n{text}\n\n"));
        }
        out
    }

    /// The text, a segment per line.
    pub fn txt(&self) -> String {
        let mut out = String::new();
        for segment in self.cues() {
            out.push_str(&one_line(&segment.text));
            out.push('\n');
        }
        out
    }

    /// The segments with something to show (a cue may not be empty).
    fn cues(&self) -> impl Iterator<Item = &TranscriptSegment> {
        self.segments
            .iter()
            .filter(|s| !one_line(&s.text).is_empty())
    }

    /// The segments that hold any of `words` (already folded by [`search_words`]).
    pub fn matches(&self, words: &[String]) -> Vec<TranscriptMatch> {
        self.segments
            .iter()
            .filter(|segment| {
                search_words(&segment.text)
                    .iter()
                    .any(|w| words.contains(w))
            })
            .map(|segment| TranscriptMatch {
                start: segment.start,
                end: segment.end,
                text: segment.text.clone(),
            })
            .collect()
    }
}

/// `HH:MM:SS,mmm` (SubRip) or `HH:MM:SS.mmm` (WebVTT).
fn clock(seconds: f64, separator: char) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (secs, millis) = (rest / 1000, rest % 1000);
    format!("{hours:02}:{minutes:02}:{secs:02}{separator}{millis:03}")
}

/// The text on one line, trimmed: a blank line would end a cue early.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The words of `text` as searches compare them: lower case, accents removed (`Café` is
/// `cafe`), split at anything that is not a letter or digit.
pub fn search_words(text: &str) -> Vec<String> {
    let folded: String = text
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(segments: &[(f64, f64, &str)]) -> StoredTranscript {
        StoredTranscript {
            version: TranscriptVersion::Original,
            model: "m".into(),
            language: "en".into(),
            duration_seconds: 4000.0,
            text: segments.iter().map(|s| s.2).collect::<Vec<_>>().join(" "),
            segments: segments
                .iter()
                .enumerate()
                .map(|(id, (start, end, text))| TranscriptSegment {
                    id: id as u32,
                    start: *start,
                    end: *end,
                    text: (*text).into(),
                    confidence: 0.9,
                    words: Vec::new(),
                })
                .collect(),
            edits: Vec::new(),
        }
    }

    #[test]
    fn subtitles_have_one_cue_per_segment() {
        let t = transcript(&[
            (0.0, 1.5, " Hello there."),
            (1.5, 1.5, "  "),
            (3661.0, 3662.25, "Fish <&> chips\n\nnow"),
        ]);
        assert_eq!(
            t.srt(),
            "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n\
             2\n01:01:01,000 --> 01:01:02,250\nFish <&> chips now\n\n"
        );
        assert_eq!(
            t.vtt(),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n\
             01:01:01.000 --> 01:01:02.250\nFish &lt;&amp;&gt; chips now\n\n"
        );
        assert_eq!(t.txt(), "Hello there.\nFish <&> chips now\n");
    }

    #[test]
    fn matches_are_the_segments_holding_a_word() {
        let t = transcript(&[(0.0, 1.0, "The café opens."), (1.0, 2.0, "Nothing here.")]);
        let found = t.matches(&search_words("CAFE"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text, "The café opens.");
        assert!(t.matches(&search_words("caf")).is_empty());
    }

    #[test]
    fn search_words_ignore_case_accents_and_punctuation() {
        assert_eq!(
            search_words("Café CRÈME, s'il vous-plaît! 42"),
            ["cafe", "creme", "s", "il", "vous", "plait", "42"]
        );
        assert!(search_words(" ... ").is_empty());
    }
}
