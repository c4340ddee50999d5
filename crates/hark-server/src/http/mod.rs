//! The HTTP edge: the only module that knows axum.

pub mod extract;
pub mod openapi;
pub mod problem;
mod request_metrics;
pub mod routes;
pub mod serve;
mod timeouts;
mod ui;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware;
use hark_api::ProblemCode;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanic;
use tower_http::request_id::{MakeRequestId, PropagateRequestId, RequestId, SetRequestId};
use tower_http::trace::Trace;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::AuthService;
use crate::blob::BlobStore;
use crate::broker::BrokerLink;
use crate::config::Config;
use crate::db::Repos;
use crate::delivery::DeliveryService;
use crate::notes::NotesService;
use crate::push::PushService;
use crate::webhooks::WebhookService;
use problem::ApiError;
use request_metrics::RequestMetrics;
use routes::{
    audio, compat, delivery, events, notes, openai, ops, processing, push, tokens, users, webhooks,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Config,
    pub repos: Repos,
    pub store: Arc<dyn BlobStore>,
    /// The configured broker, for `/readyz`.
    pub broker: Option<Arc<BrokerLink>>,
    /// The configured shared cache, for `/readyz`.
    pub cache: Option<Arc<crate::cache::SharedCache>>,
    pub notes: NotesService,
    pub delivery: DeliveryService,
    pub webhooks: WebhookService,
    pub push: PushService,
    pub auth: Arc<AuthService>,
    /// The speech model, for transcriptions asked for over HTTP.
    pub speech: Arc<crate::pipeline::speech::Speech>,
    pub metrics: PrometheusHandle,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }

    /// The configured public URL, or `http://<Host>` of the request when the Host is a plain
    /// host name or address (anything else falls back to the listen address). Behind a proxy
    /// or TLS, set `public_url`.
    pub fn public_base(&self, headers: &HeaderMap) -> String {
        if !self.config.public_url.is_empty() {
            return self.config.public_url.trim_end_matches('/').to_owned();
        }
        let plain = |h: &&str| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        };
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(plain)
            .unwrap_or(&self.config.listen);
        format!("http://{host}")
    }
}

/// The API routes and their OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let uploads = OpenApiRouter::new()
        .routes(routes!(notes::upload_note, notes::list_notes))
        .routes(routes!(compat::post_audio))
        .routes(routes!(compat::post_audio_corrected))
        .routes(routes!(openai::create_transcription))
        .layer(DefaultBodyLimit::disable());
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(uploads)
        .routes(routes!(notes::get_note, notes::delete_note))
        .routes(routes!(audio::get_note_audio))
        .routes(routes!(notes::create_link))
        .routes(routes!(delivery::send_note))
        .routes(routes!(delivery::create_channel, delivery::list_channels))
        .routes(routes!(delivery::add_member, delivery::remove_member))
        .routes(routes!(delivery::inbox))
        .routes(routes!(delivery::mark_listened))
        .routes(routes!(events::event_stream))
        .routes(routes!(events::event_socket))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::get_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::list_webhook_deliveries))
        .routes(routes!(push::get_push_key))
        .routes(routes!(
            push::create_push_subscription,
            push::list_push_subscriptions
        ))
        .routes(routes!(push::delete_push_subscription))
        .routes(routes!(processing::list_jobs))
        .routes(routes!(processing::reprocess))
        .routes(routes!(processing::get_waveform))
        .routes(routes!(processing::get_transcript))
        .routes(routes!(processing::ask_correction))
        .routes(routes!(processing::presentation_file))
        .routes(routes!(compat::list_audio))
        .routes(routes!(compat::download_audio))
        .routes(routes!(compat::audio_info))
        .routes(routes!(tokens::create_token))
        .routes(routes!(tokens::create_service_token))
        .routes(routes!(tokens::verify_token))
        .routes(routes!(users::create_user))
        .routes(routes!(users::get_me))
        .routes(routes!(users::delete_user))
        .routes(routes!(users::create_api_key, users::list_api_keys))
        .routes(routes!(users::delete_api_key))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    openapi::complete(&mut document);
    (router, document)
}

/// The whole application: API, web UI, docs, and the layers every request passes. The layers that do
/// not need the matched route wrap the router once, as one stack: `Router::layer` boxes each
/// layer around every route, and every request clones each box.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let timeouts = timeouts::Timeouts::new(&state.config.limits);
    let json_limit = state.config.limits.max_json_bytes;
    let routes = api
        .merge(ui::router())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(|| async { ApiError::new(ProblemCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ProblemCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(middleware::from_fn_with_state(
            RequestMetrics::default(),
            request_metrics::record,
        ))
        .layer(middleware::from_fn_with_state(
            timeouts,
            timeouts::limit_duration,
        ))
        .with_state(state);
    let service = CatchPanic::custom(routes, |_| {
        axum::response::IntoResponse::into_response(ApiError::new(
            ProblemCode::Internal,
            "the server could not complete the request",
        ))
    });
    let service = PropagateRequestId::new(service, REQUEST_ID);
    let service = Trace::new_for_http(service).make_span_with(|request: &Request| {
        let id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
    });
    let service = SetRequestId::new(service, REQUEST_ID, RequestIds::new());
    Router::new().fallback_service(service)
}

/// Request ids: a random prefix drawn once and a counter. Unique like a random UUID, without
/// asking the kernel for randomness on every request.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> RequestIds {
        RequestIds {
            prefix: format!("{:016x}", rand::random::<u64>()).into(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:012x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}
