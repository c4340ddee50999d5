//! The caller's events over Server-Sent Events and WebSocket: their audience, order, and
//! resuming without gaps or duplicates after a disconnect and after a server restart.

use std::time::Duration;

use futures_util::StreamExt;
use hark_api::{Event, EventType};
use hark_client::{Client, UploadOptions};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, TestApp, TestUser, assert_problem, sample_wav, spawn_app_with};

/// A Server-Sent Events connection, read message by message.
struct SseReader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    async fn open(app: &TestApp, token: &str, resume: Option<&str>) -> SseReader {
        let mut request = app.http.get(app.url("/api/v1/events")).bearer_auth(token);
        if let Some(seq) = resume {
            request = request.header("last-event-id", seq);
        }
        let response = request.send().await.expect("connect");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().ok(),
            Some("text/event-stream")
        );
        SseReader {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped): its `id`, `event` and parsed `data`.
    async fn next(&mut self) -> (String, String, Event) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let message: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    message
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_owned())
                };
                let Some(data) = field("data:") else { continue };
                let event: Event = serde_json::from_str(&data).expect("event JSON");
                return (
                    field("id:").expect("id"),
                    field("event:").expect("event"),
                    event,
                );
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("an event within 30 s")
                .expect("the stream is open")
                .expect("read");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    async fn take(&mut self, count: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            let (id, kind, event) = self.next().await;
            assert_eq!(id, event.seq.to_string());
            assert_eq!(kind, event.data.kind().as_str());
            events.push(event);
        }
        events
    }
}

/// Every event of `user` from the start, read to the end of the log.
async fn all_events(app: &TestApp, user: &TestUser, expected: usize) -> Vec<Event> {
    let mut stream = SseReader::open(app, &user.token, Some("0")).await;
    stream.take(expected).await
}

async fn upload(app: &TestApp, user: &TestUser, options: &UploadOptions) -> String {
    Client::new(&app.base)
        .with_token(&user.token)
        .upload_bytes(sample_wav(), options)
        .await
        .expect("upload")
        .id
}

async fn a_stream_carries_the_callers_events_in_order(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let mut anns = SseReader::open(&app, &ann.token, None).await;
    let mut bobs = SseReader::open(&app, &bob.token, None).await;
    let mine = upload(&app, &ann, &UploadOptions::default()).await;
    let to_bob = UploadOptions {
        to: vec![bob.email.clone()],
        ..Default::default()
    };
    let shared = upload(&app, &ann, &to_bob).await;
    let seen = anns.take(2).await;
    assert_eq!(seen[0].data.kind(), EventType::NoteCreated);
    assert_eq!(seen[0].data.note_id(), mine);
    assert_eq!(seen[1].data.note_id(), shared);
    assert!(seen[0].seq < seen[1].seq);
    // Bob hears only of what reached him.
    let (_, kind, received) = bobs.next().await;
    assert_eq!(kind, "note.received");
    assert_eq!(received.data.note_id(), shared);
    app.stop().await;
}

async fn a_stream_resumes_without_gaps_or_duplicates(backend: Backend) {
    let mut app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let ann = app.user("ann@example.com").await;
    let mut stream = SseReader::open(&app, &ann.token, None).await;
    upload(&app, &ann, &UploadOptions::default()).await;
    let first = stream.take(1).await;
    drop(stream);
    // Missed while disconnected...
    for _ in 0..3 {
        upload(&app, &ann, &UploadOptions::default()).await;
    }
    let resumed_at = first[0].seq.to_string();
    let mut stream = SseReader::open(&app, &ann.token, Some(&resumed_at)).await;
    let missed = stream.take(3).await;
    drop(stream);
    // ...and across a restart of the server.
    app.restart().await;
    upload(&app, &ann, &UploadOptions::default()).await;
    let resumed_at = missed[2].seq.to_string();
    let mut stream = SseReader::open(&app, &ann.token, Some(&resumed_at)).await;
    let after_restart = stream.take(1).await;
    let mut got: Vec<Event> = first;
    got.extend(missed);
    got.extend(after_restart);
    assert_eq!(
        got,
        all_events(&app, &ann, 5).await,
        "every event once, in order"
    );
    app.stop().await;
}

async fn a_websocket_carries_the_same_events(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let ann = app.user("ann@example.com").await;
    let first = upload(&app, &ann, &UploadOptions::default()).await;
    let url = format!(
        "{}/api/v1/events/ws?since=0&access_token={}",
        app.base.replace("http://", "ws://"),
        ann.token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let second = upload(&app, &ann, &UploadOptions::default()).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a frame within 30 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            let event: Event = serde_json::from_str(&text).expect("event JSON");
            seen.push(event.data.note_id().to_owned());
        }
    }
    assert_eq!(seen, [first, second]);
    socket.close(None).await.expect("close");
    app.stop().await;
}

async fn streams_need_a_user_and_a_valid_position(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let ann = app.user("ann@example.com").await;
    let anonymous = app.http.get(app.url("/api/v1/events")).send().await;
    assert_problem(anonymous.expect("send"), 401, "unauthorized").await;
    let bad = app
        .http
        .get(app.url("/api/v1/events?since=soon"))
        .bearer_auth(&ann.token)
        .send()
        .await;
    assert_problem(bad.expect("send"), 400, "validation").await;
    // A token in the query string works where headers cannot be set (EventSource).
    let by_query = app
        .http
        .get(app.url(&format!("/api/v1/events?access_token={}", ann.token)))
        .send()
        .await
        .expect("send");
    assert_eq!(by_query.status(), 200);
    // The WebSocket route asked without an upgrade: a problem, not plain text.
    let plain = app
        .http
        .get(app.url("/api/v1/events/ws"))
        .bearer_auth(&ann.token)
        .send()
        .await;
    assert_problem(plain.expect("send"), 400, "validation").await;
    app.stop().await;
}

backend_tests!(
    a_stream_carries_the_callers_events_in_order,
    a_stream_resumes_without_gaps_or_duplicates,
    a_websocket_carries_the_same_events,
    streams_need_a_user_and_a_valid_position,
);
