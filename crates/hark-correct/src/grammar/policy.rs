//! Which of Harper's findings make sense as corrections of speech.
//!
//! Harper checks written prose; a transcript is speech written down by a recogniser that spells
//! every word it knows correctly. So style advice and typography are not corrections here, and an
//! unknown word is more likely a name or a term than a misspelling.

use harper_core::linting::{Lint, LintKind, Suggestion};

/// Rules switched off because they misfire on ordinary speech.
pub(super) const UNFIT_RULES: &[&str] = &[
    // Guesses a possessive from word statistics: "talk to you tomorrow" became "talk to your".
    "PossessiveYour",
    // Closes open compounds the dictionary also knows closed: "the dog food" became "dogfood".
    "CompoundNouns",
    // Removes the filler but not the commas around it: "the, uh, database" became "the,, database".
    "FillerWords",
];

/// Shortest unknown word a spelling correction may change: shorter ones are mostly slang and
/// abbreviations ("lol" is not a misspelt "loll").
const MIN_RESPELLED_LENGTH: usize = 4;

/// Whether a lint is a correction a transcript should get.
pub(super) fn is_fit_for_speech(lint: &Lint, source: &[char]) -> bool {
    match lint.lint_kind {
        LintKind::Agreement
        | LintKind::BoundaryError
        | LintKind::Capitalization
        | LintKind::Eggcorn
        | LintKind::Grammar
        | LintKind::Malapropism
        | LintKind::Miscellaneous
        | LintKind::Nonstandard
        | LintKind::Punctuation
        | LintKind::Repetition
        | LintKind::Typo
        | LintKind::Usage
        | LintKind::WordChoice
        | LintKind::WordOrder => true,
        LintKind::Spelling => is_plausible_respelling(lint, source),
        // Advice on how to write, not what is wrong: what the speaker said stays as said.
        LintKind::Enhancement
        | LintKind::Formatting
        | LintKind::Readability
        | LintKind::Redundancy
        | LintKind::Regionalism
        | LintKind::Style => false,
    }
}

/// A spelling correction is taken only for a lower-case word at least
/// [`MIN_RESPELLED_LENGTH`] long whose suggestion is one keystroke away, ignoring case.
///
/// The recogniser capitalises names, and a name is rarely in the dictionary: "Siobhan" would
/// become "Sideman". A lower-case unknown word is usually a term, and a far-fetched suggestion a
/// guess ("kubectl" would become "puberty"); a real slip is one letter added, dropped, changed or
/// swapped ("recieve").
fn is_plausible_respelling(lint: &Lint, source: &[char]) -> bool {
    let Some(word) = source.get(lint.span.start..lint.span.end) else {
        return false;
    };
    let Some(Suggestion::ReplaceWith(suggestion)) = lint.suggestions.first() else {
        return false;
    };
    let lower =
        |chars: &[char]| -> Vec<char> { chars.iter().flat_map(|c| c.to_lowercase()).collect() };
    word.len() >= MIN_RESPELLED_LENGTH
        && !word.iter().any(|c| c.is_uppercase())
        && keystrokes_apart(&lower(word), &lower(suggestion)) <= 1
}

/// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each count one.
fn keystrokes_apart(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            rows[at(i, j)] = if i == 0 || j == 0 {
                i + j
            } else {
                let substitution = rows[at(i - 1, j - 1)] + usize::from(a[i - 1] != b[j - 1]);
                let mut best = substitution
                    .min(rows[at(i - 1, j)] + 1)
                    .min(rows[at(i, j - 1)] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(rows[at(i - 2, j - 2)] + 1);
                }
                best
            };
        }
    }
    rows[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    use super::keystrokes_apart;

    fn distance(a: &str, b: &str) -> usize {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        keystrokes_apart(&chars(a), &chars(b))
    }

    #[test]
    fn a_swap_of_neighbours_is_one_keystroke() {
        assert_eq!(distance("recieve", "receive"), 1);
        assert_eq!(distance("freind", "friend"), 1);
    }

    #[test]
    fn insertions_deletions_and_substitutions_count_one_each() {
        assert_eq!(distance("recomended", "recommended"), 1);
        assert_eq!(distance("definately", "definitely"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn unrelated_words_are_far_apart() {
        assert!(distance("kubectl", "puberty") > 1);
        assert!(distance("nginx", "nine") > 1);
    }
}
