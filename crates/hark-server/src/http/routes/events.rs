//! The caller's events as they happen: Server-Sent Events and WebSocket. Both resume from a
//! `seq` (`Last-Event-ID` or `?since=`) with every later event once, from the log, then live.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::LoggedEvent;
use crate::http::AppState;
use crate::http::extract::{AppQuery, Subscriber};
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::http::views;

/// How often an idle stream says it is alive (SPEC: at least every 30 s).
const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this `seq` (the `id` of the last event received); `Last-Event-ID` wins.
    /// Without either, only events from now on.
    #[param(pattern = r"^[0-9]{1,18}$", min_length = 1, max_length = 18)]
    pub since: Option<String>,
    /// A token, for clients that cannot set headers (`EventSource`, browsers' WebSocket).
    pub access_token: Option<String>,
}

/// Server-Sent Events of the caller's events: `id` is the event's `seq`, `event` its type,
/// `data` the event as JSON. A comment every 15 s keeps idle connections open.
#[utoipa::path(get, path = "/api/v1/events", tag = "delivery",
    params(EventsQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq")),
    responses((status = 200, content_type = "text/event-stream", body = String,
               description = "One event per message, as `hark_api::Event` JSON"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn event_stream(
    State(state): State<AppState>,
    Subscriber(user): Subscriber,
    headers: HeaderMap,
    AppQuery(query): AppQuery<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let since = resume_point(&headers, &query)?;
    let events = state.delivery.events(user, since).await?;
    let messages = ended_by_errors(events).map(|event| {
        let message = SseEvent::default()
            .id(event.seq.to_string())
            .event(event.data.kind().as_str());
        Ok(match message.json_data(views::event(&event)) {
            Ok(message) => message,
            Err(e) => SseEvent::default().comment(format!("unserialisable event: {e}")),
        })
    });
    Ok(Sse::new(messages).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// The same events over a WebSocket: one JSON text frame per event, a ping every 15 s.
#[utoipa::path(get, path = "/api/v1/events/ws", tag = "delivery",
    params(EventsQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq")),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
              (status = 400, response = openapi::BadRequest), (status = 401, response = openapi::Unauthorized),
              (status = 403, response = openapi::Forbidden), (status = 503, response = openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn event_socket(
    State(state): State<AppState>,
    Subscriber(user): Subscriber,
    headers: HeaderMap,
    AppQuery(query): AppQuery<EventsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejected| {
        ApiError::validation(format!(
            "this route speaks WebSocket only: {}",
            rejected.body_text()
        ))
    })?;
    let since = resume_point(&headers, &query)?;
    let events = state.delivery.events(user, since).await?;
    Ok(upgrade
        .on_upgrade(move |socket| forward(socket, ended_by_errors(events)))
        .into_response())
}

/// Sends each event as a text frame until either side stops.
async fn forward(mut socket: WebSocket, events: impl Stream<Item = LoggedEvent> + Send) {
    let mut events = std::pin::pin!(events);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break };
                let Ok(text) = serde_json::to_string(&views::event(&event)) else { continue };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            _ = heartbeat.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // The client has nothing to say; pongs and anything else are ignored.
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Where to resume: `Last-Event-ID` (what an `EventSource` sends on reconnecting), else
/// `?since=`.
fn resume_point(headers: &HeaderMap, query: &EventsQuery) -> Result<Option<i64>, ApiError> {
    let given = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("-").to_owned())
        .or_else(|| query.since.clone());
    given
        .map(|seq| {
            seq.trim()
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| ApiError::validation("since must be the seq of an event"))
        })
        .transpose()
}

/// The events until the first error, which is logged: the client reconnects and resumes.
fn ended_by_errors(
    events: impl Stream<Item = Result<LoggedEvent, crate::delivery::DeliveryError>> + Send,
) -> impl Stream<Item = LoggedEvent> + Send {
    events
        .take_while(|item| {
            if let Err(e) = item {
                tracing::warn!(error = %e, "an event stream stopped");
            }
            std::future::ready(item.is_ok())
        })
        .filter_map(|item| std::future::ready(item.ok()))
}
