//! What processing made of a note: its jobs, its waveform, a new run, and the presentation
//! shape of seed 001.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use hark_api::{
    Job, JobList, NoteStatus, PresentationFile, ProblemCode, ProcessingStatus, Rendition,
    WaveformAnswer, WaveformFormat, WaveformQuery,
};

use crate::domain::JobRecord;
use crate::http::AppState;
use crate::http::extract::{AppPath, AppQuery, Auth, NoteReader};
use crate::http::openapi;
use crate::http::problem::ApiError;

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
        // Filled from the transcript once notes are transcribed.
        segments: Vec::new(),
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
