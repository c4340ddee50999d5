//! Tokens: sign-in, service sign-in, verification.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use hark_api::{Credentials, ServiceCredentials, TokenClaims, TokenResponse};

use crate::http::AppState;
use crate::http::extract::{AppJson, ClientIp, bearer};
use crate::http::openapi;
use crate::http::problem::ApiError;

/// Signs in with email and password. Unknown emails and wrong passwords get the same 401;
/// repeated failures per email and per IP get 429.
#[utoipa::path(post, path = "/token", tag = "tokens", request_body = Credentials,
    responses((status = 200, body = TokenResponse, description = "A token"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::PayloadTooLarge), (status = 415, response = openapi::UnsupportedMediaType),
              (status = 429, response = openapi::TooManyRequests), (status = 503, response = openapi::Unavailable)))]
pub async fn create_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(body): AppJson<Credentials>,
) -> Result<Json<TokenResponse>, ApiError> {
    Ok(Json(
        state.auth.sign_in(&body.email, &body.password, ip).await?,
    ))
}

/// Signs in a service client from the configuration; the token carries its scopes.
#[utoipa::path(post, path = "/token/s2s", tag = "tokens", request_body = ServiceCredentials,
    responses((status = 200, body = TokenResponse, description = "A service token"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::PayloadTooLarge), (status = 415, response = openapi::UnsupportedMediaType),
              (status = 429, response = openapi::TooManyRequests)))]
pub async fn create_service_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(body): AppJson<ServiceCredentials>,
) -> Result<Json<TokenResponse>, ApiError> {
    Ok(Json(
        state
            .auth
            .sign_in_service(&body.client_id, &body.client_secret, ip)
            .await?,
    ))
}

/// The claims of the bearer token: `sub`, `role` or `scopes`, `exp`.
#[utoipa::path(get, path = "/token/verify", tag = "tokens",
    responses((status = 200, body = TokenClaims, description = "The token's claims"),
              (status = 401, response = openapi::Unauthorized)),
    security(("bearer" = [])))]
pub async fn verify_token(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<TokenClaims>, ApiError> {
    let token = bearer(&parts)?.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    Ok(Json(state.auth.verify_token(token)?))
}
