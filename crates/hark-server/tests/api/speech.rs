//! Speech through the pipeline with the real Whisper tiny.en model: transcripts of espeak-ng
//! speech of known text in every format, transcript search and its isolation, the corrected
//! transcript and audio, and what happens without a model.

use hark_api::{
    EventType, JobList, JobStatus, JobStep, Note, NoteList, NoteStatus, PresentationFile,
    Rendition, Transcript,
};
use hark_client::UploadOptions;
use hark_testkit::speech::{SAMPLE_RATE, silence, spoken, word_error_rate};

use crate::helpers::{Backend, TestApp, TestUser, assert_problem, spawn_app, spawn_app_with};
use crate::pipeline::{events_about, settled};

/// An upper bound on how long espeak-ng takes to say `SAID`.
const SAID_SECONDS_AT_MOST: f64 = 12.0;
const SAID: &str =
    "Please deliver the parcel to the back door. The driver will call you when he arrives.";

/// An app whose workers transcribe with the test model.
async fn speaking_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        c.speech.model_dir = hark_testkit::speech_model_dir().to_path_buf();
        c.speech.threads = 2;
    })
    .await
}

/// 16-bit WAV bytes of 16 kHz samples.
fn wav(samples: &[f32]) -> Vec<u8> {
    let pcm: Vec<i16> = samples
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * 32_767.0) as i16)
        .collect();
    hark_testkit::pcm16_wav(SAMPLE_RATE, &pcm)
}

async fn upload(user: &TestUser, samples: &[f32], name: &str, correct: bool) -> Note {
    let query = if correct { "&correct=true" } else { "" };
    let response = user
        .post(&format!("/api/v1/notes?name={name}{query}"))
        .header("content-type", "audio/wav")
        .body(wav(samples))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
    response.json().await.expect("note")
}

/// The JSON answer of a GET.
async fn fetch<T: serde::de::DeserializeOwned>(user: &TestUser, path: &str) -> T {
    let response = user.get(path).send().await.expect("get");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

async fn transcript(user: &TestUser, id: &str, query: &str) -> reqwest::Response {
    user.get(&format!("/api/v1/notes/{id}/transcript{query}"))
        .send()
        .await
        .expect("transcript")
}

async fn search(user: &TestUser, q: &str) -> NoteList {
    let response = user
        .get(&format!("/api/v1/notes?q={q}"))
        .send()
        .await
        .expect("search");
    assert_eq!(response.status(), 200, "q={q}");
    response.json().await.expect("list")
}

/// Segments and words in order, inside each other and the note, with confidences in 0..1.
fn assert_well_formed(transcript: &Transcript) {
    let mut last_end = 0.0;
    for (n, segment) in transcript.segments.iter().enumerate() {
        assert_eq!(segment.id as usize, n);
        assert!(segment.start <= segment.end, "{segment:?}");
        assert!(
            segment.start >= last_end - 1e-6,
            "segments overlap: {segment:?}"
        );
        assert!(
            segment.end <= transcript.duration_seconds + 1e-6,
            "{segment:?}"
        );
        assert!((0.0..=1.0).contains(&segment.confidence), "{segment:?}");
        assert!(!segment.text.trim().is_empty());
        let mut word_end = segment.start;
        for word in &segment.words {
            assert!(
                word.start >= word_end - 1e-6,
                "words out of order: {word:?}"
            );
            assert!(
                word.start <= word.end && word.end <= segment.end + 1e-6,
                "{word:?}"
            );
            assert!((0.0..=1.0).contains(&word.confidence), "{word:?}");
            word_end = word.end;
        }
        last_end = segment.end;
    }
}

async fn speech_is_transcribed_searched_and_given_in_every_format(backend: Backend) {
    let app = speaking_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let note = upload(&ann, &spoken(SAID), "delivery.wav", false).await;
    let note = settled(&ann, &note.id).await;
    assert_eq!(note.status, NoteStatus::Ready);

    let response = transcript(&ann, &note.id, "").await;
    assert_eq!(response.status(), 200);
    let heard: Transcript = response.json().await.expect("transcript");
    assert_eq!(heard.note_id, note.id);
    assert_eq!(heard.language, "en");
    assert_eq!(heard.edits, None);
    assert!((heard.duration_seconds - note.duration_seconds).abs() < 1e-9);
    let wer = word_error_rate(SAID, &heard.text);
    assert!(wer <= 0.2, "word error rate {wer:.2}: {:?}", heard.text);
    assert!(!heard.segments.is_empty());
    assert!(heard.segments.iter().all(|s| !s.words.is_empty()));
    assert_well_formed(&heard);

    let subtitles = |format: &'static str, mime: &'static str| {
        let (ann, id) = (&ann, &note.id);
        async move {
            let response = transcript(ann, id, &format!("?format={format}")).await;
            let given = response.headers()["content-type"].to_str().expect("type");
            assert!(given.starts_with(mime), "{given}");
            response.text().await.expect("text")
        }
    };
    let srt = subtitles("srt", "application/x-subrip").await;
    assert!(srt.starts_with("1\n00:00:"), "{srt}");
    let vtt = subtitles("vtt", "text/vtt").await;
    assert!(vtt.starts_with("WEBVTT\n\n00:00:"), "{vtt}");
    assert_eq!(srt.matches(" --> ").count(), heard.segments.len());
    assert_eq!(vtt.matches(" --> ").count(), heard.segments.len());
    let txt = transcript(&ann, &note.id, "?format=txt")
        .await
        .text()
        .await
        .expect("txt");
    assert_eq!(txt.lines().count(), heard.segments.len());
    let corrected = transcript(&ann, &note.id, "?version=corrected").await;
    let detail = assert_problem(corrected, 404, "not_found").await;
    assert!(detail.contains("ready"), "{detail}");
    let bad = transcript(&ann, &note.id, "?format=doc").await;
    assert_problem(bad, 400, "validation").await;

    // Search: every word must occur, in any case; each item carries the segments that matched.
    let found = search(&ann, "PARCEL%20door").await;
    assert_eq!(found.items.len(), 1);
    let matches = found.items[0].matches.as_ref().expect("matches");
    assert!(!matches.is_empty());
    assert!(
        matches
            .iter()
            .any(|m| m.text.to_lowercase().contains("parcel")),
        "{matches:?}"
    );
    assert!(
        matches
            .iter()
            .all(|m| m.start < m.end && m.end <= note.duration_seconds + 1e-6)
    );
    assert!(search(&ann, "parcel%20elephant").await.items.is_empty());
    let plain: NoteList = fetch(&ann, "/api/v1/notes").await;
    assert_eq!(plain.items[0].matches, None);
    // Another user finds nothing of Ann's, and cannot read her transcript.
    assert!(search(&bob, "parcel").await.items.is_empty());
    assert_problem(transcript(&bob, &note.id, "").await, 404, "not_found").await;

    // Seed 001's presentation: the transcript's segments, 1-based, in milliseconds.
    let file: PresentationFile = fetch(&ann, &format!("/api/presentation/files/{}", note.id)).await;
    assert_eq!(file.segments.len(), heard.segments.len());
    for (n, (shown, segment)) in file.segments.iter().zip(&heard.segments).enumerate() {
        assert_eq!(shown.file_segment_id, n as u64 + 1);
        assert_eq!(shown.start_time, (segment.start * 1000.0).round() as u64);
        assert_eq!(shown.end_time, (segment.end * 1000.0).round() as u64);
    }
    app.stop().await;
}

async fn correction_fixes_the_text_and_cuts_the_pauses(backend: Backend) {
    let app = speaking_app(backend).await;
    let ann = app.user("ann@example.com").await;
    // Two sentences with a long pause between them.
    // Whisper hears the agreement mistake as said, and the rules fix it.
    let mut audio = spoken("She have two cats.");
    audio.extend(silence(3.0));
    audio.extend(spoken("The driver will call you when he arrives."));
    let note = upload(&ann, &audio, "cats.wav", true).await;
    let note = settled(&ann, &note.id).await;
    assert_eq!(note.status, NoteStatus::Ready);

    let original: Transcript = transcript(&ann, &note.id, "")
        .await
        .json()
        .await
        .expect("original");
    let response = transcript(&ann, &note.id, "?version=corrected").await;
    assert_eq!(response.status(), 200);
    let corrected: Transcript = response.json().await.expect("corrected");
    let edits = corrected.edits.clone().expect("edits");
    // Offsets in scalar values of the original text, sorted, apart, and they make the text.
    let chars: Vec<char> = original.text.chars().collect();
    let mut applied = String::new();
    let mut at = 0;
    for edit in &edits {
        assert!(
            edit.offset >= at && edit.offset + edit.length <= chars.len(),
            "{edit:?}"
        );
        assert!(
            !edit.rule.is_empty() && !edit.message.is_empty(),
            "{edit:?}"
        );
        applied.extend(&chars[at..edit.offset]);
        applied.push_str(&edit.replacement);
        at = edit.offset + edit.length;
    }
    applied.extend(&chars[at..]);
    assert_eq!(applied, corrected.text);
    assert!(
        edits.iter().any(|e| e.replacement == "has"),
        "no have→has in {edits:?} of {:?}",
        original.text
    );
    assert_well_formed(&corrected);

    // The corrected audio: the original voice with the long pause shortened, still playable.
    let rendition = note
        .renditions
        .iter()
        .find(|r| r.name == Rendition::Corrected)
        .expect("a corrected rendition");
    assert!(
        rendition.duration_seconds < note.duration_seconds - 2.0,
        "{} of {}",
        rendition.duration_seconds,
        note.duration_seconds
    );
    let bytes = ann
        .get(&rendition.url)
        .send()
        .await
        .expect("corrected audio")
        .bytes()
        .await
        .expect("bytes");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("corrected.ogg");
    std::fs::write(&path, &bytes).expect("write");
    let probed = hark_audio::probe_file(&path).expect("the corrected audio is audio");
    assert!((probed.duration_seconds - rendition.duration_seconds).abs() < 0.05);
    assert_eq!(events_about(&app, &note.id, EventType::NoteReady).await, 1);
    app.stop().await;
}

/// With a synthesiser configured, the corrected audio is the corrected text, spoken.
async fn a_configured_synthesiser_speaks_the_corrected_text(backend: Backend) {
    const SYNTHESISER: &str = "espeak-ng --stdin --stdout -v en-us";
    let app = spawn_app_with(backend, |c| {
        c.speech.model_dir = hark_testkit::speech_model_dir().to_path_buf();
        c.speech.threads = 2;
        c.speech.tts.command = SYNTHESISER.into();
    })
    .await;
    let ann = app.user("ann@example.com").await;
    let mut audio = spoken("She have two cats.");
    audio.extend(silence(4.0));
    let note = upload(&ann, &audio, "spoken.wav", true).await;
    let note = settled(&ann, &note.id).await;
    assert_eq!(note.status, NoteStatus::Ready, "{:?}", note.failure_reason);
    let corrected: Transcript = transcript(&ann, &note.id, "?version=corrected")
        .await
        .json()
        .await
        .expect("corrected");
    assert!(corrected.text.contains("has"), "{:?}", corrected.text);
    let rendition = note
        .renditions
        .iter()
        .find(|r| r.name == Rendition::Corrected)
        .expect("a corrected rendition");
    // As long as the synthesiser takes to say the corrected text (the pause is gone).
    let mut parts = SYNTHESISER.split_whitespace();
    let mut say = std::process::Command::new(parts.next().expect("program"))
        .args(parts)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("espeak-ng runs");
    std::io::Write::write_all(
        &mut say.stdin.take().expect("stdin"),
        corrected.text.as_bytes(),
    )
    .expect("text");
    let spoken_wav = say.wait_with_output().expect("espeak-ng").stdout;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("said.wav");
    std::fs::write(&path, spoken_wav).expect("write");
    let said = hark_audio::probe_file(&path)
        .expect("probe")
        .duration_seconds;
    assert!(
        (rendition.duration_seconds - said).abs() < 0.05,
        "{} against {said}",
        rendition.duration_seconds
    );
    app.stop().await;
}

async fn correction_can_be_asked_for_later(backend: Backend) {
    let app = speaking_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let note = upload(&ann, &spoken("i has a apple."), "later.wav", false).await;
    let note = settled(&ann, &note.id).await;
    let jobs: JobList = fetch(&ann, &format!("/api/v1/notes/{}/jobs", note.id)).await;
    let correct = jobs
        .items
        .iter()
        .find(|j| j.step == JobStep::Correct)
        .expect("correct");
    assert_eq!(correct.status, JobStatus::Skipped);
    assert!(
        note.renditions
            .iter()
            .all(|r| r.name != Rendition::Corrected)
    );

    let asked = bob
        .post(&format!("/api/v1/notes/{}/correct", note.id))
        .send()
        .await
        .expect("ask");
    assert_problem(asked, 404, "not_found").await;
    let asked = ann
        .post(&format!("/api/v1/notes/{}/correct", note.id))
        .send()
        .await
        .expect("ask");
    assert_eq!(asked.status(), 202);
    let note = settled(&ann, &note.id).await;
    assert_eq!(note.status, NoteStatus::Ready);
    assert!(
        note.renditions
            .iter()
            .any(|r| r.name == Rendition::Corrected)
    );
    assert_eq!(
        transcript(&ann, &note.id, "?version=corrected")
            .await
            .status(),
        200
    );
    // One note.ready for the upload's run, one for the correction's.
    assert_eq!(events_about(&app, &note.id, EventType::NoteReady).await, 2);
    app.stop().await;
}

async fn without_a_model_speech_is_skipped(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let options = UploadOptions {
        name: Some("quiet.wav".into()),
        ..Default::default()
    };
    let note = ann
        .client
        .upload_bytes(wav(&spoken("Hello there.")), &options)
        .await
        .expect("upload");
    let note = settled(&ann, &note.id).await;
    assert_eq!(note.status, NoteStatus::Ready);
    let jobs: JobList = fetch(&ann, &format!("/api/v1/notes/{}/jobs", note.id)).await;
    for step in [JobStep::Transcribe, JobStep::Correct] {
        let job = jobs.items.iter().find(|j| j.step == step).expect("job");
        assert_eq!(job.status, JobStatus::Skipped, "{job:?}");
    }
    let detail = assert_problem(transcript(&ann, &note.id, "").await, 404, "not_found").await;
    assert!(detail.contains("ready"), "{detail}");
    // Searching is still answered: nothing has a transcript.
    assert!(search(&ann, "hello").await.items.is_empty());
    app.stop().await;
}

/// OpenAI's official Python client transcribes through Hark as it would through OpenAI; the
/// audio is not stored.
async fn the_openai_client_transcribes_through_hark(backend: Backend) {
    let app = speaking_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("parcel.wav");
    std::fs::write(&path, wav(&spoken(SAID))).expect("write");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/openai/transcribe.py");
    let python = hark_testkit::openai_python();
    let (base, token) = (app.base.clone(), ann.token.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([&base, &token])
            .arg(&path)
            .output()
            .expect("python runs")
    })
    .await
    .expect("join");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let text = lines[0]["text"].as_str().expect("text");
    assert!(word_error_rate(SAID, text) <= 0.2, "{text:?}");
    let verbose = &lines[1];
    assert_eq!(verbose["language"], "english");
    assert_eq!(verbose["text"].as_str(), Some(text));
    let duration = verbose["duration"].as_f64().expect("duration");
    assert!((duration - SAID_SECONDS_AT_MOST / 2.0).abs() < SAID_SECONDS_AT_MOST / 2.0);
    let words = verbose["words"].as_array().expect("words");
    assert!(words.len() >= 12, "{words:?}");
    let mut last = 0.0;
    for word in words {
        let (start, end) = (
            word[1].as_f64().expect("start"),
            word[2].as_f64().expect("end"),
        );
        assert!(
            start >= last - 1e-6 && start <= end && end <= duration + 1e-6,
            "{word:?}"
        );
        last = end;
    }
    assert!(!verbose["segments"].as_array().expect("segments").is_empty());
    assert!(
        lines[2]["srt"]
            .as_str()
            .expect("srt")
            .starts_with("1\n00:00:")
    );
    assert_eq!(lines[3]["refused"], 400);
    // Transcribed, not stored.
    let listed: NoteList = fetch(&ann, "/api/v1/notes").await;
    assert!(listed.items.is_empty());
    // Without a token it is refused as every route is.
    let anonymous = app
        .http
        .post(app.url("/v1/audio/transcriptions"))
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

/// What a user asks of the OpenAI route that cannot be answered gets a clear 4xx or 503.
async fn the_openai_route_refuses_what_it_cannot_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let form = || {
        reqwest::multipart::Form::new()
            .text("model", "whisper-1")
            .part(
                "file",
                reqwest::multipart::Part::bytes(wav(&silence(1.0))).file_name("a.wav"),
            )
    };
    let post = |form: reqwest::multipart::Form| {
        ann.post("/v1/audio/transcriptions").multipart(form).send()
    };
    // No model installed here.
    assert_problem(post(form()).await.expect("post"), 503, "unavailable").await;
    let bad_format = form().text("response_format", "docx");
    assert_problem(post(bad_format).await.expect("post"), 400, "validation").await;
    let no_file = reqwest::multipart::Form::new().text("model", "whisper-1");
    assert_problem(post(no_file).await.expect("post"), 400, "validation").await;
    let not_audio = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"hello, not audio".to_vec()).file_name("a.txt"),
    );
    assert_problem(
        post(not_audio).await.expect("post"),
        415,
        "unsupported_audio",
    )
    .await;
    assert!(app.tmp_files().is_empty(), "{:?}", app.tmp_files());
    app.stop().await;
}

backend_tests!(
    speech_is_transcribed_searched_and_given_in_every_format,
    correction_fixes_the_text_and_cuts_the_pauses,
    correction_can_be_asked_for_later,
    a_configured_synthesiser_speaks_the_corrected_text,
    without_a_model_speech_is_skipped,
    the_openai_client_transcribes_through_hark,
    the_openai_route_refuses_what_it_cannot_answer,
);
