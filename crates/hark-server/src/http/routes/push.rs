//! Web Push routes: the server's VAPID public key, and registering, listing and deleting the
//! caller's browser subscriptions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hark_api::{NewPushSubscription, PushKey, PushSubscriptionList};

use crate::domain::PushSubscription;
use crate::http::AppState;
use crate::http::extract::{AppJson, AppPath, Auth};
use crate::http::openapi;
use crate::http::problem::ApiError;

/// The server's VAPID public key, which a browser subscribes with (`applicationServerKey` of
/// `PushManager.subscribe`).
#[utoipa::path(get, path = "/api/v1/push/key", tag = "push",
    responses((status = 200, body = PushKey, description = "The key"),
              (status = 401, response = openapi::Unauthorized), (status = 403, response = openapi::Forbidden)),
    security(("bearer" = [])))]
pub async fn get_push_key(State(state): State<AppState>, Auth(_caller): Auth) -> Json<PushKey> {
    Json(PushKey {
        public_key: state.push.public_key().to_owned(),
    })
}

/// Registers a browser's push subscription (the JSON of its `PushSubscription`): each
/// `note.received`, `note.ready` and `note.listened` the caller is in the audience of is then
/// pushed to it, encrypted for the browser (RFC 8291) and VAPID-signed, with the event's JSON
/// as the payload. The same endpoint again keeps its subscription with the new keys. A field
/// that is wrong is named in the 400; endpoints on non-public addresses are refused unless the
/// server allows them. A push service that says the subscription is gone ends it.
#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push",
    request_body = NewPushSubscription,
    responses((status = 201, body = hark_api::PushSubscription, description = "Subscribed"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 413, response = openapi::PayloadTooLarge),
              (status = 415, response = openapi::UnsupportedMediaType), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_push_subscription(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppJson(request): AppJson<NewPushSubscription>,
) -> Result<(StatusCode, Json<hark_api::PushSubscription>), ApiError> {
    let subscription = hark_push::Subscription {
        endpoint: request.endpoint,
        keys: hark_push::SubscriptionKeys {
            p256dh: request.keys.p256dh,
            auth: request.keys.auth,
        },
    };
    let saved = state.push.subscribe(user.id, subscription).await?;
    Ok((StatusCode::CREATED, Json(subscription_view(&saved))))
}

/// The caller's push subscriptions, oldest first.
#[utoipa::path(get, path = "/api/v1/push/subscriptions", tag = "push",
    responses((status = 200, body = PushSubscriptionList, description = "The subscriptions"),
              (status = 401, response = openapi::Unauthorized), (status = 403, response = openapi::Forbidden),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_push_subscriptions(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<PushSubscriptionList>, ApiError> {
    let subscriptions = state.push.list(user.id).await?;
    Ok(Json(PushSubscriptionList {
        items: subscriptions.iter().map(subscription_view).collect(),
    }))
}

/// Deletes one of the caller's push subscriptions; its pending messages are never sent.
#[utoipa::path(delete, path = "/api/v1/push/subscriptions/{id}", tag = "push",
    params(("id" = String, Path, format = Uuid, description = "The subscription's id")),
    responses((status = 204, description = "Deleted"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn delete_push_subscription(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    state.push.delete(user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn subscription_view(subscription: &PushSubscription) -> hark_api::PushSubscription {
    hark_api::PushSubscription {
        id: subscription.id.to_string(),
        endpoint: subscription.endpoint.clone(),
        created_at: subscription.created_at.to_rfc3339(),
    }
}
