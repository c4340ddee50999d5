//! A webhook endpoint (or push service) for tests: a real HTTP server on 127.0.0.1 that records
//! every request and answers as told, and the signature check a webhook receiver makes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long a test waits for something that should happen within moments.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// What a receiver answers its `n`th request (from 0).
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Answers nothing for far longer than any test waits.
    Hang,
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value; empty when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, value)| value)
    }

    pub fn event(&self) -> hark_api::Event {
        serde_json::from_slice(&self.body).expect("the body is an event")
    }
}

struct Recorder {
    received: Mutex<Vec<Received>>,
    answer: Box<dyn Fn(usize) -> Answer + Send + Sync>,
}

/// A webhook endpoint that records every request and answers as told.
pub struct Receiver {
    pub url: String,
    recorder: Arc<Recorder>,
}

impl Receiver {
    pub async fn start(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Receiver {
        Self::start_on(0, answer).await
    }

    pub async fn start_on(
        port: u16,
        answer: impl Fn(usize) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("receiver binds");
        let port = listener.local_addr().expect("address").port();
        let recorder = Arc::new(Recorder {
            received: Mutex::new(Vec::new()),
            answer: Box::new(answer),
        });
        let router = axum::Router::new()
            .fallback(record)
            .with_state(recorder.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            recorder,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.recorder.received.lock().expect("lock").clone()
    }

    /// Waits until at least `count` requests arrived; all of them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} requests never arrived; got {received:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn record(
    State(recorder): State<Arc<Recorder>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let n = {
        let mut received = recorder.received.lock().expect("lock");
        received.push(Received {
            path: uri.path().to_owned(),
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            content_type: header("content-type"),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = value.to_str().unwrap_or_default().to_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: body.to_vec(),
        });
        received.len() - 1
    };
    match (recorder.answer)(n) {
        Answer::Status(code) => StatusCode::from_u16(code).expect("a status"),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
    }
}

/// A port nothing listens on (for now).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Verifies a request's signature as a receiver would, from the secret alone: the
/// base64-decoded key after `whsec_`, HMAC-SHA256 over `id.timestamp.body`.
pub fn signed_by(secret: &str, request: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.", request.id, request.timestamp).as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    request
        .signature
        .split(' ')
        .any(|signature| signature == expected)
}
