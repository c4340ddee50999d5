//! Extractors that turn every rejection into a problem, and the caller's identity.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use hark_api::ProblemCode;
use serde::de::DeserializeOwned;

use super::AppState;
use super::problem::ApiError;
use crate::auth::{Credential, Identified, LinkSignature, Principal, SESSION_COOKIE, Scope};
use crate::domain::{Note, User, UserId};
use crate::notes::{NoteError, Viewer};

/// JSON object body (`Content-Type: application/json` or `*/*+json`): 415 without that type,
/// 413 past the configured size, 400 for anything but a well-formed object of the right shape.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ProblemCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ));
        }
        let body = read_body(req, state).await?;
        json_object(&body).map(AppJson)
    }
}

/// A JSON object body that may be left out: an empty body (of any content type) or `null`
/// asks for the defaults.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = read_body(req, state).await?;
        if matches!(body.trim_ascii(), b"" | b"null") {
            return Ok(OptionalJson(T::default()));
        }
        json_object(&body).map(OptionalJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        })
}

/// The whole body, within the configured limit (413 past it).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ProblemCode::PayloadTooLarge, rejection.body_text())
        } else {
            ApiError::validation(rejection.body_text())
        }
    })
}

/// Every body the API takes is an object; serde would also read a struct from an array of its
/// fields in order, which no client means.
fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::validation("the body must be a JSON object"));
    }
    axum::Json::<T>::from_bytes(body)
        .map(|json| json.0)
        .map_err(|rejection| ApiError::validation(rejection.body_text()))
}

/// Path parameters; a segment that does not decode (not UTF-8, say) is a 400 problem.
pub struct AppPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(path) => Ok(AppPath(path.0)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::validation(e.body_text()))
            }
            Err(e) => Err(ApiError::internal(&e)),
        }
    }
}

/// Query string; a value of the wrong type is a 400 problem.
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::validation(e.body_text()))
    }
}

/// The bearer credential of the `Authorization` header, if any.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "expected Authorization: Bearer <token>",
        ));
    }
    Ok(Some(credential.trim()))
}

/// Credentials a URL can carry: `?access_token=` (browsers cannot set headers on `<audio>`,
/// EventSource or WebSocket) and a signed link's `expires` and `sig`.
#[derive(Default, serde::Deserialize)]
struct UrlCredentials {
    access_token: Option<String>,
    expires: Option<String>,
    sig: Option<String>,
}

impl UrlCredentials {
    /// Unreadable query strings carry no credential; the route's own query extractor says why.
    fn of(parts: &Parts) -> UrlCredentials {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default()
    }
}

/// Where a route accepts its credential from.
#[derive(Clone, Copy)]
enum Source {
    Header,
    /// The header, or else `?access_token=` (audio, SSE and WebSocket routes).
    HeaderOrQuery,
}

/// The request's credential; 401 when there is none. A browser's session cookie counts when
/// the request carries no other, and a state-changing request made with it must also carry
/// the session's CSRF token in `X-CSRF-Token` (403 otherwise): another site can make a
/// browser send the cookie, but cannot read the token.
fn credential(parts: &Parts, state: &AppState, source: Source) -> Result<Credential, ApiError> {
    if let Some(token) = bearer(parts)? {
        return Ok(Credential::Bearer(token.to_owned()));
    }
    if let Source::HeaderOrQuery = source
        && let Some(token) = UrlCredentials::of(parts).access_token
    {
        return Ok(Credential::Bearer(token));
    }
    let session = session_cookie(&parts.headers)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    // The cookie is for the web UI's own pages. A WebSocket or a link from another origin
    // (even a sibling subdomain, which SameSite=Lax lets through) gets nothing with it.
    if cross_site(&parts.headers) {
        return Err(ApiError::forbidden(
            "the session cookie works only from Hark's own pages",
        ));
    }
    if !parts.method.is_safe() {
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !state.auth.verify_csrf(session, given) {
            return Err(ApiError::forbidden(
                "a request signed in with the session cookie needs its X-CSRF-Token header",
            ));
        }
    }
    Ok(Credential::Session(session.to_owned()))
}

/// The header a page sends its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The web UI's session cookie, if the request carries exactly one: two mean another site
/// (a sibling subdomain) planted one beside ours, and neither is to be trusted.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    let mut sessions = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value);
    let session = sessions.next()?;
    sessions.next().is_none().then_some(session)
}

/// Whether the browser says the request comes from another origin (`Sec-Fetch-Site`; an
/// address typed or bookmarked says `none`). Clients that are not browsers send no such header.
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"))
}

/// Resolves the request's credential to its principal; 401 when there is none or it is bad.
async fn principal(parts: &Parts, state: &AppState, source: Source) -> Result<Principal, ApiError> {
    Ok(state
        .auth
        .authenticate(&credential(parts, state, source)?)
        .await?)
}

/// How a caller sees notes on a route that grants service tokens `scope`: 403 for a service
/// token without it.
fn viewer(principal: &Principal, scope: Scope) -> Result<Viewer, ApiError> {
    if !principal.has_scope(scope) {
        return Err(forbidden(scope));
    }
    Ok(match principal {
        Principal::User(user) => Viewer::User(user.id),
        Principal::Service { .. } => Viewer::Service,
    })
}

fn users_only() -> ApiError {
    ApiError::forbidden(
        "this route is for users; service tokens have no notes or account of their own",
    )
}

fn forbidden(scope: Scope) -> ApiError {
    ApiError::forbidden(format!(
        "this route needs a service token with the {} scope",
        scope.as_str()
    ))
}

/// An authenticated user. Service tokens get 403: routes that take this act on the caller's
/// own notes, keys or account, and a service has none.
pub struct Auth(pub User);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match principal(parts, state, Source::Header).await? {
            Principal::User(user) => Ok(Auth(user)),
            Principal::Service { .. } => Err(users_only()),
        }
    }
}

/// A user following their events (SSE, WebSocket): the token in the header or, for clients
/// that cannot set one (`EventSource`, browsers' WebSocket), as `?access_token=`. Service
/// tokens get 403: a service has no events of its own.
pub struct Subscriber(pub UserId);

impl FromRequestParts<AppState> for Subscriber {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state
            .auth
            .identify(&credential(parts, state, Source::HeaderOrQuery)?)
            .await?
        {
            Identified::Token(user) => Ok(Subscriber(user)),
            Identified::Principal(Principal::User(user)) => Ok(Subscriber(user.id)),
            Identified::Principal(Principal::Service { .. }) => Err(users_only()),
        }
    }
}

/// A user adding a note. The token is verified but the account is not loaded: the note's row
/// references it, so a user deleted since the token was issued is refused at the commit (401,
/// as here). Service tokens get 403, as with [`Auth`].
pub struct Uploader(pub UserId);

impl FromRequestParts<AppState> for Uploader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state
            .auth
            .identify(&credential(parts, state, Source::Header)?)
            .await?
        {
            Identified::Token(user) => Ok(Uploader(user)),
            Identified::Principal(Principal::User(user)) => Ok(Uploader(user.id)),
            Identified::Principal(Principal::Service { .. }) => Err(users_only()),
        }
    }
}

/// Any authenticated caller, or nobody (routes whose answer depends on it).
pub struct MaybeCaller(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer(parts)?.is_none() && session_cookie(&parts.headers).is_none() {
            return Ok(MaybeCaller(None));
        }
        Ok(MaybeCaller(Some(
            principal(parts, state, Source::Header).await?,
        )))
    }
}

/// A reader of notes: a user (their own and received notes), or a service token granted
/// `notes:read` (any note).
pub struct NoteReader(pub Viewer);

impl FromRequestParts<AppState> for NoteReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = principal(parts, state, Source::Header).await?;
        Ok(NoteReader(viewer(&caller, Scope::NotesRead)?))
    }
}

/// Who may fetch a note's audio: a signed link's signature, or a note reader whose token
/// comes in the header or as `?access_token=`.
pub enum AudioAccess {
    Link(Option<LinkSignature>),
    Reader(Reader),
}

impl FromRequestParts<AppState> for AudioAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let url = UrlCredentials::of(parts);
        if url.expires.is_some() || url.sig.is_some() {
            let expires = url.expires.and_then(|e| e.parse().ok());
            let signature = expires
                .zip(url.sig)
                .map(|(expires, sig)| LinkSignature { expires, sig });
            return Ok(AudioAccess::Link(signature));
        }
        let token = credential(parts, state, Source::HeaderOrQuery)?;
        Ok(AudioAccess::Reader(
            match state.auth.identify(&token).await? {
                Identified::Token(user) => Reader {
                    viewer: Viewer::User(user),
                    unconfirmed: Some(user),
                },
                Identified::Principal(principal) => Reader {
                    viewer: viewer(&principal, Scope::NotesRead)?,
                    unconfirmed: None,
                },
            },
        ))
    }
}

/// A note reader whose user account may not be loaded yet: a note they own or received
/// proves it exists (the rows reference it), so the lookup is left for a miss.
pub struct Reader {
    viewer: Viewer,
    /// The user whose account was not loaded, when the credential was a bare token.
    unconfirmed: Option<UserId>,
}

impl Reader {
    /// The user reading, unless a service is.
    pub fn user(&self) -> Option<UserId> {
        match self.viewer {
            Viewer::User(user) => Some(user),
            Viewer::Service => None,
        }
    }

    /// The note if this reader may see it. A token whose user is gone answers 401, as on
    /// every route, not 404.
    pub async fn note(&self, state: &AppState, id: &str) -> Result<Note, ApiError> {
        match state.notes.visible(self.viewer, id).await {
            Ok(note) => Ok(note),
            Err(missing @ NoteError::NotFound(_)) => {
                if let Some(user) = self.unconfirmed {
                    state.auth.account(user).await?;
                }
                Err(missing.into())
            }
            Err(other) => Err(other.into()),
        }
    }
}

/// The peer's IP address, for throttling.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(ClientIp(ip))
    }
}
