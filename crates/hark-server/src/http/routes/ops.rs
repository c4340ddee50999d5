//! Health, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::openapi;
use crate::http::problem::ApiError;

/// The process answers.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: &'static str,
}

/// The database and the blob store answer; how the broker is, when one is configured.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    status: &'static str,
    /// `ok`.
    database: &'static str,
    /// `ok`.
    store: &'static str,
    /// Only with a broker configured: `ok`, or `unavailable` while it cannot be reached.
    /// The server stays ready meanwhile: events wait in the database and are published, in
    /// order, once the broker is back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    broker: Option<&'static str>,
    /// Only with a shared cache configured: `ok`, or `unavailable` while Redis cannot be
    /// reached. The server stays ready meanwhile: reads go to the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    cache: Option<&'static str>,
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = Health, description = "Alive")))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready: the database and the blob store answer. With a broker or a shared cache configured,
/// the answer also says whether each can be reached; neither makes the server unready, since
/// events wait in its database until the broker is back and reads go to the database while
/// Redis is away.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Readiness, description = "Ready"),
              (status = 503, response = openapi::Unavailable)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    state
        .repos
        .health
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    state
        .store
        .check()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let broker = match &state.broker {
        Some(broker) if broker.healthy().await => Some("ok"),
        Some(_) => Some("unavailable"),
        None => None,
    };
    let cache = match &state.cache {
        Some(cache) if cache.answers().await => Some("ok"),
        Some(_) => Some("unavailable"),
        None => None,
    };
    Ok(Json(Readiness {
        status: "ready",
        database: "ok",
        store: "ok",
        broker,
        cache,
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text format, version 0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
