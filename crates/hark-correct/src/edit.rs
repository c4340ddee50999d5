//! Edits to a text, counted in Unicode scalar values, and how they are applied.

/// One correction: replace `length` characters at `offset` with `replacement`.
///
/// Offsets and lengths count Unicode scalar values (`char`s) of the original text, as the
/// transcript's JSON promises, so clients in any language can index the text the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub offset: usize,
    pub length: usize,
    /// The text that takes the place of the original characters; empty for a removal.
    pub replacement: String,
    /// The name of the rule that asked for the edit, e.g. `AnA` or `RepeatedWords`.
    pub rule: String,
    /// What is wrong, said for a person.
    pub message: String,
}

impl Edit {
    /// The offset just past the replaced characters.
    pub(crate) fn end(&self) -> usize {
        self.offset + self.length
    }

    /// Whether two edits cannot both be applied: they replace some of the same characters, or
    /// they start at the same place (two insertions there would have no order).
    pub(crate) fn clashes_with(&self, other: &Edit) -> bool {
        self.offset == other.offset || (self.offset < other.end() && other.offset < self.end())
    }
}

/// The text with its edits applied.
///
/// Edits are taken in order of their offsets; one that clashes with an edit already applied,
/// or reaches past the end of the text, is left out, so stored edits that no longer fit their
/// text cannot corrupt it.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut ordered: Vec<&Edit> = edits.iter().collect();
    ordered.sort_by_key(|edit| edit.offset);

    let mut chars = text.chars();
    let mut position = 0;
    let mut corrected = String::with_capacity(text.len());
    let total = text.chars().count();
    let mut last_applied: Option<&Edit> = None;
    for edit in ordered {
        let fits = edit.end() <= total;
        let clashes = last_applied.is_some_and(|last| last.clashes_with(edit));
        if !fits || clashes {
            continue;
        }
        corrected.extend(chars.by_ref().take(edit.offset - position));
        corrected.push_str(&edit.replacement);
        chars.by_ref().take(edit.length).for_each(drop);
        position = edit.end();
        last_applied = Some(edit);
    }
    corrected.extend(chars);
    corrected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(offset: usize, length: usize, replacement: &str) -> Edit {
        Edit {
            offset,
            length,
            replacement: replacement.to_owned(),
            rule: "Test".to_owned(),
            message: String::new(),
        }
    }

    #[test]
    fn no_edits_leave_the_text_as_it_was() {
        assert_eq!(apply("Déjà vu.", &[]), "Déjà vu.");
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        // "é" is two bytes but one character: the edit must land on "a", not inside "café".
        let text = "The café has a owl.";
        assert_eq!(apply(text, &[edit(13, 1, "an")]), "The café has an owl.");
    }

    #[test]
    fn replacements_removals_and_insertions_apply_in_order() {
        let text = "i saw the the dog";
        let edits = [edit(0, 1, "I"), edit(6, 4, ""), edit(17, 0, ".")];
        assert_eq!(apply(text, &edits), "I saw the dog.");
    }

    #[test]
    fn edits_given_out_of_order_are_applied_by_offset() {
        let edits = [edit(2, 1, "B"), edit(0, 1, "A")];
        assert_eq!(apply("a b c", &edits), "A B c");
    }

    #[test]
    fn clashing_or_overreaching_edits_are_left_out() {
        let edits = [edit(0, 3, "one"), edit(2, 3, "two"), edit(4, 9, "far")];
        assert_eq!(apply("abcdef", &edits), "onedef");
    }

    #[test]
    fn edits_clash_when_they_share_characters_or_a_starting_point() {
        assert!(edit(0, 3, "").clashes_with(&edit(2, 1, "")));
        assert!(edit(5, 0, "x").clashes_with(&edit(5, 0, "y")));
        assert!(!edit(0, 3, "").clashes_with(&edit(3, 1, "")));
        assert!(!edit(3, 0, "x").clashes_with(&edit(0, 3, "")));
    }
}
