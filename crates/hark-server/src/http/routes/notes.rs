//! The native notes API. Handlers parse and answer; the use cases live in `crate::notes`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use hark_api::{LinkRequest, ListNotesQuery, NoteList, SignedLink};

use super::upload::{UploadQuery, receive_upload};
use crate::domain::User;
use crate::http::AppState;
use crate::http::extract::{AppPath, AppQuery, Auth, NoteReader, OptionalJson, Uploader};
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::http::views;

/// Uploads audio: a raw body (`audio/*`, `application/octet-stream`) or a multipart form with
/// a `file` part, optionally `Content-Encoding: gzip`. The bytes are validated by decoding and
/// probed before the answer. `Content-Digest` is verified; `Idempotency-Key` replays.
#[utoipa::path(post, path = "/api/v1/notes", tag = "notes", params(UploadQuery, openapi::UploadHeaders),
    request_body(description = "The audio: raw bytes, or a form with a `file` part",
        content((openapi::AudioBytes = "audio/*"), (openapi::AudioBytes = "application/octet-stream"),
                (openapi::UploadForm = "multipart/form-data"))),
    responses(openapi::UploadResponses),
    security(("bearer" = [])))]
pub async fn upload_note(
    State(state): State<AppState>,
    Uploader(owner): Uploader,
    AppQuery(query): AppQuery<UploadQuery>,
    request: Request,
) -> Result<axum::response::Response, ApiError> {
    receive_upload(&state, owner, query, request).await
}

/// Lists the notes the caller owns or received, filtered, sorted and paginated by cursor.
#[utoipa::path(get, path = "/api/v1/notes", tag = "notes", params(ListNotesQuery),
    responses((status = 200, body = NoteList, description = "One page"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_notes(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppQuery(query): AppQuery<ListNotesQuery>,
) -> Result<Json<NoteList>, ApiError> {
    Ok(Json(list_for(&state, &user, &query).await?))
}

/// A note with its metadata, status and links.
#[utoipa::path(get, path = "/api/v1/notes/{id}", tag = "notes",
    params(("id" = String, Path, format = Uuid, description = "The note's id")),
    responses((status = 200, body = hark_api::Note, description = "The note"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = ["notes:read"])))]
pub async fn get_note(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    AppPath(id): AppPath<String>,
) -> Result<Json<hark_api::Note>, ApiError> {
    let note = state.notes.visible(viewer, &id).await?;
    Ok(Json(views::note(&note)))
}

/// Deletes an owned note; its bytes go once nothing else references them.
#[utoipa::path(delete, path = "/api/v1/notes/{id}", tag = "notes",
    params(("id" = String, Path, format = Uuid, description = "The note's id")),
    responses((status = 204, description = "Deleted"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden),
              (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn delete_note(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state.notes.delete(user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signed URL that serves the note's audio with no other credential until it expires.
#[utoipa::path(post, path = "/api/v1/notes/{id}/link", tag = "notes",
    params(("id" = String, Path, format = Uuid, description = "The note's id")),
    request_body(content = Option<LinkRequest>, content_type = "application/json",
                 description = "Optional: an empty body asks for the defaults"),
    responses((status = 200, body = SignedLink, description = "The link"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 413, response = openapi::PayloadTooLarge), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = ["notes:read"])))]
pub async fn create_link(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
    OptionalJson(request): OptionalJson<LinkRequest>,
) -> Result<Json<SignedLink>, ApiError> {
    let note = state.notes.visible(viewer, &id).await?;
    let link = state.notes.link(&note, &request)?;
    let url = format!(
        "{}/api/v1/notes/{}/audio?{}",
        state.public_base(&headers),
        note.id,
        link.query
    );
    Ok(Json(SignedLink {
        url,
        expires_at: link.expires_at.to_rfc3339(),
    }))
}

/// One page of the user's notes, on the wire.
pub async fn list_for(
    state: &AppState,
    user: &User,
    query: &ListNotesQuery,
) -> Result<NoteList, ApiError> {
    let page = state.notes.list(user.id, query).await?;
    let mut items: Vec<hark_api::Note> = page.notes.iter().map(views::note).collect();
    if let Some(matches) = page.matches {
        for (item, matches) in items.iter_mut().zip(matches) {
            item.matches = Some(matches);
        }
    }
    Ok(NoteList {
        items,
        next_cursor: page.next_cursor,
    })
}
