//! What processing made of a note: its jobs, its waveform and transcripts, a new run, asking
//! for correction, and the presentation shape of seed 001.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use hark_api::{
    Job, JobList, NoteStatus, PresentationFile, PresentationSegment, ProblemCode, ProcessingStatus,
    Rendition, Transcript, TranscriptFormat, TranscriptQuery, TranscriptVersion, WaveformAnswer,
    WaveformFormat, WaveformQuery,
};

use crate::domain::JobRecord;
use crate::http::AppState;
use crate::http::extract::{AppPath, AppQuery, Auth, NoteReader};
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::http::views;
use crate::notes::NoteError;

/// The note's processing jobs, in pipeline order.
#[utoipa::path(get, path = "/api/v1/notes/{id}/jobs", tag = "processing",
    params(("id" = String, Path, format = Uuid, description = "The note's id")),
    responses((status = 200, body = JobList, description = "The jobs"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = ["notes:read"])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    AppPath(id): AppPath<String>,
) -> Result<Json<JobList>, ApiError> {
    let jobs = state.notes.jobs(viewer, &id).await?;
    Ok(Json(job_list(&id, &jobs)))
}

/// Runs an owned note's pipeline again, every step from the start; answers its jobs, queued.
#[utoipa::path(post, path = "/api/v1/notes/{id}/reprocess", tag = "processing",
    params(("id" = String, Path, format = Uuid, description = "The note's id")),
    responses((status = 202, body = JobList, description = "Queued again"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn reprocess(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
) -> Result<(axum::http::StatusCode, Json<JobList>), ApiError> {
    let jobs = state.notes.reprocess(user.id, &id).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(job_list(&id, &jobs))))
}

/// The note's waveform: peaks (0..1) at a fixed rate and a 100-bar summary, or with
/// `?format=audiowaveform` the BBC audiowaveform JSON shape. 404 until processing made it.
#[utoipa::path(get, path = "/api/v1/notes/{id}/waveform", tag = "processing",
    params(("id" = String, Path, format = Uuid, description = "The note's id"), WaveformQuery),
    responses((status = 200, body = WaveformAnswer, description = "The waveform"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = ["notes:read"])))]
pub async fn get_waveform(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    AppPath(id): AppPath<String>,
    AppQuery(query): AppQuery<WaveformQuery>,
) -> Result<Json<WaveformAnswer>, ApiError> {
    let stored = state.notes.waveform(viewer, &id).await?;
    Ok(Json(match query.format.unwrap_or_default() {
        WaveformFormat::Json => WaveformAnswer::Peaks(stored.waveform),
        WaveformFormat::Audiowaveform => WaveformAnswer::Audiowaveform(stored.audiowaveform),
    }))
}

/// Asks for an owned note's grammar-corrected transcript and corrected audio (as
/// `correct=true` at upload does); answers its jobs, queued. 409 when its audio failed.
#[utoipa::path(post, path = "/api/v1/notes/{id}/correct", tag = "processing",
    params(("id" = String, Path, format = Uuid, description = "The note's id")),
    responses((status = 202, body = JobList, description = "Queued"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 409, response = openapi::Conflict), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn ask_correction(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
) -> Result<(axum::http::StatusCode, Json<JobList>), ApiError> {
    let jobs = state.notes.ask_correction(user.id, &id).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(job_list(&id, &jobs))))
}

/// The note's transcript (`?version=corrected` for the grammar-corrected one, with its edits),
/// as JSON or `?format=srt|vtt|txt`. 404 until made, with the note's status in the detail.
#[utoipa::path(get, path = "/api/v1/notes/{id}/transcript", tag = "processing",
    params(("id" = String, Path, format = Uuid, description = "The note's id"), TranscriptQuery),
    responses((status = 200, description = "The transcript",
                  content((Transcript = "application/json"), (String = "application/x-subrip"),
                          (String = "text/vtt"), (String = "text/plain"))),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = ["notes:read"])))]
pub async fn get_transcript(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    AppPath(id): AppPath<String>,
    AppQuery(query): AppQuery<TranscriptQuery>,
) -> Result<Response, ApiError> {
    let version = query.version.unwrap_or_default();
    let (note, transcript) = state.notes.transcript(viewer, &id, version).await?;
    let text =
        |mime: &'static str, body: String| ([(header::CONTENT_TYPE, mime)], body).into_response();
    Ok(match query.format.unwrap_or_default() {
        TranscriptFormat::Json => Json(views::transcript(&note, transcript)).into_response(),
        TranscriptFormat::Srt => text("application/x-subrip; charset=utf-8", transcript.srt()),
        TranscriptFormat::Vtt => text("text/vtt; charset=utf-8", transcript.vtt()),
        TranscriptFormat::Txt => text("text/plain; charset=utf-8", transcript.txt()),
    })
}

/// Seed 001's presentation of a processed file: camelCase, times in milliseconds, paths as
/// URLs. 404 for a file the caller cannot see; 400 `not_finished` until it is processed.
#[utoipa::path(get, path = "/api/presentation/files/{fileId}", tag = "compatibility",
    params(("fileId" = String, Path, format = Uuid, description = "The note's id")),
    responses((status = 200, body = PresentationFile, description = "The processed file"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = ["notes:read"])))]
pub async fn presentation_file(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    AppPath(file_id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Json<PresentationFile>, ApiError> {
    let note = state.notes.visible(viewer, &file_id).await?;
    let status = match note.status {
        NoteStatus::Pending => ProcessingStatus::Pending,
        NoteStatus::Processing => ProcessingStatus::Processing,
        NoteStatus::Ready => ProcessingStatus::Finished,
        NoteStatus::Failed => ProcessingStatus::Failed,
    };
    if status != ProcessingStatus::Finished {
        let shown = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(ApiError::new(
            ProblemCode::NotFinished,
            format!("the file is not processed yet (processingStatus {shown})"),
        ));
    }
    let audio = format!(
        "{}/api/v1/notes/{}/audio",
        state.public_base(&headers),
        note.id
    );
    let has_mp3 = note.renditions.iter().any(|r| r.name == Rendition::Mp3);
    let transcript = match state
        .notes
        .transcript(viewer, &file_id, TranscriptVersion::Original)
        .await
    {
        Ok((_, transcript)) => Some(transcript),
        Err(NoteError::NotYet { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(Json(PresentationFile {
        file_id: note.id.to_string(),
        processing_status: status,
        file_name: note.name.clone(),
        mp3_path: if has_mp3 {
            format!("{audio}?rendition=mp3")
        } else {
            audio.clone()
        },
        original_filepath: audio,
        series_title: note.series.clone(),
        segments: transcript
            .map(|t| t.segments)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(n, segment)| PresentationSegment {
                file_segment_id: n as u64 + 1,
                file_id: note.id.to_string(),
                segment_text: segment.text.trim().to_owned(),
                start_time: (segment.start * 1000.0).round() as u64,
                end_time: (segment.end * 1000.0).round() as u64,
            })
            .collect(),
    }))
}

fn job_list(note_id: &str, jobs: &[JobRecord]) -> JobList {
    JobList {
        note_id: note_id.to_owned(),
        items: jobs
            .iter()
            .map(|job| Job {
                step: job.step,
                status: job.status,
                attempts: job.attempts,
                last_error: job.last_error.clone(),
                updated_at: job.updated_at.to_rfc3339(),
            })
            .collect(),
    }
}
