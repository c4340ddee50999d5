//! Webhook routes: register an endpoint for event types, list, read and delete the caller's
//! endpoints, and read the record of every delivery attempt.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hark_api::{CreatedWebhook, DeliveriesQuery, DeliveryAttemptList, NewWebhook, WebhookList};

use crate::domain::{AttemptRecord, Webhook};
use crate::http::AppState;
use crate::http::extract::{AppJson, AppPath, AppQuery, Auth};
use crate::http::openapi;
use crate::http::problem::ApiError;

/// Registers a webhook: each event of the listed types that the caller is in the audience of
/// is POSTed to `url` as JSON, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`), and retried on failure. The answer is the only one that carries the
/// signing `secret`. Targets on non-public addresses are refused unless the server allows them.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook, description = "Created"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 413, response = openapi::PayloadTooLarge),
              (status = 415, response = openapi::UnsupportedMediaType), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppJson(request): AppJson<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let created = state
        .webhooks
        .create(user.id, &request.url, &request.events)
        .await?;
    let webhook = webhook_view(&created.webhook);
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            id: webhook.id,
            url: webhook.url,
            events: webhook.events,
            created_at: webhook.created_at,
            secret: created.secret,
        }),
    ))
}

/// The caller's webhooks, oldest first, without their secrets.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList, description = "The webhooks"),
              (status = 401, response = openapi::Unauthorized), (status = 403, response = openapi::Forbidden),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<WebhookList>, ApiError> {
    let webhooks = state.webhooks.list(user.id).await?;
    Ok(Json(WebhookList {
        items: webhooks.iter().map(webhook_view).collect(),
    }))
}

/// One of the caller's webhooks, without its secret.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, format = Uuid, description = "The webhook's id")),
    responses((status = 200, body = hark_api::Webhook, description = "The webhook"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
) -> Result<Json<hark_api::Webhook>, ApiError> {
    let webhook = state.webhooks.get(user.id, &id).await?;
    Ok(Json(webhook_view(&webhook)))
}

/// Deletes one of the caller's webhooks; its pending deliveries are never sent.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, format = Uuid, description = "The webhook's id")),
    responses((status = 204, description = "Deleted"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state.webhooks.delete(user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every attempt to deliver an event to one of the caller's webhooks, newest first: the
/// answer's status code or the error, when the next attempt is due, and the state it left
/// the delivery in (`delivered`, `retrying` or `dead`).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, format = Uuid, description = "The webhook's id"), DeliveriesQuery),
    responses((status = 200, body = DeliveryAttemptList, description = "The attempts"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
    AppQuery(query): AppQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryAttemptList>, ApiError> {
    let attempts = state.webhooks.attempts(user.id, &id, query.limit).await?;
    Ok(Json(DeliveryAttemptList {
        items: attempts.iter().map(attempt_view).collect(),
    }))
}

fn webhook_view(webhook: &Webhook) -> hark_api::Webhook {
    hark_api::Webhook {
        id: webhook.id.to_string(),
        url: webhook.url.clone(),
        events: webhook.events.clone(),
        created_at: webhook.created_at.to_rfc3339(),
    }
}

fn attempt_view(attempt: &AttemptRecord) -> hark_api::DeliveryAttempt {
    hark_api::DeliveryAttempt {
        event_id: attempt.event_id.clone(),
        event_seq: attempt.event_seq,
        event_type: attempt.event_type,
        attempt: attempt.attempt,
        status_code: attempt.status_code,
        error: attempt.error.clone(),
        attempted_at: attempt.attempted_at.to_rfc3339(),
        next_attempt_at: attempt.next_attempt_at.map(|t| t.to_rfc3339()),
        state: attempt.state,
    }
}
