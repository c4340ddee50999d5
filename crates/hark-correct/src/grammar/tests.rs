use super::Corrector;
use crate::{Edit, apply};
use std::sync::LazyLock;

/// One corrector for every test: building it is the slow part.
static CORRECTOR: LazyLock<Corrector> = LazyLock::new(Corrector::new);

fn corrected(text: &str) -> String {
    apply(text, &CORRECTOR.edits(text))
}

fn assert_sorted_and_apart(edits: &[Edit]) {
    for pair in edits.windows(2) {
        assert!(
            pair[0].end() <= pair[1].offset && pair[0].offset < pair[1].offset,
            "edits out of order or overlapping: {pair:?}"
        );
    }
}

#[test]
fn a_before_a_vowel_sound_becomes_an() {
    assert_eq!(corrected("I ate a apple."), "I ate an apple.");
}

#[test]
fn the_pronoun_i_is_capitalised() {
    assert_eq!(
        corrected("Yesterday i went home early."),
        "Yesterday I went home early."
    );
}

#[test]
fn the_verb_agrees_with_its_pronoun() {
    assert_eq!(corrected("They has a new car."), "They have a new car.");
}

#[test]
fn a_doubled_word_is_said_once() {
    assert_eq!(corrected("We fixed the the bug."), "We fixed the bug.");
}

#[test]
fn sentences_start_with_a_capital() {
    assert_eq!(
        corrected("the build passed on the server. the team can ship the release now."),
        "The build passed on the server. The team can ship the release now."
    );
}

#[test]
fn an_irregular_verb_takes_its_irregular_form() {
    assert_eq!(
        corrected("She buyed a bike yesterday."),
        "She bought a bike yesterday."
    );
}

#[test]
fn several_mistakes_in_one_sentence_are_all_fixed() {
    assert_eq!(
        corrected("i has a apple and the the car."),
        "I have an apple and the car."
    );
}

#[test]
fn a_slip_in_a_lower_case_word_is_respelt() {
    assert_eq!(
        corrected("I will recieve the parcel tomorrow."),
        "I will receive the parcel tomorrow."
    );
}

#[test]
fn offsets_count_characters_in_text_with_accents() {
    let text = "At the café i ordered a espresso.";
    let edits = CORRECTOR.edits(text);
    let chars: Vec<char> = text.chars().collect();
    let replaced: Vec<String> = edits
        .iter()
        .map(|edit| chars[edit.offset..edit.end()].iter().collect())
        .collect();

    assert_eq!(replaced, ["i", "a"]);
    assert_eq!(apply(text, &edits), "At the café I ordered an espresso.");
}

#[test]
fn each_edit_names_its_rule_and_says_what_is_wrong() {
    let edits = CORRECTOR.edits("I ate a apple.");

    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].rule, "AnA");
    assert!(!edits[0].message.is_empty());
}

#[test]
fn rules_that_agree_or_overlap_give_sorted_edits_that_do_not_overlap() {
    // "i" breaks two rules at once, and "we we" three; only one edit may touch each.
    let text = "i think we we need a update. The the release is late.";
    let edits = CORRECTOR.edits(text);

    assert_sorted_and_apart(&edits);
    assert_eq!(
        apply(text, &edits),
        "I think we need an update. The release is late."
    );
}

#[test]
fn the_same_text_always_gets_the_same_edits() {
    let text = "i think we we need a update.";
    assert_eq!(CORRECTOR.edits(text), CORRECTOR.edits(text));
}

#[test]
fn correct_speech_gets_no_edits() {
    for text in [
        " Okay, so this is a quick note for tomorrow's meeting.",
        " I'll send you the file tonight, talk to you tomorrow.",
        " The dog food is in the garage, next to the bikes.",
        " We should check whether the backup actually ran last night.",
        " I think it's fine, but let's double-check with Anna.",
        " Honestly, I don't know what happened; it just stopped working.",
    ] {
        assert_eq!(CORRECTOR.edits(text), [], "{text:?}");
    }
}

#[test]
fn names_and_terms_the_dictionary_lacks_are_left_as_spoken() {
    for text in [
        " Ask Siobhan about the trip to Tbilisi.",
        " We deploy with kubectl and nginx.",
        " That was funny, lol.",
    ] {
        assert_eq!(CORRECTOR.edits(text), [], "{text:?}");
    }
}

#[test]
fn a_filler_in_the_text_is_left_for_the_audio_to_cut() {
    // Removing just the word would leave "the,, database".
    let text = " The first one is the, uh, database migration.";
    assert_eq!(CORRECTOR.edits(text), []);
}

#[test]
fn style_advice_is_not_a_correction() {
    // Harper would shorten "and also" (redundancy) and use the ellipsis character (formatting).
    let text = " Buy milk and also bread... and eggs.";
    assert_eq!(CORRECTOR.edits(text), []);
}

#[test]
fn empty_text_gets_no_edits() {
    assert_eq!(CORRECTOR.edits(""), []);
}

#[test]
fn one_corrector_serves_several_threads_at_once() {
    let texts = ["i ate a apple.", "We fixed the the bug.", "They has a car."];
    let results: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = texts
            .iter()
            .map(|text| scope.spawn(|| corrected(text)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a correcting thread panicked"))
            .collect()
    });

    assert_eq!(
        results,
        ["I ate an apple.", "We fixed the bug.", "They have a car."]
    );
}
