//! The native notes API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hark_api::{LinkRequest, ListNotesQuery, NoteLinks, NoteList, SignedLink};
use serde::{Deserialize, Serialize};

use super::upload::{UploadQuery, receive_upload};
use crate::db::{NoteFilter, NoteSort, SortKey};
use crate::domain::{Email, Note, NoteId, Timestamp, User, UserId};
use crate::http::AppState;
use crate::http::extract::{AppQuery, Auth};
use crate::http::problem::ApiError;

const MAX_LINK_SECONDS: u64 = 7 * 24 * 3600;

pub fn note_view(note: &Note) -> hark_api::Note {
    let this = format!("/api/v1/notes/{}", note.id);
    hark_api::Note {
        id: note.id.to_string(),
        owner_id: note.owner_id.to_string(),
        name: note.name.clone(),
        title: note.title.clone(),
        series: note.series.clone(),
        format: note.format.clone(),
        codec: note.codec.clone(),
        mime: note.mime.clone(),
        duration_seconds: note.duration_seconds,
        sample_rate: note.sample_rate,
        channels: note.channels,
        bitrate: note.bitrate,
        size_bytes: note.size_bytes,
        sha256: note.sha256.clone(),
        status: note.status,
        failure_reason: note.failure_reason.clone(),
        tags: note.tags.clone(),
        created_at: note.created_at.to_rfc3339(),
        renditions: Vec::new(),
        links: NoteLinks {
            audio: format!("{this}/audio"),
            this,
        },
    }
}

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
    Auth(user): Auth,
    AppQuery(query): AppQuery<UploadQuery>,
    request: Request,
) -> Result<axum::response::Response, ApiError> {
    receive_upload(&state, &user, query, request).await
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
    Ok(Json(list_for(&state, &user, query).await?))
}

/// A note with its metadata, status and links.
#[utoipa::path(get, path = "/api/v1/notes/{id}", tag = "notes", params(("id" = String, Path)),
    responses((status = 200, body = hark_api::Note), (status = 404, body = hark_api::Problem)),
    security(("bearer" = [])))]
pub async fn get_note(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<Json<hark_api::Note>, ApiError> {
    let note = visible_note(&state, &user, &id).await?;
    Ok(Json(note_view(&note)))
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
    let id = NoteId::parse(&id).ok_or_else(|| ApiError::not_found("note"))?;
    if !state.repos.notes.delete_note(id, user.id).await? {
        return Err(ApiError::not_found("note"));
    }
    state.wake_collector();
    Ok(StatusCode::NO_CONTENT)
}

/// A signed URL that serves the note's audio with no other credential until it expires.
#[utoipa::path(post, path = "/api/v1/notes/{id}/link", tag = "notes", params(("id" = String, Path)),
    request_body(content = LinkRequest, content_type = "application/json"),
    responses((status = 200, body = SignedLink), (status = 400, body = hark_api::Problem), (status = 404, body = hark_api::Problem)),
    security(("bearer" = [])))]
pub async fn create_link(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SignedLink>, ApiError> {
    let note = visible_note(&state, &user, &id).await?;
    let request: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation(format!("invalid JSON body: {e}")))?
    };
    let expires_in = request.expires_in.unwrap_or(3600);
    if !(1..=MAX_LINK_SECONDS).contains(&expires_in) {
        return Err(ApiError::validation(format!(
            "expires_in must be 1 to {MAX_LINK_SECONDS} seconds"
        )));
    }
    let rendition = request.rendition.as_deref();
    if let Some(r) = rendition
        && !super::audio::RENDITIONS.contains(&r)
    {
        return Err(ApiError::validation(format!(
            "rendition must be one of {}",
            super::audio::RENDITIONS.join(", ")
        )));
    }
    let expires_at = Timestamp(
        Timestamp::now()
            .unix_seconds()
            .saturating_add(expires_in as i64)
            * 1_000_000,
    );
    let query = state.links.sign(note.id, rendition, expires_at);
    let url = format!(
        "{}/api/v1/notes/{}/audio?{query}",
        state.public_base(&headers),
        note.id
    );
    Ok(Json(SignedLink {
        url,
        expires_at: expires_at.to_rfc3339(),
    }))
}

/// The note if the user may see it; a 404 otherwise, the same as for a missing note.
pub async fn visible_note(state: &AppState, user: &User, id: &str) -> Result<Note, ApiError> {
    let id = NoteId::parse(id).ok_or_else(|| ApiError::not_found("note"))?;
    state
        .repos
        .notes
        .note_for_viewer(id, user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("note"))
}

/// Where the next page starts: the sort it belongs to and the last item's key.
#[derive(Serialize, Deserialize)]
struct Cursor {
    s: String,
    k: serde_json::Value,
    i: String,
}

fn encode_cursor(sort: NoteSort, note: &Note) -> String {
    let k = match sort {
        NoteSort::CreatedAsc | NoteSort::CreatedDesc => serde_json::json!(note.created_at.micros()),
        // The float's bits, not its decimal form: a decimal round trip may land one ULP off and
        // then skip or repeat the notes of that duration.
        NoteSort::DurationAsc | NoteSort::DurationDesc => {
            serde_json::json!(note.duration_seconds.to_bits())
        }
        NoteSort::NameAsc | NoteSort::NameDesc => serde_json::json!(note.name),
    };
    let cursor = Cursor {
        s: sort.as_str().into(),
        k,
        i: note.id.to_string(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
}

fn decode_cursor(raw: &str, sort: NoteSort) -> Result<(SortKey, NoteId), ApiError> {
    let invalid =
        || ApiError::validation("cursor is invalid; pass next_cursor from the previous page");
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if cursor.s != sort.as_str() {
        return Err(ApiError::validation("cursor belongs to another sort order"));
    }
    let id = NoteId::parse(&cursor.i).ok_or_else(invalid)?;
    let key = match sort {
        NoteSort::CreatedAsc | NoteSort::CreatedDesc => {
            SortKey::Created(cursor.k.as_i64().ok_or_else(invalid)?)
        }
        NoteSort::DurationAsc | NoteSort::DurationDesc => {
            let bits = cursor.k.as_u64().ok_or_else(invalid)?;
            let duration = f64::from_bits(bits);
            if !duration.is_finite() {
                return Err(invalid());
            }
            SortKey::Duration(duration)
        }
        NoteSort::NameAsc | NoteSort::NameDesc => {
            let name = cursor.k.as_str().ok_or_else(invalid)?;
            SortKey::Name(plain_text(name, "cursor")?.to_owned())
        }
    };
    Ok((key, id))
}

/// Text from a client that goes into a query: control characters (NUL above all, which
/// PostgreSQL refuses in text) are a 400, not a database error.
pub fn plain_text<'a>(value: &'a str, field: &str) -> Result<&'a str, ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value)
}

fn optional_text(value: Option<String>, field: &str) -> Result<Option<String>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => plain_text(&v, field).map(|v| Some(v.to_owned())),
        None => Ok(None),
    }
}

fn seconds(value: Option<f64>, field: &str) -> Result<Option<f64>, ApiError> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(ApiError::validation(format!(
            "{field} must be a non-negative number of seconds"
        ))),
        other => Ok(other),
    }
}

fn instant(value: Option<&str>, field: &str) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            Timestamp::parse_rfc3339(v)
                .ok_or_else(|| ApiError::validation(format!("{field} must be an RFC 3339 instant")))
        })
        .transpose()
}

/// Validates a list query and runs it.
pub async fn list_for(
    state: &AppState,
    user: &User,
    query: ListNotesQuery,
) -> Result<NoteList, ApiError> {
    let sort = match query.sort.as_deref() {
        None => NoteSort::CreatedDesc,
        Some(s) => NoteSort::parse(s).ok_or_else(|| {
            ApiError::validation(
                "sort must be created_at, -created_at, duration, -duration, name or -name",
            )
        })?,
    };
    if query.q.is_some() {
        return Err(ApiError::validation(
            "q searches transcripts, and this server makes none yet",
        ));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit must be 1 to 500"));
    }
    if let Some(status) = &query.status
        && hark_api::NoteStatus::parse(status).is_none()
    {
        return Err(ApiError::validation(
            "status must be pending, processing, ready or failed",
        ));
    }
    if let Some(format) = &query.format
        && hark_audio::Format::parse(format).is_none()
    {
        let names: Vec<&str> = hark_audio::Format::ALL.iter().map(|f| f.name()).collect();
        return Err(ApiError::validation(format!(
            "format must be one of {}",
            names.join(", ")
        )));
    }
    let sender = match query.sender.as_deref() {
        None => None,
        Some(s) => Some(resolve_user(state, s).await?),
    };
    let filter = NoteFilter {
        viewer: user.id,
        max_duration: seconds(query.max_duration, "max_duration")?,
        min_duration: seconds(query.min_duration, "min_duration")?,
        name_contains: optional_text(query.name, "name")?,
        sender,
        channel: optional_text(query.channel, "channel")?,
        status: query.status,
        format: query.format,
        created_after: instant(query.created_after.as_deref(), "created_after")?,
        created_before: instant(query.created_before.as_deref(), "created_before")?,
        sort,
        after: query
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, sort))
            .transpose()?,
        limit: limit + 1,
    };
    let mut notes = state.repos.notes.list_notes(&filter).await?;
    let next_cursor = if notes.len() > limit as usize {
        notes.truncate(limit as usize);
        notes.last().map(|last| encode_cursor(sort, last))
    } else {
        None
    };
    Ok(NoteList {
        items: notes.iter().map(note_view).collect(),
        next_cursor,
    })
}

/// A user given by id or email. An unknown one matches nothing, so it is not an error: the
/// list is simply empty (and reveals nothing about who exists).
async fn resolve_user(state: &AppState, given: &str) -> Result<UserId, ApiError> {
    if let Some(id) = UserId::parse(given) {
        return Ok(id);
    }
    let found = match Email::parse(given) {
        Ok(email) => state.repos.users.user_by_email(email.as_str()).await?,
        Err(_) => None,
    };
    Ok(found.map_or_else(UserId::generate, |u| u.id))
}
