//! Request time limits. Most requests get one total limit. Uploads are timed by their body
//! instead: a slow but steady client may take far longer than any total limit a server would
//! pick for ordinary requests, while one that stops sending is cut off within seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hark_api::ProblemCode;

use super::problem::ApiError;
use crate::config::Limits;

/// The routes that receive audio bodies; a new upload route belongs here.
const UPLOAD_ROUTES: [&str; 4] = [
    "/api/v1/notes",
    "/post",
    "/audio",
    "/v1/audio/transcriptions",
];

#[derive(Clone, Copy)]
pub struct Timeouts {
    request: Duration,
    upload: Duration,
    body_idle: Duration,
}

impl Timeouts {
    pub fn new(limits: &Limits) -> Timeouts {
        Timeouts {
            request: Duration::from_secs(limits.request_timeout_seconds),
            upload: Duration::from_secs(limits.upload_timeout_seconds),
            body_idle: Duration::from_secs(limits.body_idle_timeout_seconds),
        }
    }
}

/// Answers 408 as a problem when a request outlives its limit, or when an upload's body
/// stalls. A commit already under way is not cut short: ingest runs it in a task of its own.
pub async fn limit_duration(
    State(timeouts): State<Timeouts>,
    request: Request,
    next: Next,
) -> Response {
    if !is_upload(&request) {
        return match tokio::time::timeout(timeouts.request, next.run(request)).await {
            Ok(response) => response,
            Err(_) => timed_out(format!(
                "the request took longer than {} s",
                timeouts.request.as_secs()
            )),
        };
    }
    let stalled = Arc::new(AtomicBool::new(false));
    let request = with_idle_timeout(request, timeouts.body_idle, stalled.clone());
    let outcome = tokio::time::timeout(timeouts.upload, next.run(request)).await;
    // However the handler described the broken body, the cause was the silence.
    if stalled.load(Ordering::Relaxed) {
        return timed_out(format!(
            "the upload sent nothing for {} s",
            timeouts.body_idle.as_secs()
        ));
    }
    outcome.unwrap_or_else(|_| {
        timed_out(format!(
            "the upload took longer than {} s",
            timeouts.upload.as_secs()
        ))
    })
}

fn is_upload(request: &Request) -> bool {
    request.method() == Method::POST
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|path| UPLOAD_ROUTES.contains(&path.as_str()))
}

/// The same request, its body failing once no bytes arrive for `idle`; `stalled` records it.
fn with_idle_timeout(request: Request, idle: Duration, stalled: Arc<AtomicBool>) -> Request {
    let (parts, body) = request.into_parts();
    let body = body.into_data_stream();
    let guarded = futures_util::stream::unfold(Some(body), move |body| {
        let stalled = stalled.clone();
        async move {
            let mut body = body?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(body))),
                Ok(None) => None,
                Err(_) => {
                    stalled.store(true, Ordering::Relaxed);
                    let error = axum::Error::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the body stalled",
                    ));
                    Some((Err(error), None))
                }
            }
        }
    });
    Request::from_parts(parts, Body::from_stream(guarded))
}

fn timed_out(detail: String) -> Response {
    ApiError::new(ProblemCode::RequestTimeout, detail).into_response()
}
