//! Delivery routes: channels and their members, sending a note, the inbox (with its
//! long-poll) and listened marks.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hark_api::{
    ChannelList, InboxItem, InboxPage, InboxQuery, NewChannel, SendRequest, SendResult, Sender,
};

use crate::delivery::{InboxRequest, Targets};
use crate::domain::{Channel, InboxEntry};
use crate::http::AppState;
use crate::http::extract::{AppJson, AppPath, AppQuery, Auth};
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::http::views;

/// Creates a channel (a delivery job); the caller manages its members.
#[utoipa::path(post, path = "/api/v1/channels", tag = "delivery",
    request_body = NewChannel,
    responses((status = 201, body = hark_api::Channel, description = "Created"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 409, response = openapi::Conflict),
              (status = 413, response = openapi::PayloadTooLarge), (status = 415, response = openapi::UnsupportedMediaType),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_channel(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppJson(request): AppJson<NewChannel>,
) -> Result<(StatusCode, Json<hark_api::Channel>), ApiError> {
    let channel = state
        .delivery
        .create_channel(user.id, &request.name)
        .await?;
    Ok((StatusCode::CREATED, Json(channel_view(&channel))))
}

/// The channels the caller created or belongs to, by name.
#[utoipa::path(get, path = "/api/v1/channels", tag = "delivery",
    responses((status = 200, body = ChannelList, description = "The channels"),
              (status = 401, response = openapi::Unauthorized), (status = 403, response = openapi::Forbidden),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_channels(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<ChannelList>, ApiError> {
    let channels = state.delivery.channels(user.id).await?;
    Ok(Json(ChannelList {
        items: channels.iter().map(channel_view).collect(),
    }))
}

/// Adds a member (an email or a user id) to a channel the caller created.
#[utoipa::path(put, path = "/api/v1/channels/{name}/members/{user}", tag = "delivery",
    params(("name" = String, Path, description = "The channel"),
           ("user" = String, Path, description = "The member's email or user id")),
    responses((status = 200, body = hark_api::Channel, description = "The channel with the member"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath((name, member)): AppPath<(String, String)>,
) -> Result<Json<hark_api::Channel>, ApiError> {
    let (channel, _) = state.delivery.add_member(user.id, &name, &member).await?;
    Ok(Json(channel_view(&channel)))
}

/// Removes a member from a channel the caller created.
#[utoipa::path(delete, path = "/api/v1/channels/{name}/members/{user}", tag = "delivery",
    params(("name" = String, Path, description = "The channel"),
           ("user" = String, Path, description = "The member's email or user id")),
    responses((status = 204, description = "Removed"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath((name, member)): AppPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .delivery
        .remove_member(user.id, &name, &member)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delivers an owned note to users and/or a channel; every recipient must exist, or nothing
/// is sent (400 naming the unknown ones).
#[utoipa::path(post, path = "/api/v1/notes/{id}/send", tag = "delivery",
    params(("id" = String, Path, format = Uuid, description = "The note's id")),
    request_body = SendRequest,
    responses((status = 200, body = SendResult, description = "Delivered"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 413, response = openapi::PayloadTooLarge), (status = 415, response = openapi::UnsupportedMediaType),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn send_note(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
    AppJson(request): AppJson<SendRequest>,
) -> Result<Json<SendResult>, ApiError> {
    let targets = Targets {
        to: request.to,
        channel: request.channel,
    };
    let (note, recipients) = state.delivery.send(user.id, &id, &targets).await?;
    Ok(Json(SendResult {
        note_id: note.id.to_string(),
        recipients: recipients.users.iter().map(ToString::to_string).collect(),
        channel: recipients.channel,
    }))
}

/// The caller's received notes, newest first. `since` (a cursor from an earlier answer) keeps
/// only newer ones; `wait` holds the request until one arrives or the wait ends.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "delivery",
    params(InboxQuery),
    responses((status = 200, body = InboxPage, description = "The received notes"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn inbox(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppQuery(query): AppQuery<InboxQuery>,
) -> Result<Response, ApiError> {
    let since = query
        .since
        .as_deref()
        .map(|cursor| {
            cursor
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    ApiError::validation("since must be a cursor from an earlier answer")
                })
        })
        .transpose()?;
    let sender = match query.sender.as_deref() {
        Some(sender) => Some(
            state
                .delivery
                .find_user(sender)
                .await?
                .ok_or_else(|| ApiError::validation(format!("unknown sender {sender}")))?,
        ),
        None => None,
    };
    let request = InboxRequest {
        since,
        wait: Duration::from_secs(query.wait.unwrap_or(0)),
        sender,
        unlistened: query.unlistened.unwrap_or(false),
        limit: query.limit,
    };
    let page = state.delivery.inbox(user.id, request).await?;
    let answer = || InboxPage {
        items: page.entries().iter().map(inbox_item).collect(),
        cursor: page.cursor.to_string(),
    };
    let Some(arrived) = page.arrived() else {
        return Ok(Json(answer()).into_response());
    };
    // A note that woke many waiters at once: rendered once, sent to each.
    let body = arrived.inbox_answer.get_or_init(|| {
        serde_json::to_vec(&answer())
            .map(Bytes::from)
            .unwrap_or_default()
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response())
}

/// Marks a received note listened; the sender gets `note.listened` the first time.
#[utoipa::path(post, path = "/api/v1/inbox/{note_id}/listened", tag = "delivery",
    params(("note_id" = String, Path, format = Uuid, description = "The received note's id")),
    responses((status = 204, description = "Marked"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn mark_listened(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(note_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state.delivery.listened(user.id, &note_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn channel_view(channel: &Channel) -> hark_api::Channel {
    hark_api::Channel {
        name: channel.name.clone(),
        creator_id: channel.creator_id.to_string(),
        creator_email: channel.creator_email.clone(),
        members: channel.members.iter().map(ToString::to_string).collect(),
        member_emails: channel.member_emails.clone(),
        created_at: channel.created_at.to_rfc3339(),
    }
}

fn inbox_item(entry: &InboxEntry) -> InboxItem {
    InboxItem {
        note: views::note(&entry.note),
        sender: Sender {
            id: entry.sender_id.to_string(),
            email: entry.sender_email.clone(),
        },
        channel: entry.channel.clone(),
        delivered_at: entry.delivered_at.to_rfc3339(),
        listened_at: entry.listened_at.map(|t| t.to_rfc3339()),
    }
}
