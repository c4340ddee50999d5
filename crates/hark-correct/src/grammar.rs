//! Grammar and spelling edits to a transcript, from Harper's curated rules.

mod policy;

use crate::edit::Edit;
use harper_core::linting::{Lint, LintGroup, Suggestion};
use harper_core::spell::FstDictionary;
use harper_core::{Dialect, Document};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Finds the grammar and spelling corrections of a transcript.
///
/// Building one loads Harper's dictionary and several hundred rules, which takes a while: build
/// it once and share it. Its rules keep caches and need exclusive access while they run, so
/// concurrent calls to [`Corrector::edits`] take turns.
pub struct Corrector {
    dictionary: Arc<FstDictionary>,
    rules: Mutex<LintGroup>,
}

impl Corrector {
    pub fn new() -> Corrector {
        let dictionary = FstDictionary::curated();
        let mut rules = LintGroup::new_curated(dictionary.clone(), Dialect::American);
        for rule in policy::UNFIT_RULES {
            rules.config.set_rule_enabled(*rule, false);
        }
        Corrector {
            dictionary,
            rules: Mutex::new(rules),
        }
    }

    /// The corrections of `text`: sorted by offset, none overlapping another.
    ///
    /// Where rules disagree about the same words, the one Harper ranks as more important wins;
    /// ties go to the earlier, then the longer span, then the rule's name, so the same text always
    /// gets the same edits.
    pub fn edits(&self, text: &str) -> Vec<Edit> {
        let document = Document::new_plain_english(text, &*self.dictionary);
        // A panic inside a rule leaves only its caches half-updated; the rules stay usable.
        let lints = self
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .organized_lints(&document);
        let source = document.get_source();

        let mut candidates: Vec<(u8, Edit)> = lints
            .iter()
            .flat_map(|(rule, lints)| lints.iter().map(move |lint| (rule, lint)))
            .filter(|(_, lint)| policy::is_fit_for_speech(lint, source))
            .filter_map(|(rule, lint)| Some((lint.priority, edit_for(rule, lint, source)?)))
            .collect();
        candidates.sort_by(|(a_priority, a), (b_priority, b)| {
            a_priority
                .cmp(b_priority)
                .then(a.offset.cmp(&b.offset))
                .then(b.length.cmp(&a.length))
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| a.replacement.cmp(&b.replacement))
        });

        let mut chosen: BTreeMap<usize, Edit> = BTreeMap::new();
        for (_, edit) in candidates {
            let before = chosen.range(..=edit.offset).next_back();
            let after = chosen.range(edit.offset..).next();
            let clashes = before
                .into_iter()
                .chain(after)
                .any(|(_, e)| e.clashes_with(&edit));
            if !clashes {
                chosen.insert(edit.offset, edit);
            }
        }
        chosen.into_values().collect()
    }
}

impl Default for Corrector {
    fn default() -> Self {
        Corrector::new()
    }
}

/// The edit a lint's first (most likely) suggestion makes, unless it would change nothing.
fn edit_for(rule: &str, lint: &Lint, source: &[char]) -> Option<Edit> {
    let original = source.get(lint.span.start..lint.span.end)?;
    let replacement: String = match lint.suggestions.first()? {
        Suggestion::ReplaceWith(chars) => chars.iter().collect(),
        Suggestion::Remove => String::new(),
        // Written as a replacement of the span so that edits never need to be empty to insert.
        Suggestion::InsertAfter(chars) => original.iter().chain(chars).collect(),
    };
    if replacement.chars().eq(original.iter().copied()) {
        return None;
    }
    Some(Edit {
        offset: lint.span.start,
        length: original.len(),
        replacement,
        rule: rule.to_owned(),
        message: lint.message.clone(),
    })
}

#[cfg(test)]
mod tests;
