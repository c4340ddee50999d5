//! Serving audio: exact bytes and headers, ranges, conditional requests, HEAD, tokens in the
//! query string, signed links, safe `Content-Disposition`, and renditions.

use std::time::Duration;

use hark_api::{LinkRequest, Note, SignedLink};
use hark_client::UploadOptions;
use reqwest::Response;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{Backend, TestApp, TestUser, assert_problem, sample_wav, spawn_app};

/// A user with one uploaded WAV note.
async fn with_note(app: &TestApp, name: &str) -> (TestUser, Note) {
    let user = app.user("ann@example.com").await;
    let options = UploadOptions {
        name: Some(name.into()),
        ..Default::default()
    };
    let note = user
        .client
        .upload_bytes(sample_wav(), &options)
        .await
        .expect("upload");
    (user, note)
}

fn audio_url(app: &TestApp, note: &Note) -> String {
    app.url(&format!("/api/v1/notes/{}/audio", note.id))
}

/// GET the note's audio as its owner, with extra headers.
async fn get_audio(
    app: &TestApp,
    user: &TestUser,
    note: &Note,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = app.http.get(audio_url(app, note)).bearer_auth(&user.token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(bytes)))
}

/// Asserts a 206 carrying `bytes[start..=end]` of the sample.
async fn assert_partial(response: Response, start: usize, end: usize) {
    let wav = sample_wav();
    assert_eq!(response.status().as_u16(), 206);
    assert_eq!(
        header(&response, "content-range").as_deref(),
        Some(format!("bytes {start}-{end}/{}", wav.len()).as_str())
    );
    assert_eq!(response.content_length(), Some((end - start + 1) as u64));
    assert_eq!(response.bytes().await.expect("body"), wav[start..=end]);
}

/// Asserts a 200 carrying the whole sample.
async fn assert_full(response: Response) {
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "content-range"), None);
    assert_eq!(response.bytes().await.expect("body"), sample_wav());
}

async fn create_link(user: &TestUser, note: &Note, body: Option<serde_json::Value>) -> Response {
    let request = user.post(&format!("/api/v1/notes/{}/link", note.id));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("request")
}

fn seconds_from_now(expires_at: &str) -> f64 {
    let at = OffsetDateTime::parse(expires_at, &Rfc3339).expect("expires_at is RFC 3339");
    (at - OffsetDateTime::now_utc()).as_seconds_f64()
}

async fn audio_answers_the_exact_bytes_with_its_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let wav = sample_wav();

    let response = get_audio(&app, &user, &note, &[]).await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("audio/wav")
    );
    assert_eq!(
        header(&response, "content-length"),
        Some(wav.len().to_string())
    );
    assert_eq!(header(&response, "etag"), Some(etag_of(&wav)));
    assert_eq!(note.sha256, hex::encode(Sha256::digest(&wav)));
    assert_eq!(header(&response, "accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(response.bytes().await.expect("body"), wav);
    app.stop().await;
}

async fn a_range_of_the_first_byte_answers_206_with_one_byte(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;

    assert_partial(
        get_audio(&app, &user, &note, &[("range", "bytes=0-0")]).await,
        0,
        0,
    )
    .await;
    app.stop().await;
}

async fn an_open_ended_range_answers_the_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let last = sample_wav().len() - 1;

    assert_partial(
        get_audio(&app, &user, &note, &[("range", "bytes=10-")]).await,
        10,
        last,
    )
    .await;
    app.stop().await;
}

async fn a_suffix_range_answers_the_last_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let size = sample_wav().len();

    assert_partial(
        get_audio(&app, &user, &note, &[("range", "bytes=-100")]).await,
        size - 100,
        size - 1,
    )
    .await;
    // A suffix longer than the file is the whole file, as a 206.
    let longer = format!("bytes=-{}", size + 50);
    assert_partial(
        get_audio(&app, &user, &note, &[("range", &longer)]).await,
        0,
        size - 1,
    )
    .await;
    app.stop().await;
}

async fn a_range_past_the_end_is_clamped(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let size = sample_wav().len();

    let past = format!("bytes=0-{}", size + 1000);
    assert_partial(
        get_audio(&app, &user, &note, &[("range", &past)]).await,
        0,
        size - 1,
    )
    .await;
    let tail = format!("bytes={}-{}", size - 5, size);
    assert_partial(
        get_audio(&app, &user, &note, &[("range", &tail)]).await,
        size - 5,
        size - 1,
    )
    .await;
    app.stop().await;
}

async fn a_range_starting_at_the_end_answers_416(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let size = sample_wav().len();

    for range in [
        format!("bytes={size}-"),
        format!("bytes={}-{}", size + 10, size + 20),
    ] {
        let response = get_audio(&app, &user, &note, &[("range", &range)]).await;
        assert_eq!(
            header(&response, "content-range"),
            Some(format!("bytes */{size}")),
            "{range}"
        );
        assert_problem(response, 416, "range_not_satisfiable").await;
    }
    app.stop().await;
}

async fn a_zero_length_suffix_range_answers_416(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let size = sample_wav().len();

    let response = get_audio(&app, &user, &note, &[("range", "bytes=-0")]).await;

    assert_eq!(
        header(&response, "content-range"),
        Some(format!("bytes */{size}"))
    );
    assert_problem(response, 416, "range_not_satisfiable").await;
    app.stop().await;
}

async fn a_malformed_range_answers_the_whole_file(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;

    for range in [
        "bytes=abc",
        "bytes=",
        "bytes=-",
        "bytes=5-2",
        "bytes=x-10",
        "items=0-10",
        "0-10",
        "bytes=1-2-3",
        "bytes=--5",
    ] {
        assert_full(get_audio(&app, &user, &note, &[("range", range)]).await).await;
    }
    app.stop().await;
}

async fn a_multi_range_answers_the_whole_file(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;

    for range in ["bytes=0-1,5-6", "bytes=0-0, -1", "bytes=0-10,20-"] {
        assert_full(get_audio(&app, &user, &note, &[("range", range)]).await).await;
    }
    app.stop().await;
}

async fn if_none_match_with_the_etag_answers_304_without_a_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let etag = etag_of(&sample_wav());

    for validator in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let response = get_audio(&app, &user, &note, &[("if-none-match", &validator)]).await;
        assert_eq!(response.status().as_u16(), 304, "{validator}");
        assert_eq!(header(&response, "etag"), Some(etag.clone()));
        assert!(
            response.bytes().await.expect("body").is_empty(),
            "a 304 has no body"
        );
    }
    for validator in ["\"other\"", "W/\"other\"", "\"\""] {
        assert_full(get_audio(&app, &user, &note, &[("if-none-match", validator)]).await).await;
    }
    app.stop().await;
}

async fn if_range_honours_the_range_only_when_it_matches(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let etag = etag_of(&sample_wav());

    let matching = get_audio(
        &app,
        &user,
        &note,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_partial(matching, 0, 9).await;

    let stale = get_audio(
        &app,
        &user,
        &note,
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
    )
    .await;
    assert_full(stale).await;
    app.stop().await;
}

async fn head_answers_the_headers_without_a_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let wav = sample_wav();

    let response = app
        .http
        .head(audio_url(&app, &note))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("request");

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "content-length"),
        Some(wav.len().to_string())
    );
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("audio/wav")
    );
    assert_eq!(header(&response, "etag"), Some(etag_of(&wav)));
    assert_eq!(header(&response, "accept-ranges").as_deref(), Some("bytes"));
    assert!(response.bytes().await.expect("body").is_empty());
    app.stop().await;
}

async fn an_access_token_in_the_query_works_without_a_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;

    let response = app
        .http
        .get(audio_url(&app, &note))
        .query(&[("access_token", &user.token)])
        .send()
        .await
        .expect("request");
    assert_full(response).await;

    let garbage = app
        .http
        .get(audio_url(&app, &note))
        .query(&[("access_token", "garbage")])
        .send()
        .await
        .expect("request");
    assert_problem(garbage, 401, "unauthorized").await;
    app.stop().await;
}

async fn a_signed_link_serves_the_audio_to_anyone(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let anyone = reqwest::Client::new();

    for (body, lifetime) in [
        (None, 3600.0),
        (Some(json!({})), 3600.0),
        (Some(json!({"expires_in": 60})), 60.0),
        // JSON has one number type: clients that hold numbers as floats send these.
        (Some(json!({"expires_in": 60.0})), 60.0),
        (Some(serde_json::Value::Null), 3600.0),
    ] {
        let response = create_link(&user, &note, body.clone()).await;
        assert_eq!(response.status().as_u16(), 200, "{body:?}");
        let link: SignedLink = response.json().await.expect("link");
        assert!(
            link.url.starts_with(&format!("{}/", app.base)),
            "an absolute URL: {}",
            link.url
        );
        let left = seconds_from_now(&link.expires_at);
        assert!(
            left > lifetime - 60.0 && left <= lifetime + 1.0,
            "{body:?}: expires in {left} s"
        );

        assert_full(anyone.get(&link.url).send().await.expect("request")).await;
        assert_partial(
            anyone
                .get(&link.url)
                .header("range", "bytes=4-7")
                .send()
                .await
                .expect("request"),
            4,
            7,
        )
        .await;
    }
    app.stop().await;
}

async fn a_link_lifetime_outside_one_second_to_seven_days_answers_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;

    for expires_in in [
        json!(0),
        json!(604_801),
        json!(-1),
        json!("soon"),
        json!(1.5),
    ] {
        let response = create_link(&user, &note, Some(json!({"expires_in": expires_in}))).await;
        assert_problem(response, 400, "validation").await;
    }
    for expires_in in [1, 604_800] {
        let response = create_link(&user, &note, Some(json!({"expires_in": expires_in}))).await;
        assert_eq!(response.status().as_u16(), 200, "{expires_in} s is allowed");
    }
    app.stop().await;
}

async fn a_link_answers_403_once_it_has_expired(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    let link = user
        .client
        .create_link(
            &note.id,
            &LinkRequest {
                expires_in: Some(1),
                rendition: None,
            },
        )
        .await
        .expect("link");
    let left = seconds_from_now(&link.expires_at);
    assert!(left <= 1.0, "expires within its second: {left} s");

    // Not a timing assertion: wait until expires_at has passed, whenever that is.
    tokio::time::sleep(Duration::from_secs_f64(left.max(0.0) + 0.2)).await;

    assert_problem(
        reqwest::get(&link.url).await.expect("request"),
        403,
        "forbidden",
    )
    .await;
    app.stop().await;
}

async fn a_name_with_a_path_and_a_quote_is_served_safely(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "../../etc/pass\"wd.wav").await;
    assert_eq!(note.name, "pass\"wd.wav");

    let response = get_audio(&app, &user, &note, &[]).await;

    assert_eq!(
        header(&response, "content-disposition").as_deref(),
        Some("inline; filename=\"pass_wd.wav\"")
    );
    app.stop().await;
}

async fn a_non_ascii_name_gets_an_rfc_8187_filename_and_an_ascii_fallback(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "mémo 日本.wav").await;
    assert_eq!(note.name, "mémo 日本.wav");

    let response = get_audio(&app, &user, &note, &[]).await;

    let disposition = header(&response, "content-disposition").expect("Content-Disposition");
    assert!(disposition.starts_with("inline;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''m%C3%A9mo%20%E6%97%A5%E6%9C%AC.wav"),
        "{disposition}"
    );
    let fallback = disposition
        .split("filename=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an ASCII filename");
    assert!(
        fallback.is_ascii() && fallback.starts_with('m') && fallback.ends_with(".wav"),
        "{disposition}"
    );
    assert!(
        !fallback.chars().any(|c| c.is_ascii_control() || c == '\\'),
        "{disposition}"
    );
    app.stop().await;
}

async fn an_unknown_rendition_answers_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;

    for rendition in ["flac", "wav", "../original"] {
        let response = app
            .http
            .get(audio_url(&app, &note))
            .bearer_auth(&user.token)
            .query(&[("rendition", rendition)])
            .send()
            .await
            .expect("request");
        assert_problem(response, 400, "validation").await;
    }
    let link = create_link(&user, &note, Some(json!({"rendition": "flac"}))).await;
    assert_problem(link, 400, "validation").await;
    app.stop().await;
}

/// No correction was asked for, so no corrected audio is ever made.
async fn a_rendition_not_yet_made_answers_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, note) = with_note(&app, "memo.wav").await;
    assert!(note.renditions.is_empty(), "{:?}", note.renditions);

    let response = app
        .http
        .get(audio_url(&app, &note))
        .bearer_auth(&user.token)
        .query(&[("rendition", "corrected")])
        .send()
        .await
        .expect("request");

    assert_problem(response, 404, "not_found").await;
    app.stop().await;
}

backend_tests!(
    audio_answers_the_exact_bytes_with_its_headers,
    a_range_of_the_first_byte_answers_206_with_one_byte,
    an_open_ended_range_answers_the_rest,
    a_suffix_range_answers_the_last_bytes,
    a_range_past_the_end_is_clamped,
    a_range_starting_at_the_end_answers_416,
    a_zero_length_suffix_range_answers_416,
    a_malformed_range_answers_the_whole_file,
    a_multi_range_answers_the_whole_file,
    if_none_match_with_the_etag_answers_304_without_a_body,
    if_range_honours_the_range_only_when_it_matches,
    head_answers_the_headers_without_a_body,
    an_access_token_in_the_query_works_without_a_header,
    a_signed_link_serves_the_audio_to_anyone,
    a_link_lifetime_outside_one_second_to_seven_days_answers_400,
    a_link_answers_403_once_it_has_expired,
    a_name_with_a_path_and_a_quote_is_served_safely,
    a_non_ascii_name_gets_an_rfc_8187_filename_and_an_ascii_fallback,
    an_unknown_rendition_answers_400,
    a_rendition_not_yet_made_answers_404,
);
