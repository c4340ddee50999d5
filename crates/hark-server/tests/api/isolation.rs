//! Isolation: on every route that names a note, the owner succeeds, another user gets the
//! same 404 as for a missing note, and missing, expired or tampered credentials get 401;
//! a tampered signed link gets 403.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hark_client::UploadOptions;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Backend, JWT_SECRET, TestApp, TestUser, assert_problem, sample_wav, spawn_app,
};

const NAME: &str = "alice-secret.wav";

/// Every route that names one note, by id or (seed 004) by name. `Delete` comes last, so a
/// sweep that succeeds ends with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Note,
    Audio,
    AudioHead,
    Link,
    Info,
    Download,
    Delete,
}

const ROUTES: [Route; 7] = [
    Route::Note,
    Route::Audio,
    Route::AudioHead,
    Route::Link,
    Route::Info,
    Route::Download,
    Route::Delete,
];

fn request(app: &TestApp, route: Route, id: &str, name: &str) -> reqwest::RequestBuilder {
    let note = app.url(&format!("/api/v1/notes/{id}"));
    match route {
        Route::Note => app.http.get(note),
        Route::Audio => app.http.get(format!("{note}/audio")),
        Route::AudioHead => app.http.head(format!("{note}/audio")),
        Route::Link => app
            .http
            .post(format!("{note}/link"))
            .json(&json!({"expires_in": 60})),
        Route::Info => app.http.get(app.url("/info")).query(&[("name", name)]),
        Route::Download => app.http.get(app.url("/download")).query(&[("name", name)]),
        Route::Delete => app.http.delete(note),
    }
}

async fn send(
    app: &TestApp,
    route: Route,
    id: &str,
    name: &str,
    bearer: Option<&str>,
) -> reqwest::Response {
    let builder = request(app, route, id, name);
    let builder = match bearer {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    };
    builder.send().await.expect("request")
}

/// A refusal: the status for HEAD (which has no body), the whole problem otherwise.
async fn assert_refused(response: reqwest::Response, route: Route, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status, "{route:?}");
    if route != Route::AudioHead {
        assert_problem(response, status, code).await;
    }
}

async fn assert_every_route_refused(
    app: &TestApp,
    id: &str,
    bearer: Option<&str>,
    status: u16,
    code: &str,
) {
    for route in ROUTES {
        assert_refused(
            send(app, route, id, NAME, bearer).await,
            route,
            status,
            code,
        )
        .await;
    }
}

/// Checks that a route worked for the note's owner.
async fn assert_success(response: reqwest::Response, route: Route, id: &str) {
    let status = response.status().as_u16();
    let expected = if route == Route::Delete { 204 } else { 200 };
    assert_eq!(status, expected, "{route:?}");
    match route {
        Route::Note | Route::Info => {
            let note: Value = response.json().await.expect("note");
            assert_eq!(note["id"], id, "{route:?}");
        }
        Route::Audio | Route::Download => assert_eq!(
            response.bytes().await.expect("body"),
            sample_wav(),
            "{route:?}"
        ),
        Route::AudioHead => {
            let length = response
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            assert_eq!(length, Some(sample_wav().len().to_string()));
        }
        Route::Link => {
            let link: Value = response.json().await.expect("link");
            assert!(
                link["url"].as_str().is_some_and(|u| u.contains(id)),
                "{link}"
            );
        }
        Route::Delete => {}
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An HS256 JWT made by hand, the way `jsonwebtoken` makes them.
fn sign_jwt(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).expect("header"));
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
    let signing_input = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// A user token signed with the server's secret that expires at `exp`.
fn forge_token(user_id: &str, exp: u64) -> String {
    let claims =
        json!({"sub": user_id, "role": "user", "iat": now() - 3600, "exp": exp, "iss": "hark"});
    sign_jwt(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims,
        JWT_SECRET.as_bytes(),
    )
}

/// Replaces one character of the signature (the first: all six of its bits count).
fn flip_signature(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').expect("a JWT");
    let mut sig: Vec<char> = sig.chars().collect();
    sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", sig.into_iter().collect::<String>())
}

/// Alice, Bob, and Alice's note (Bob has one of his own, of another name).
async fn alice_and_bob(app: &TestApp) -> (TestUser, TestUser, String) {
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let options = UploadOptions {
        name: Some(NAME.into()),
        ..Default::default()
    };
    let note = alice
        .client
        .upload_bytes(sample_wav(), &options)
        .await
        .expect("upload");
    let bobs = UploadOptions {
        name: Some("bob.wav".into()),
        ..Default::default()
    };
    bob.client
        .upload_bytes(sample_wav(), &bobs)
        .await
        .expect("upload");
    (alice, bob, note.id)
}

async fn the_owner_reaches_every_note_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _bob, id) = alice_and_bob(&app).await;

    for route in ROUTES {
        assert_success(
            send(&app, route, &id, NAME, Some(&alice.token)).await,
            route,
            &id,
        )
        .await;
    }

    assert_problem(
        send(&app, Route::Note, &id, NAME, Some(&alice.token)).await,
        404,
        "not_found",
    )
    .await;
    app.stop().await;
}

async fn another_users_note_answers_404_like_a_missing_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob, id) = alice_and_bob(&app).await;
    let missing_id = uuid::Uuid::now_v7().to_string();

    for route in ROUTES {
        let others = send(&app, route, &id, NAME, Some(&bob.token)).await;
        assert_eq!(others.status().as_u16(), 404, "{route:?}");
        let content_type = others.headers().get("content-type").cloned();
        let others = others.bytes().await.expect("body");
        if route != Route::AudioHead {
            let problem: Value = serde_json::from_slice(&others).expect("problem");
            assert_eq!(problem["code"], "not_found", "{route:?}");
        }
        for (missing_id, missing_name) in [
            (missing_id.as_str(), "nobody-has-this.wav"),
            ("not-a-note-id", "no-such-note.wav"),
        ] {
            let missing = send(&app, route, missing_id, missing_name, Some(&bob.token)).await;
            assert_eq!(missing.status().as_u16(), 404, "{route:?} {missing_id}");
            assert_eq!(
                missing.headers().get("content-type").cloned(),
                content_type,
                "{route:?} {missing_id}"
            );
            let missing = missing.bytes().await.expect("body");
            assert_eq!(
                others, missing,
                "{route:?}: another user's note must look exactly like a missing one"
            );
        }
    }
    // The token in the query string (for players) is no way around it either.
    let by_query = |note: &str| {
        app.http
            .get(app.url(&format!("/api/v1/notes/{note}/audio")))
            .query(&[("access_token", &bob.token)])
            .send()
    };
    let (others, missing) = (
        by_query(&id).await.expect("request"),
        by_query(&missing_id).await.expect("request"),
    );
    assert_eq!(others.status().as_u16(), 404);
    assert_eq!(
        others.bytes().await.expect("body"),
        missing.bytes().await.expect("body")
    );

    // Bob's delete did nothing.
    assert_eq!(
        alice.client.audio(&id).await.expect("still there"),
        sample_wav()
    );
    app.stop().await;
}

async fn anonymous_callers_get_401_on_every_note_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _bob, id) = alice_and_bob(&app).await;

    assert_every_route_refused(&app, &id, None, 401, "unauthorized").await;

    assert_eq!(
        alice.client.audio(&id).await.expect("still there"),
        sample_wav()
    );
    app.stop().await;
}

async fn a_forged_token_that_has_not_expired_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _bob, id) = alice_and_bob(&app).await;
    let token = forge_token(&alice.id, now() + 600);

    for route in ROUTES {
        assert_success(send(&app, route, &id, NAME, Some(&token)).await, route, &id).await;
    }
    app.stop().await;
}

async fn an_expired_token_gets_401_on_every_note_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _bob, id) = alice_and_bob(&app).await;
    let expired = forge_token(&alice.id, now() - 10);

    assert_every_route_refused(&app, &id, Some(&expired), 401, "unauthorized").await;
    let verify = app
        .http
        .get(app.url("/token/verify"))
        .bearer_auth(&expired)
        .send()
        .await
        .expect("request");
    assert_problem(verify, 401, "unauthorized").await;

    assert_eq!(
        alice.client.audio(&id).await.expect("still there"),
        sample_wav()
    );
    app.stop().await;
}

async fn a_tampered_or_foreign_token_gets_401_on_every_note_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _bob, id) = alice_and_bob(&app).await;
    let unsigned_claims =
        json!({"sub": alice.id, "role": "user", "iat": now(), "exp": now() + 600, "iss": "hark"});
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&unsigned_claims).expect("claims"))
    );
    let tokens = [
        flip_signature(&alice.token),
        flip_signature(&forge_token(&alice.id, now() + 600)),
        sign_jwt(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &unsigned_claims,
            b"another secret",
        ),
        unsigned,
    ];

    for token in &tokens {
        assert_every_route_refused(&app, &id, Some(token), 401, "unauthorized").await;
    }

    assert_eq!(
        alice.client.audio(&id).await.expect("still there"),
        sample_wav()
    );
    app.stop().await;
}

/// The link's URL with one query parameter set (or added).
fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut url = reqwest::Url::parse(url).expect("absolute URL");
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push((key.to_owned(), value.to_owned()));
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

fn param(url: &str, key: &str) -> String {
    let url = reqwest::Url::parse(url).expect("absolute URL");
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{key} in {url}"))
}

async fn a_signed_link_with_a_tampered_signature_or_expiry_answers_403(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _bob, id) = alice_and_bob(&app).await;
    let other = alice
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload")
        .id;
    let link = alice
        .client
        .create_link(
            &id,
            &hark_api::LinkRequest {
                expires_in: Some(600),
                rendition: None,
            },
        )
        .await
        .expect("link");
    let genuine = app.http.get(&link.url).send().await.expect("request");
    assert_eq!(genuine.status().as_u16(), 200, "the untouched link works");

    let sig = param(&link.url, "sig");
    let mut flipped: Vec<char> = sig.chars().collect();
    flipped[0] = if flipped[0] == 'A' { 'B' } else { 'A' };
    let expires: i64 = param(&link.url, "expires").parse().expect("expires");
    let tampered = [
        with_param(&link.url, "sig", &flipped.into_iter().collect::<String>()),
        with_param(&link.url, "expires", &(expires + 3600).to_string()),
        with_param(&link.url, "expires", &(expires - 1).to_string()),
        with_param(&link.url, "rendition", "mp3"),
        link.url.replace(&id, &other),
    ];

    for url in &tampered {
        assert_problem(
            app.http.get(url).send().await.expect("request"),
            403,
            "forbidden",
        )
        .await;
        assert_eq!(
            app.http
                .head(url)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16(),
            403,
            "HEAD {url}"
        );
    }
    app.stop().await;
}

async fn a_signed_link_with_a_mangled_expiry_answers_403(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _bob, id) = alice_and_bob(&app).await;
    let link = alice
        .client
        .create_link(
            &id,
            &hark_api::LinkRequest {
                expires_in: Some(600),
                rendition: None,
            },
        )
        .await
        .expect("link");

    // Still a tampered link, however the expiry was changed: not a malformed request.
    for expires in ["soon", "99999999999999999999999", "1e10", ""] {
        let url = with_param(&link.url, "expires", expires);
        assert_problem(
            app.http.get(&url).send().await.expect("request"),
            403,
            "forbidden",
        )
        .await;
    }
    app.stop().await;
}

async fn another_users_list_does_not_include_the_note(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob, id) = alice_and_bob(&app).await;

    let ids = |list: Value| -> Vec<String> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|n| n["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let list = |user: &TestUser, path: &str, query: Vec<(&'static str, &'static str)>| {
        app.http
            .get(app.url(path))
            .bearer_auth(user.token.clone())
            .query(&query)
            .send()
    };
    for path in ["/api/v1/notes", "/list"] {
        for query in [
            vec![],
            vec![("name", NAME)],
            vec![("name", "alice")],
            vec![("sort", "name")],
        ] {
            let response = list(&bob, path, query.clone()).await.expect("request");
            assert_eq!(response.status().as_u16(), 200, "{path} {query:?}");
            let bobs = ids(response.json().await.expect("list"));
            assert!(
                !bobs.contains(&id),
                "{path} {query:?} shows Alice's note to Bob"
            );
        }
        let bobs = ids(list(&bob, path, vec![])
            .await
            .expect("request")
            .json()
            .await
            .expect("list"));
        assert_eq!(bobs.len(), 1, "Bob sees his own note");
        let alices = ids(list(&alice, path, vec![])
            .await
            .expect("request")
            .json()
            .await
            .expect("list"));
        assert_eq!(alices, vec![id.clone()]);
    }
    app.stop().await;
}

backend_tests!(
    the_owner_reaches_every_note_route,
    another_users_note_answers_404_like_a_missing_one,
    anonymous_callers_get_401_on_every_note_route,
    a_forged_token_that_has_not_expired_is_accepted,
    an_expired_token_gets_401_on_every_note_route,
    a_tampered_or_foreign_token_gets_401_on_every_note_route,
    a_signed_link_with_a_tampered_signature_or_expiry_answers_403,
    a_signed_link_with_a_mangled_expiry_answers_403,
    another_users_list_does_not_include_the_note,
);
