//! Uploads are timed by their body: a slow but steady client finishes however long it takes
//! (up to the upload limit), one that stops sending gets 408 and leaves nothing behind.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, TestUser, sample_wav, spawn_app_with};

/// Sends an upload over a plain connection: the headers, then the body in `chunks` pieces with
/// `pause` between them, stopping after `send_chunks` of them (the rest never comes). Returns
/// the response's status line and body.
async fn paced_upload(
    app: &TestApp,
    user: &TestUser,
    body: &[u8],
    chunks: usize,
    send_chunks: usize,
    pause: Duration,
) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/notes?name=slow.wav HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        user.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    for piece in body.chunks(body.len().div_ceil(chunks)).take(send_chunks) {
        tokio::time::sleep(pause).await;
        stream.write_all(piece).await.expect("send body");
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    (status, response)
}

async fn a_slow_but_steady_upload_outlasts_the_request_timeout(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.limits.request_timeout_seconds = 1;
        config.limits.body_idle_timeout_seconds = 5;
    })
    .await;
    let user = app.user("ann@example.com").await;
    // Ten pieces, 400 ms apart: four seconds in all, four times the request timeout.
    let (status, response) = paced_upload(
        &app,
        &user,
        &sample_wav(),
        10,
        10,
        Duration::from_millis(400),
    )
    .await;
    assert_eq!(status, 201, "{response}");
    let list = user
        .client
        .list_notes(&Default::default())
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    app.stop().await;
}

async fn an_upload_that_stops_sending_gets_408_and_leaves_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.limits.body_idle_timeout_seconds = 1;
    })
    .await;
    let user = app.user("ann@example.com").await;
    let (status, response) =
        paced_upload(&app, &user, &sample_wav(), 4, 2, Duration::from_millis(10)).await;
    assert_eq!(status, 408, "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
    assert!(response.contains("sent nothing for 1 s"), "{response}");
    let list = user
        .client
        .list_notes(&Default::default())
        .await
        .expect("list");
    assert!(list.items.is_empty());
    assert!(app.blob_files().is_empty(), "{:?}", app.blob_files());
    assert!(app.tmp_files().is_empty(), "{:?}", app.tmp_files());
    app.stop().await;
}

backend_tests!(
    a_slow_but_steady_upload_outlasts_the_request_timeout,
    an_upload_that_stops_sending_gets_408_and_leaves_nothing,
);
