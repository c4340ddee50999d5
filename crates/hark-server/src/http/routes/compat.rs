//! The seed-compatible routes: `POST /post`, `GET /list`, `GET /download`, `GET /info`.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::Response;
use hark_api::{ListNotesQuery, NoteList};
use serde::Deserialize;
use utoipa::IntoParams;

use super::audio::{Disposition, serve_note};
use super::notes::list_for;
use super::upload::{UploadQuery, receive_upload};
use crate::http::AppState;
use crate::http::extract::{AppQuery, Auth, Uploader};
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::http::views;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NameQuery {
    /// The note's file name; the newest visible note of that name is meant.
    #[param(min_length = 1, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: String,
}

/// Uploads audio, exactly as `POST /api/v1/notes`.
#[utoipa::path(post, path = "/post", tag = "compat", params(UploadQuery, openapi::UploadHeaders),
    request_body(description = "The audio: raw bytes, or a form with a `file` part",
        content((openapi::AudioBytes = "audio/*"), (openapi::AudioBytes = "application/octet-stream"),
                (openapi::UploadForm = "multipart/form-data"))),
    responses(openapi::UploadResponses),
    security(("bearer" = [])))]
pub async fn post_audio(
    State(state): State<AppState>,
    Uploader(owner): Uploader,
    AppQuery(query): AppQuery<UploadQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    receive_upload(&state, owner, query, request).await
}

/// Seed 003's upload: as `POST /post`, with correction asked for. Once the corrected audio is
/// made, the owner's events carry `note.ready` with its URL.
#[utoipa::path(post, path = "/audio", tag = "compat", params(UploadQuery, openapi::UploadHeaders),
    request_body(description = "The audio: raw bytes, or a form with a `file` part",
        content((openapi::AudioBytes = "audio/*"), (openapi::AudioBytes = "application/octet-stream"),
                (openapi::UploadForm = "multipart/form-data"))),
    responses(openapi::UploadResponses),
    security(("bearer" = [])))]
pub async fn post_audio_corrected(
    State(state): State<AppState>,
    Uploader(owner): Uploader,
    AppQuery(mut query): AppQuery<UploadQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    query.correct = Some(true);
    receive_upload(&state, owner, query, request).await
}

/// Lists notes: `?maxduration=` (seconds) and every native filter.
#[utoipa::path(get, path = "/list", tag = "compat", params(ListNotesQuery),
    responses((status = 200, body = NoteList, description = "One page"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_audio(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppQuery(query): AppQuery<ListNotesQuery>,
) -> Result<Json<NoteList>, ApiError> {
    Ok(Json(list_for(&state, &user, &query).await?))
}

/// Downloads the newest note of that name, as an attachment, with the same `Range` and
/// conditional handling as the audio route.
#[utoipa::path(method(get, head), path = "/download", tag = "compat", params(NameQuery, openapi::AudioHeaders),
    responses(openapi::AudioResponses),
    security(("bearer" = [])))]
pub async fn download_audio(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppQuery(query): AppQuery<NameQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let note = state.notes.newest_named(user.id, &query.name).await?;
    let audio = crate::notes::audio_of(&note, None)?;
    serve_note(&state, &audio, request.headers(), Disposition::Attachment).await
}

/// Metadata of the newest note of that name.
#[utoipa::path(get, path = "/info", tag = "compat", params(NameQuery),
    responses((status = 200, body = hark_api::Note, description = "The note"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn audio_info(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppQuery(query): AppQuery<NameQuery>,
) -> Result<Json<hark_api::Note>, ApiError> {
    let note = state.notes.newest_named(user.id, &query.name).await?;
    Ok(Json(views::note(&note)))
}
