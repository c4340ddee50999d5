//! Transcription of real speech (espeak-ng) by the real model (Whisper tiny.en).

use hark_speech::{Model, SpeechError, TranscribeOptions, Transcript};
use hark_testkit::speech::{
    SAMPLE_RATE, normalized_words, silence, spoken, word_error_rate, words_with_gaps,
};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

const SENTENCES: [&str; 4] = [
    "Please leave the parcel at the front door if nobody answers.",
    "The meeting has been moved to Thursday afternoon.",
    "I will be a few minutes late because of heavy traffic on the bridge.",
    "Can you call me back when you have a moment?",
];

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(hark_testkit::speech_model_dir(), 2).expect("the model loads"))
}

fn transcribe(audio: &[f32], options: TranscribeOptions) -> Result<Transcript, SpeechError> {
    let mut transcriber = model().transcriber(options);
    // In pieces, as a decoder hands them over.
    for piece in audio.chunks(SAMPLE_RATE as usize * 7) {
        transcriber.push(piece)?;
    }
    let transcript = transcriber.finish()?;
    assert_invariants(&transcript, audio.len() as f64 / f64::from(SAMPLE_RATE));
    Ok(transcript)
}

fn text(transcript: &Transcript) -> String {
    let texts: Vec<&str> = transcript
        .segments
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    texts.join(" ")
}

/// What every transcript promises: times within the audio, segments in order, words inside
/// their segment and in order, confidences between 0 and 1.
fn assert_invariants(transcript: &Transcript, duration: f64) {
    assert!((transcript.duration_seconds - duration).abs() < 1e-9);
    let mut previous_end = 0.0;
    for segment in &transcript.segments {
        assert!(!segment.text.is_empty() && segment.text.trim() == segment.text);
        assert!(
            previous_end <= segment.start && segment.start <= segment.end,
            "{segment:?}"
        );
        assert!(segment.end <= duration, "{segment:?} past {duration}");
        assert!((0.0..=1.0).contains(&segment.confidence));
        assert!(!segment.words.is_empty(), "{segment:?}");
        let mut word_end = segment.start;
        for word in &segment.words {
            assert!(
                word_end <= word.start && word.start <= word.end,
                "{word:?} in {segment:?}"
            );
            assert!(word.end <= segment.end, "{word:?} in {segment:?}");
            assert!((0.0..=1.0).contains(&word.confidence));
            assert!(!word.word.is_empty() && word.word.trim() == word.word);
            word_end = word.end;
        }
        // The words spell the segment's text.
        let words: Vec<&str> = segment.words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(
            normalized_words(&words.join(" ")),
            normalized_words(&segment.text)
        );
        previous_end = segment.end;
    }
}

#[test]
fn sentences_are_transcribed_with_few_word_errors() {
    for sentence in SENTENCES {
        let transcript =
            transcribe(&spoken(sentence), TranscribeOptions::default()).expect("transcribed");
        let wer = word_error_rate(sentence, &text(&transcript));
        assert!(
            wer <= 0.1,
            "{wer:.2}: {:?} for {sentence:?}",
            text(&transcript)
        );
        assert_eq!(transcript.language, "en");
        assert!(transcript.segments.iter().all(|s| s.confidence > 0.5));
    }
}

#[test]
fn word_onsets_follow_the_audio() {
    let words = [
        "apple", "river", "window", "garden", "yellow", "market", "coffee",
    ];
    let (audio, onsets) = words_with_gaps(&words, 0.7);
    let transcript = transcribe(&audio, TranscribeOptions::default()).expect("transcribed");
    let found: Vec<_> = transcript.segments.iter().flat_map(|s| &s.words).collect();
    let mut matched = 0;
    for (word, onset) in words.iter().zip(&onsets) {
        let Some(timed) = found.iter().find(|w| normalized_words(&w.word) == [*word]) else {
            continue;
        };
        matched += 1;
        // Times are found on 20 ms blocks, and a word's first block may be a soft consonant
        // quieter than the pause threshold (30 dB under the window's peak): a few blocks.
        assert!(
            (timed.start - onset).abs() <= 0.1,
            "{word} at {:.2}, spoken at {onset:.2}",
            timed.start
        );
    }
    assert!(matched >= words.len() - 1, "{:?}", text(&transcript));
}

#[test]
fn a_long_note_keeps_every_sentence_across_windows() {
    let sentences = [
        "The first delivery arrives early on Monday morning.",
        "Remember to water the tomatoes in the greenhouse.",
        "My brother is flying to Canada next week.",
        "The library closes at six in the evening.",
        "Please bring a warm jacket because it will be cold.",
        "Our neighbours painted their fence bright green.",
        "The children built a sandcastle on the beach.",
        "Do not forget the umbrella when you go out.",
        "A small bakery opened around the corner.",
        "The train to the airport leaves every hour.",
        "We should plant more roses along the path.",
        "The old bridge was repaired last summer.",
        "Grandmother knitted a scarf for the winter.",
        "The museum has a new exhibition about whales.",
    ];
    let mut audio = Vec::new();
    for sentence in sentences {
        audio.extend(spoken(sentence));
        audio.extend(silence(2.0));
    }
    let seconds = audio.len() as f64 / f64::from(SAMPLE_RATE);
    assert!(seconds > 60.0, "{seconds}");
    let transcript = transcribe(&audio, TranscribeOptions::default()).expect("transcribed");
    let said = text(&transcript);
    let wer = word_error_rate(&sentences.join(" "), &said);
    assert!(wer <= 0.1, "{wer:.2}: {said}");
    // Each sentence once: none dropped or repeated where a window ends.
    let said_words = normalized_words(&said).join(" ");
    for keyword in [
        "delivery", "tomatoes", "canada", "library", "jacket", "fence", "children", "umbrella",
        "bakery", "airport", "roses", "bridge", "scarf", "museum",
    ] {
        assert_eq!(
            said_words.matches(keyword).count(),
            1,
            "{keyword} in {said}"
        );
    }
    assert!(transcript.segments.last().expect("segments").end > 60.0);
}

#[test]
fn silence_and_faint_noise_give_no_segments() {
    let transcript = transcribe(&silence(40.0), TranscribeOptions::default()).expect("transcribed");
    assert!(transcript.segments.is_empty(), "{transcript:?}");
    // White noise about 50 dB below full scale.
    let mut state = 0x2545_f491_u32;
    let noise: Vec<f32> = (0..SAMPLE_RATE * 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 0.006
        })
        .collect();
    let transcript = transcribe(&noise, TranscribeOptions::default()).expect("transcribed");
    assert!(transcript.segments.is_empty(), "{transcript:?}");
}

#[test]
fn a_raised_cancel_flag_stops_the_transcription() {
    let cancel = Arc::new(AtomicBool::new(true));
    let options = TranscribeOptions {
        cancel: Some(cancel),
        ..TranscribeOptions::default()
    };
    let mut audio = spoken(SENTENCES[0]);
    audio.extend(silence(30.0));
    let error = transcribe(&audio, options).expect_err("cancelled");
    assert!(error.is_cancelled(), "{error}");
}

#[test]
fn an_english_only_model_refuses_other_languages() {
    let options = TranscribeOptions {
        language: Some("de".into()),
        ..TranscribeOptions::default()
    };
    let error = transcribe(&spoken(SENTENCES[1]), options).expect_err("refused");
    assert!(
        matches!(error, SpeechError::UnsupportedLanguage { .. }),
        "{error}"
    );
    let options = TranscribeOptions {
        language: Some("en".into()),
        ..TranscribeOptions::default()
    };
    transcribe(&spoken(SENTENCES[1]), options).expect("English is fine");
}

#[test]
fn the_prompt_conditions_without_appearing() {
    let options = TranscribeOptions {
        prompt: Some("Notes about the parcel delivery.".into()),
        ..TranscribeOptions::default()
    };
    let transcript = transcribe(&spoken(SENTENCES[0]), options).expect("transcribed");
    let said = text(&transcript);
    assert!(word_error_rate(SENTENCES[0], &said) <= 0.1, "{said}");
    assert!(!said.contains("Notes about"), "{said}");
}
