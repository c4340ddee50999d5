//! Users and their personal API keys.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hark_api::{ApiKeyList, CreatedApiKey, Credentials, NewApiKey, Role};

use crate::auth::{Principal, Scope};
use crate::domain::UserId;
use crate::domain::ids::ApiKeyId;
use crate::http::AppState;
use crate::http::extract::{AppJson, AppPath, Auth, MaybeCaller};
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::http::views;

/// Registers a user (role `user`). Open to anyone when registration is open; otherwise to
/// admins and service tokens granted `users:write`.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = Credentials,
    responses((status = 201, body = hark_api::User, description = "Registered"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 409, response = openapi::Conflict),
              (status = 413, response = openapi::PayloadTooLarge), (status = 415, response = openapi::UnsupportedMediaType),
              (status = 503, response = openapi::Unavailable)),
    security((), ("bearer" = ["users:write"])))]
pub async fn create_user(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    AppJson(body): AppJson<Credentials>,
) -> Result<(StatusCode, Json<hark_api::User>), ApiError> {
    let is_admin = match &caller {
        Some(Principal::User(user)) => user.role == Role::Admin,
        Some(service) => service.has_scope(Scope::UsersWrite),
        None => false,
    };
    if !state.auth.open_registration() && !is_admin {
        return Err(if caller.is_some() {
            ApiError::forbidden("registration is closed; only admins can add users")
        } else {
            ApiError::unauthorized("registration is closed; sign in as an admin")
        });
    }
    let user = state
        .auth
        .register(&body.email, &body.password, Role::User)
        .await?;
    Ok((StatusCode::CREATED, Json(views::user(&user))))
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    responses((status = 200, body = hark_api::User, description = "The caller"),
              (status = 401, response = openapi::Unauthorized), (status = 403, response = openapi::Forbidden),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn get_me(Auth(user): Auth) -> Json<hark_api::User> {
    Json(views::user(&user))
}

/// Deletes a user and their notes: the user themself, or an admin.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, format = Uuid, description = "The user's id")),
    responses((status = 204, description = "Deleted"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    Auth(caller): Auth,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = UserId::parse(&id).ok_or_else(|| ApiError::not_found("user"))?;
    if caller.id != id && caller.role != Role::Admin {
        return Err(ApiError::not_found("user"));
    }
    if !state.notes.delete_user(id).await? {
        return Err(ApiError::not_found("user"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a personal API key. The key is in this answer only; it is stored hashed.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey, description = "The key, shown this once"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 413, response = openapi::PayloadTooLarge),
              (status = 415, response = openapi::UnsupportedMediaType), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppJson(body): AppJson<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let created = state.auth.create_api_key(user.id, &body.name).await?;
    let r = created.record;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id: r.id,
            name: r.name,
            key: created.key,
            created_at: r.created_at.to_rfc3339(),
        }),
    ))
}

/// The caller's API keys, without the keys themselves.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    responses((status = 200, body = ApiKeyList, description = "The caller's keys"),
              (status = 401, response = openapi::Unauthorized), (status = 403, response = openapi::Forbidden),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<ApiKeyList>, ApiError> {
    let keys = state.repos.api_keys.list_api_keys(user.id).await?;
    let items = keys.into_iter().map(views::api_key).collect();
    Ok(Json(ApiKeyList { items }))
}

/// Revokes one of the caller's API keys.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, format = Uuid, description = "The key's id")),
    responses((status = 204, description = "Revoked"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 404, response = openapi::NotFound),
              (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    Auth(user): Auth,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = ApiKeyId::parse(&id).ok_or_else(|| ApiError::not_found("API key"))?;
    if !state.repos.api_keys.delete_api_key(user.id, id).await? {
        return Err(ApiError::not_found("API key"));
    }
    Ok(StatusCode::NO_CONTENT)
}
