//! Which stretches of a recording to keep: the words, without fillers, stutters or long pauses.

use std::ops::Range;

/// A word of the transcript and when it was spoken, in seconds from the start of the audio.
///
/// `word` is as the recogniser wrote it, with any spaces and punctuation around it (" um,").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedWord<'a> {
    pub word: &'a str,
    pub start: f64,
    pub end: f64,
}

/// Hesitation sounds, with repeated letters collapsed ("ummm" is "um", "hmm" is "hm").
const FILLERS: &[&str] = &["ah", "er", "erm", "hm", "uh", "uhm", "um"];

/// Marks a word broken off mid-way, as the recogniser writes a stutter ("th- the").
const BREAK_MARKS: &[char] = &['-', '‐', '–', '—'];

/// The stretches of the audio to keep, in order and apart, within `0..duration`.
///
/// Filler words are cut, and so is each word that is repeated straight away ("I I I think" keeps
/// the last "I"), or broken off and then said whole ("th- the"), with any fillers between them
/// ignored. A pause longer than `max_pause` seconds is shortened to `max_pause`, kept half after
/// the word before it and half before the word after it (where one side is shorter, the other
/// keeps more), so the speech keeps its natural edges; where words were cut, the silences on
/// either side of the cut are kept the same way, up to `max_pause` together. Silence before the
/// first word and after the last is trimmed to `max_pause`. Every cut falls between words.
///
/// Without words there is nothing to judge, and the whole audio is kept; when every word is cut,
/// nothing is.
pub fn keep_spans(words: &[TimedWord], duration: f64, max_pause: f64) -> Vec<Range<f64>> {
    // `max` also turns NaN into 0, so odd input gives odd spans, never a panic.
    let duration = duration.max(0.0);
    let max_pause = max_pause.max(0.0);
    if words.is_empty() {
        return if duration > 0.0 {
            vec![0.0..duration]
        } else {
            Vec::new()
        };
    }

    let times: Vec<Range<f64>> = words
        .iter()
        .map(|word| {
            let start = word.start.max(0.0).min(duration);
            start..word.end.max(start).min(duration)
        })
        .collect();
    let kept: Vec<usize> = spoken(words)
        .iter()
        .enumerate()
        .filter_map(|(index, keep)| keep.then_some(index))
        .collect();
    let (Some(&first), Some(&last)) = (kept.first(), kept.last()) else {
        return Vec::new();
    };

    let heard_before_first = first.checked_sub(1).map_or(0.0, |before| times[before].end);
    let lead = (times[first].start - heard_before_first).clamp(0.0, max_pause);
    let mut spans = Vec::new();
    let mut open = times[first].start - lead;
    for pair in kept.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let nothing_cut = b == a + 1;
        if nothing_cut && times[b].start - times[a].end <= max_pause {
            continue;
        }
        // The silence after `a` lasts until the next sound, a cut word or `b`; likewise before
        // `b`. With nothing cut both are the one pause between them.
        let (after_a, before_b) = share_pause(
            (times[a + 1].start - times[a].end).max(0.0),
            (times[b].start - times[b - 1].end).max(0.0),
            max_pause,
        );
        spans.push(open..times[a].end + after_a);
        open = times[b].start - before_b;
    }
    let heard_after_last = times.get(last + 1).map_or(duration, |after| after.start);
    let trail = (heard_after_last - times[last].end).clamp(0.0, max_pause);
    spans.push(open..times[last].end + trail);

    merged(spans)
}

/// Which words are speech to keep, not fillers or stutters.
fn spoken(words: &[TimedWord]) -> Vec<bool> {
    let tokens: Vec<Token> = words.iter().map(|word| Token::read(word.word)).collect();
    let mut keep: Vec<bool> = tokens.iter().map(|token| !token.is_filler()).collect();
    // Walking backwards, each word meets the next word spoken after it, fillers skipped.
    let mut next: Option<&Token> = None;
    for (index, token) in tokens.iter().enumerate().rev() {
        if !keep[index] || token.text.is_empty() {
            continue;
        }
        if next.is_some_and(|next| token.is_stutter_of(next)) {
            keep[index] = false;
        }
        next = Some(token);
    }
    keep
}

/// A word reduced to what matters for finding fillers and stutters.
struct Token {
    /// Lower-cased, without the punctuation around it.
    text: String,
    /// Written as broken off: "th-".
    broken_off: bool,
    /// Written in capitals, as an abbreviation ("ER" is not "er").
    abbreviation: bool,
}

impl Token {
    fn read(word: &str) -> Token {
        let word = word.trim();
        let core = word.trim_matches(|c: char| !c.is_alphanumeric());
        let trailing = &word[word.trim_end_matches(|c: char| !c.is_alphanumeric()).len()..];
        Token {
            text: core.to_lowercase(),
            broken_off: trailing.contains(BREAK_MARKS),
            abbreviation: core.chars().count() > 1
                && core.chars().all(|c| !c.is_alphabetic() || c.is_uppercase()),
        }
    }

    fn is_filler(&self) -> bool {
        if self.abbreviation {
            return false;
        }
        let mut collapsed: Vec<char> = self.text.chars().collect();
        collapsed.dedup();
        let collapsed: String = collapsed.into_iter().collect();
        // A lone "m" may be the letter; "mm" and longer are a hum.
        FILLERS.contains(&collapsed.as_str()) || (collapsed == "m" && self.text.len() > 1)
    }

    fn is_stutter_of(&self, next: &Token) -> bool {
        !self.text.is_empty()
            && (self.text == next.text || (self.broken_off && next.text.starts_with(&self.text)))
    }
}

/// How much of the silences after and before a cut to keep, together at most `budget`: half
/// each, and what one side lacks the other may use.
fn share_pause(after: f64, before: f64, budget: f64) -> (f64, f64) {
    let before_share = before.min(budget / 2.0);
    let after_share = after.min(budget - before_share);
    (after_share, before.min(budget - after_share))
}

/// The spans in order, with overlapping ones (from words whose timings overlap) joined and
/// empty ones dropped.
fn merged(mut spans: Vec<Range<f64>>) -> Vec<Range<f64>> {
    spans.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut joined: Vec<Range<f64>> = Vec::with_capacity(spans.len());
    for span in spans.into_iter().filter(|span| span.end > span.start) {
        match joined.last_mut() {
            Some(previous) if span.start <= previous.end => {
                previous.end = previous.end.max(span.end);
            }
            _ => joined.push(span),
        }
    }
    joined
}

#[cfg(test)]
mod tests;
