//! The web UI: pages rendered here around the signed-in user, small JavaScript modules that
//! act on the JSON API with the session cookie, and sign-in, registration and sign-out.

mod assets;
mod pages;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::Path};
use hark_api::Role;
use serde::Deserialize;

use super::AppState;
use super::extract::{ClientIp, cross_site, session_cookie};
use crate::auth::{AuthError, Credential, Principal, SESSION_COOKIE};
use crate::domain::User;
use crate::notes::{NoteError, Viewer};
use pages::{NoteView, Page, SignForm};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|s, h, u| page(s, h, u, Page::Library)))
        .route("/upload", get(|s, h, u| page(s, h, u, Page::Upload)))
        .route("/inbox", get(|s, h, u| page(s, h, u, Page::Inbox)))
        .route("/settings", get(|s, h, u| page(s, h, u, Page::Settings)))
        .route("/notes/{id}", get(note_page))
        .route("/signin", get(sign_in_page).post(sign_in))
        .route("/register", get(register_page).post(register))
        .route("/signout", post(sign_out))
        .route("/ui/{file}", get(assets::serve))
}

/// The signed-in user of a page request, with their session.
struct Visitor {
    user: User,
    session: String,
}

impl Visitor {
    /// The visitor, `None` when not signed in, or the page to show when the database cannot
    /// tell.
    async fn of(state: &AppState, headers: &HeaderMap) -> Result<Option<Visitor>, Response> {
        let Some(session) = session_cookie(headers) else {
            return Ok(None);
        };
        match state
            .auth
            .authenticate(&Credential::Session(session.to_owned()))
            .await
        {
            Ok(Principal::User(user)) => Ok(Some(Visitor {
                user,
                session: session.to_owned(),
            })),
            Err(AuthError::Db(error)) => {
                tracing::warn!(%error, "session lookup");
                Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    pages::message(
                        "Unavailable",
                        "Hark cannot reach its database just now. Try again in a moment.",
                    ),
                )
                    .into_response())
            }
            _ => Ok(None),
        }
    }

    fn view(&self, state: &AppState) -> pages::Visitor<'_> {
        pages::Visitor {
            email: self.user.email.as_str(),
            user_id: self.user.id.to_string(),
            csrf: state.auth.csrf_token(&self.session),
        }
    }
}

async fn page(State(state): State<AppState>, headers: HeaderMap, uri: Uri, page: Page) -> Response {
    match Visitor::of(&state, &headers).await {
        Ok(Some(visitor)) => pages::app(page, &visitor.view(&state), None),
        // Back to this very address (the library's filters too) once signed in.
        Ok(None) => to_sign_in(uri.path_and_query().map_or(page.path(), |p| p.as_str())),
        Err(unavailable) => unavailable,
    }
}

/// A note's page; another user's note, or none, is the same not-found page.
async fn note_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visitor = match Visitor::of(&state, &headers).await {
        Ok(Some(visitor)) => visitor,
        Ok(None) => return to_sign_in(&format!("/notes/{id}")),
        Err(unavailable) => return unavailable,
    };
    let view = visitor.view(&state);
    match state
        .notes
        .visible(Viewer::User(visitor.user.id), &id)
        .await
    {
        Ok(note) => {
            let id = note.id.to_string();
            let title = note.title.as_deref().unwrap_or(&note.name);
            pages::app(Page::Note, &view, Some(NoteView { id: &id, title })).into_response()
        }
        Err(NoteError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, pages::not_found(&view)).into_response()
        }
        Err(other) => {
            tracing::warn!(error = %other, "note page");
            (StatusCode::SERVICE_UNAVAILABLE, pages::unavailable(&view)).into_response()
        }
    }
}

/// Where to go after signing in: a path of this site only.
#[derive(Deserialize, Default)]
struct Next {
    next: Option<String>,
}

impl Next {
    /// `next` when it is a path of this site; anything a browser could read as another
    /// origin (`//host`, `/\host`, a tab or newline it would strip) goes to the library.
    fn path(&self) -> &str {
        self.next
            .as_deref()
            .filter(|p| local_path(p))
            .unwrap_or("/")
    }
}

fn local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/?".contains(&b))
}

fn to_sign_in(from: &str) -> Response {
    let target = format!(
        "/signin?next={}",
        percent_encoding::utf8_percent_encode(from, percent_encoding::NON_ALPHANUMERIC)
    );
    redirect(&target)
}

fn redirect(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(LOCATION, location);
    response
}

/// Sign-in, registration and sign-out forms are this site's own: a form another site posts
/// could sign a browser into an account of the other site's choosing.
fn from_elsewhere(headers: &HeaderMap) -> Option<Response> {
    cross_site(headers).then(|| {
        (
            StatusCode::FORBIDDEN,
            pages::message("Forbidden", "This form did not come from Hark's own page."),
        )
            .into_response()
    })
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn sign_in_page(State(state): State<AppState>, Query(next): Query<Next>) -> Response {
    pages::sign_in(&SignForm {
        next: next.path(),
        open_registration: state.auth.open_registration(),
        ..SignForm::default()
    })
    .into_response()
}

async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(next): Query<Next>,
    form: Result<Form<Credentials>, FormRejection>,
) -> Response {
    if let Some(refused) = from_elsewhere(&headers) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return redirect("/signin");
    };
    match state
        .auth
        .sign_in_session(&form.email, &form.password, ip)
        .await
    {
        Ok(session) => signed_in(&state, session, next.path()),
        Err(error) => {
            let status = match error {
                AuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                AuthError::InvalidCredentials => StatusCode::UNAUTHORIZED,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let form = SignForm {
                email: &form.email,
                error: Some(said(status, &error)),
                next: next.path(),
                open_registration: state.auth.open_registration(),
            };
            (status, pages::sign_in(&form)).into_response()
        }
    }
}

async fn register_page(State(state): State<AppState>) -> Response {
    if !state.auth.open_registration() {
        return redirect("/signin");
    }
    pages::register(&SignForm::default()).into_response()
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Credentials>, FormRejection>,
) -> Response {
    if let Some(refused) = from_elsewhere(&headers) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return redirect("/register");
    };
    if !state.auth.open_registration() {
        return redirect("/signin");
    }
    match state
        .auth
        .register(&form.email, &form.password, Role::User)
        .await
    {
        Ok(user) => match state.auth.start_session(&user).await {
            Ok(session) => signed_in(&state, session, "/"),
            Err(error) => {
                tracing::warn!(%error, "session after registration");
                redirect("/signin")
            }
        },
        Err(error) => {
            let status = match error {
                AuthError::EmailTaken => StatusCode::CONFLICT,
                AuthError::Invalid(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let form = SignForm {
                email: &form.email,
                error: Some(said(status, &error)),
                ..SignForm::default()
            };
            (status, pages::register(&form)).into_response()
        }
    }
}

/// What a form says of a failure: the reason when it is the visitor's, else no internals.
fn said(status: StatusCode, error: &AuthError) -> String {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%error, "sign-in or registration form");
        "Hark cannot do this just now. Try again in a moment.".to_owned()
    } else {
        error.to_string()
    }
}

/// Sets the session cookie and goes on to `next`.
fn signed_in(state: &AppState, session: String, next: &str) -> Response {
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        state.auth.session_ttl_seconds()
    );
    with_cookie(redirect(next), &cookie)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(cookie) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// Clears the session cookie. The form carries the session's CSRF token, so another site
/// cannot sign a user out.
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignOut>, FormRejection>,
) -> Response {
    if let Some(refused) = from_elsewhere(&headers) {
        return refused;
    }
    let given = form.map(|f| f.0.csrf).unwrap_or_default();
    // Without the cookie (none set, or a cross-site post, which SameSite=Lax strips) there is
    // nothing to clear, and a clearing header would let another site sign the user out.
    let Some(session) = session_cookie(&headers) else {
        return redirect("/signin");
    };
    if !state.auth.verify_csrf(session, &given) {
        return (
            StatusCode::FORBIDDEN,
            pages::message(
                "Forbidden",
                "This sign-out did not come from Hark's own page.",
            ),
        )
            .into_response();
    }
    if let Err(error) = state.auth.end_session(session).await {
        tracing::warn!(%error, "sign-out");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            pages::message(
                "Unavailable",
                "Hark could not sign you out just now. Try again.",
            ),
        )
            .into_response();
    }
    with_cookie(
        redirect("/signin"),
        &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    )
}
