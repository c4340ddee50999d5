//! The native notes API. Handlers parse and answer; the use cases live in `crate::notes`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use hark_api::{LinkRequest, ListNotesQuery, NoteList, SignedLink};

use super::upload::{UploadQuery, receive_upload};
use crate::domain::User;
use crate::http::AppState;
use crate::http::extract::{AppQuery, Auth, NoteReader, Uploader};
use crate::http::problem::ApiError;
use crate::http::views;

/// Uploads audio: a raw body (`audio/*`, `application/octet-stream`) or a multipart form with
/// a `file` part, optionally `Content-Encoding: gzip`. The bytes are validated by decoding and
/// probed before the answer. `Content-Digest` is verified; `Idempotency-Key` replays.
#[utoipa::path(post, path = "/api/v1/notes", tag = "notes", params(UploadQuery),
    request_body(content = Vec<u8>, description = "Audio bytes, or multipart/form-data with a file part", content_type = "application/octet-stream"),
    responses((status = 201, body = hark_api::Note, description = "Stored"),
              (status = 400, body = hark_api::Problem), (status = 401, body = hark_api::Problem),
              (status = 413, body = hark_api::Problem), (status = 415, body = hark_api::Problem)),
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
    responses((status = 200, body = NoteList), (status = 400, body = hark_api::Problem), (status = 401, body = hark_api::Problem)),
    security(("bearer" = [])))]
pub async fn list_notes(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppQuery(query): AppQuery<ListNotesQuery>,
) -> Result<Json<NoteList>, ApiError> {
    Ok(Json(list_for(&state, &user, &query).await?))
}

/// A note with its metadata, status and links.
#[utoipa::path(get, path = "/api/v1/notes/{id}", tag = "notes", params(("id" = String, Path)),
    responses((status = 200, body = hark_api::Note), (status = 404, body = hark_api::Problem)),
    security(("bearer" = ["notes:read"])))]
pub async fn get_note(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    Path(id): Path<String>,
) -> Result<Json<hark_api::Note>, ApiError> {
    let note = state.notes.visible(viewer, &id).await?;
    Ok(Json(views::note(&note)))
}

/// Deletes an owned note; its bytes go once nothing else references them.
#[utoipa::path(delete, path = "/api/v1/notes/{id}", tag = "notes", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = hark_api::Problem)),
    security(("bearer" = [])))]
pub async fn delete_note(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.notes.delete(user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signed URL that serves the note's audio with no other credential until it expires.
#[utoipa::path(post, path = "/api/v1/notes/{id}/link", tag = "notes", params(("id" = String, Path)),
    request_body(content = LinkRequest, content_type = "application/json"),
    responses((status = 200, body = SignedLink), (status = 400, body = hark_api::Problem), (status = 404, body = hark_api::Problem)),
    security(("bearer" = ["notes:read"])))]
pub async fn create_link(
    State(state): State<AppState>,
    NoteReader(viewer): NoteReader,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SignedLink>, ApiError> {
    let note = state.notes.visible(viewer, &id).await?;
    // The body is optional: an empty one asks for the defaults.
    let request: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation(format!("invalid JSON body: {e}")))?
    };
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
    Ok(NoteList {
        items: page.notes.iter().map(views::note).collect(),
        next_cursor: page.next_cursor,
    })
}
