//! `POST /v1/audio/transcriptions`, shaped as OpenAI's API answers it, so its client libraries
//! and the tools built on them work against Hark. The audio is transcribed with the server's
//! model and not stored.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hark_api::{ProblemCode, TranscriptVersion};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::StoredTranscript;
use crate::http::AppState;
use crate::http::extract::Auth;
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::ingest::{Spooled, probed_audio, spool};
use crate::pipeline::speech::CancelOnDrop;

/// The form OpenAI's clients send. (Form fields are never null: the optional ones are
/// `required = false` rather than `Option`, which utoipa makes nullable.)
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TranscriptionForm {
    /// The audio, in any format Hark reads.
    #[schema(format = Binary)]
    file: String,
    /// Accepted and ignored: the server's model answers.
    model: String,
    /// ISO 639-1. An English-only model (such as tiny.en) takes only `en`.
    #[schema(required = false, pattern = "^en$", example = "en")]
    language: String,
    /// Text the model takes as what came before (names, spellings).
    #[schema(required = false, max_length = 2000)]
    prompt: String,
    /// Default `json`.
    #[schema(required = false)]
    response_format: ResponseFormat,
    /// Which timestamps `verbose_json` carries (default `segment`).
    #[schema(required = false, rename = "timestamp_granularities[]")]
    timestamp_granularities: Vec<Granularity>,
    /// Accepted and ignored.
    #[schema(required = false)]
    temperature: f64,
}

/// The answer's shape.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

/// Timestamps of `verbose_json`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum Granularity {
    Segment,
    Word,
}

/// A prompt longer than this is refused (the model reads only its last 223 tokens anyway).
const MAX_PROMPT_CHARS: usize = 2000;

/// The answer as JSON: the text alone (`json`) or with its timings (`verbose_json`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TranscriptionAnswer {
    Plain(Transcription),
    Verbose(VerboseTranscription),
}

/// `response_format=json`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transcription {
    text: String,
}

/// `response_format=verbose_json`.
#[derive(Serialize, ToSchema)]
pub struct VerboseTranscription {
    task: &'static str,
    /// The language's English name, as OpenAI gives it.
    language: String,
    duration: f64,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<VerboseSegment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<VerboseWord>>,
}

#[derive(Serialize, ToSchema)]
pub struct VerboseSegment {
    id: u32,
    seek: u32,
    start: f64,
    end: f64,
    text: String,
    tokens: Vec<u32>,
    temperature: f64,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
}

#[derive(Serialize, ToSchema)]
pub struct VerboseWord {
    word: String,
    start: f64,
    end: f64,
}

/// What the form asked for.
#[derive(Default)]
struct Asked {
    language: Option<String>,
    prompt: Option<String>,
    format: Option<String>,
    segments: bool,
    words: bool,
}

/// Transcribes audio as OpenAI's `POST /v1/audio/transcriptions` does (multipart `file`,
/// `model`, `language`, `prompt`, `response_format`, `timestamp_granularities[]`). 503 when no
/// speech model is installed.
#[utoipa::path(post, path = "/v1/audio/transcriptions", tag = "speech",
    request_body(content = TranscriptionForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The transcription",
                  content((TranscriptionAnswer = "application/json"), (String = "text/plain"),
                          (String = "application/x-subrip"), (String = "text/vtt"))),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 413, response = openapi::PayloadTooLarge),
              (status = 415, response = openapi::UnsupportedMediaType),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_transcription(
    State(state): State<AppState>,
    Auth(_user): Auth,
    request: Request,
) -> Result<Response, ApiError> {
    let mut form = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::validation(e.body_text()))?;
    let mut asked = Asked::default();
    let mut audio: Option<Spooled> = None;
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::validation(format!("the form is malformed: {}", e.body_text()))
    };
    while let Some(mut field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let ingest = state.notes.ingest();
            audio = Some(
                spool(
                    &ingest.tmp_dir,
                    Box::pin(&mut field),
                    false,
                    ingest.max_bytes,
                )
                .await?,
            );
            continue;
        }
        let value = field.text().await.map_err(malformed)?;
        match name.as_str() {
            "language" => asked.language = Some(value).filter(|v| !v.is_empty()),
            "prompt" => {
                if value.chars().count() > MAX_PROMPT_CHARS {
                    return Err(ApiError::validation(format!(
                        "prompt is longer than {MAX_PROMPT_CHARS} characters"
                    )));
                }
                asked.prompt = Some(value).filter(|v| !v.is_empty());
            }
            "response_format" => asked.format = Some(value),
            "timestamp_granularities[]" | "timestamp_granularities" => match value.as_str() {
                "segment" => asked.segments = true,
                "word" => asked.words = true,
                other => {
                    return Err(ApiError::validation(format!(
                        "timestamp_granularities[] must be segment or word, not {other:?}"
                    )));
                }
            },
            _ => {}
        }
    }
    let mut audio = audio.ok_or_else(|| ApiError::validation("the form has no file part"))?;
    let format = asked.format.as_deref().unwrap_or("json");
    if !["json", "text", "srt", "vtt", "verbose_json"].contains(&format) {
        return Err(ApiError::validation(format!(
            "response_format must be json, text, srt, vtt or verbose_json, not {format:?}"
        )));
    }
    let info = probed_audio(audio.take_audio())?;
    let speech = state.speech.clone();
    let model = speech.model().cloned().ok_or_else(|| {
        ApiError::new(
            ProblemCode::Unavailable,
            "no speech model is installed on this server (see hark model import)",
        )
    })?;
    if let Some(language) = &asked.language
        && !model.info().multilingual
        && language != "en"
    {
        return Err(ApiError::validation(format!(
            "this server's model ({}) transcribes English only, not {language:?}",
            model.name()
        )));
    }
    // Dropped with the request (the client went away): the transcription stops.
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let heard = speech
        .transcribe_with(
            &model,
            &audio.path,
            info.duration_seconds,
            asked.language.clone(),
            asked.prompt.clone(),
            cancel.0.clone(),
        )
        .await
        .map_err(|e| ApiError::new(ProblemCode::UnsupportedAudio, e.to_string()))?;
    Ok(answer(format, &asked, heard))
}

fn answer(format: &str, asked: &Asked, heard: StoredTranscript) -> Response {
    let text =
        |mime: &'static str, body: String| ([(header::CONTENT_TYPE, mime)], body).into_response();
    match format {
        "text" => text("text/plain; charset=utf-8", format!("{}\n", heard.text)),
        "srt" => text("application/x-subrip; charset=utf-8", heard.srt()),
        "vtt" => text("text/vtt; charset=utf-8", heard.vtt()),
        "verbose_json" => {
            // Segments come unless only words were asked for, as OpenAI does.
            let segments = asked.segments || !asked.words;
            axum::Json(VerboseTranscription {
                task: "transcribe",
                language: language_name(&heard.language).to_owned(),
                duration: heard.duration_seconds,
                segments: segments.then(|| verbose_segments(&heard)),
                words: asked.words.then(|| {
                    heard
                        .segments
                        .iter()
                        .flat_map(|s| &s.words)
                        .map(|w| VerboseWord {
                            word: w.word.clone(),
                            start: w.start,
                            end: w.end,
                        })
                        .collect()
                }),
                text: heard.text,
            })
            .into_response()
        }
        _ => axum::Json(Transcription { text: heard.text }).into_response(),
    }
}

/// OpenAI's segment shape; the decoder's internals it exposes are given from the confidence.
fn verbose_segments(heard: &StoredTranscript) -> Vec<VerboseSegment> {
    debug_assert_eq!(heard.version, TranscriptVersion::Original);
    heard
        .segments
        .iter()
        .map(|s| VerboseSegment {
            id: s.id,
            // The 10 ms frame its 30 s window started at.
            seek: ((s.start / 30.0).floor() * 3000.0) as u32,
            start: s.start,
            end: s.end,
            text: format!(" {}", s.text),
            tokens: Vec::new(),
            temperature: 0.0,
            avg_logprob: s.confidence.max(1e-6).ln(),
            compression_ratio: 1.0,
            no_speech_prob: 0.0,
        })
        .collect()
}

/// The English name OpenAI gives a language.
fn language_name(code: &str) -> &str {
    const NAMES: [(&str, &str); 12] = [
        ("en", "english"),
        ("de", "german"),
        ("es", "spanish"),
        ("fr", "french"),
        ("it", "italian"),
        ("ja", "japanese"),
        ("nl", "dutch"),
        ("pl", "polish"),
        ("pt", "portuguese"),
        ("ru", "russian"),
        ("sv", "swedish"),
        ("zh", "chinese"),
    ];
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, name)| name)
}
