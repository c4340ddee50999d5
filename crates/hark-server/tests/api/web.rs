//! The web UI's server side: pages, the session cookie and its CSRF token, sign-in, sign-out
//! and registration forms, embedded assets. What the pages do in a browser is tested in
//! tests/ui with Chromium.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, ETAG, IF_NONE_MATCH, LOCATION, SET_COOKIE};

use crate::helpers::{Backend, TestApp, assert_problem, sample_wav, spawn_app};

const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";

/// A client that shows redirects instead of following them, and keeps no cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn form(email: &str, password: &str) -> String {
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!("email={}&password={}", encode(email), encode(password))
}

/// A signed-in browser: its `Cookie` header and the CSRF token its pages carry.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &TestApp, email: &str) -> Session {
    let response = browser()
        .post(app.url("/signin"))
        .header(CONTENT_TYPE, FORM)
        .body(form(email, PASSWORD))
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&response).expect("a session cookie");
    let page = browser()
        .get(app.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("library")
        .text()
        .await
        .expect("page");
    Session {
        csrf: meta(&page, "csrf-token").expect("the page carries its CSRF token"),
        cookie,
    }
}

/// The `name=value` of the session cookie a response sets.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hark_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

fn meta(page: &str, name: &str) -> Option<String> {
    let marker = format!("<meta name=\"{name}\" content=\"");
    let start = page.find(&marker)? + marker.len();
    Some(page[start..].split('"').next()?.to_owned())
}

async fn pages_without_a_session_send_the_browser_to_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, next) in [
        ("/", "%2F"),
        ("/inbox", "%2Finbox"),
        ("/?status=ready&q=door", "%2F%3Fstatus%3Dready%26q%3Ddoor"),
        ("/notes/nope", "%2Fnotes%2Fnope"),
    ] {
        let response = browser().get(app.url(path)).send().await.expect("page");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], format!("/signin?next={next}"));
    }
    let signin = browser()
        .get(app.url("/signin"))
        .send()
        .await
        .expect("page");
    assert_eq!(signin.status(), StatusCode::OK);
    let html = signin.text().await.expect("html");
    assert!(
        html.contains("<label for=\"email\">Email</label>"),
        "{html}"
    );
    assert!(html.contains("<label for=\"password\">Password</label>"));
    assert!(html.contains(">Sign in</button>"));
    app.stop().await;
}

async fn signing_in_sets_an_http_only_same_site_cookie_and_goes_on(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("ann@example.com").await;

    let wrong = browser()
        .post(app.url("/signin"))
        .header(CONTENT_TYPE, FORM)
        .body(form("ann@example.com", "not the password"))
        .send()
        .await
        .expect("sign in");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&wrong).is_none());
    let html = wrong.text().await.expect("html");
    assert!(
        html.contains("role=\"alert\">invalid email or password"),
        "{html}"
    );
    assert!(
        html.contains("value=\"ann@example.com\""),
        "the email is kept"
    );

    let right = browser()
        .post(app.url("/signin?next=%2Finbox"))
        .header(CONTENT_TYPE, FORM)
        .body(form("ann@example.com", PASSWORD))
        .send()
        .await
        .expect("sign in");
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/inbox");
    let set = right.headers()[SET_COOKIE].to_str().expect("ascii");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }

    // Only a path of this site is somewhere to go on to.
    for next in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "%2F%09%2Fevil.example",
        "%2F%0A%2Fevil.example",
        "%2F%C3%A9",
    ] {
        let response = browser()
            .post(app.url(&format!("/signin?next={next}")))
            .header(CONTENT_TYPE, FORM)
            .body(form("ann@example.com", PASSWORD))
            .send()
            .await
            .expect("sign in");
        assert_eq!(response.headers()[LOCATION], "/", "{next}");
    }
    app.stop().await;
}

async fn the_session_cookie_reads_the_api_and_changes_it_only_with_its_csrf_token(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    app.user("bob@example.com").await;
    let session = sign_in(&app, "ann@example.com").await;
    let other = sign_in(&app, "bob@example.com").await;

    let me = browser()
        .get(app.url("/api/v1/users/me"))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        me.json::<serde_json::Value>().await.expect("json")["email"],
        "ann@example.com"
    );

    let create_key = |csrf: Option<&str>| {
        let mut request = browser()
            .post(app.url("/api/v1/api-keys"))
            .header(COOKIE, &session.cookie)
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"name":"laptop"}"#);
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        request.send()
    };
    let refused = [
        None,
        Some(""),
        Some("not-the-token"),
        Some(other.csrf.as_str()),
    ];
    for csrf in refused {
        let response = create_key(csrf).await.expect("request");
        let detail = assert_problem(response, 403, "forbidden").await;
        assert!(detail.contains("X-CSRF-Token"), "{detail}");
    }
    let keys = ann.get("/api/v1/api-keys").send().await.expect("keys");
    let keys: serde_json::Value = keys.json().await.expect("json");
    assert_eq!(
        keys["items"],
        serde_json::json!([]),
        "a refused request changes nothing"
    );

    let made = create_key(Some(&session.csrf)).await.expect("request");
    assert_eq!(made.status(), StatusCode::CREATED);

    // Uploads and deletions are state changes like any other.
    let upload = |csrf: &str| {
        browser()
            .post(app.url("/api/v1/notes?name=memo.wav"))
            .header(COOKIE, &session.cookie)
            .header("X-CSRF-Token", csrf)
            .body(sample_wav())
            .send()
    };
    assert_problem(upload("wrong").await.expect("upload"), 403, "forbidden").await;
    let note: serde_json::Value = {
        let response = upload(&session.csrf).await.expect("upload");
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    };
    let id = note["id"].as_str().expect("id");
    let delete = browser()
        .delete(app.url(&format!("/api/v1/notes/{id}")))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .expect("delete");
    assert_problem(delete, 403, "forbidden").await;
    let audio = browser()
        .get(app.url(&format!("/api/v1/notes/{id}/audio")))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .expect("audio");
    assert_eq!(
        audio.status(),
        StatusCode::OK,
        "a player reads the audio with the cookie"
    );

    // A bearer token still needs no CSRF token, with or without a cookie beside it.
    let with_bearer = ann
        .post("/api/v1/api-keys")
        .header(COOKIE, &other.cookie)
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .expect("request");
    assert_eq!(with_bearer.status(), StatusCode::CREATED);
    app.stop().await;
}

async fn another_users_note_page_is_the_not_found_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    app.user("bob@example.com").await;
    let note = ann
        .client
        .upload_bytes(sample_wav(), &Default::default())
        .await
        .expect("upload");
    let page = |session: &Session, id: &str| {
        browser()
            .get(app.url(&format!("/notes/{id}")))
            .header(COOKIE, &session.cookie)
            .send()
    };
    let ann_session = sign_in(&app, "ann@example.com").await;
    let bob_session = sign_in(&app, "bob@example.com").await;
    let own = page(&ann_session, &note.id).await.expect("page");
    assert_eq!(own.status(), StatusCode::OK);
    assert!(
        own.text()
            .await
            .expect("html")
            .contains(&format!("data-note=\"{}\"", note.id))
    );
    for (session, id) in [
        (&bob_session, note.id.as_str()),
        (&ann_session, "01a24d8e-0000-7000-8000-000000000000"),
        (&ann_session, "<script>"),
    ] {
        let response = page(session, id).await.expect("page");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let html = response.text().await.expect("html");
        assert!(html.contains("<h1>Not found</h1>"), "{html}");
        assert!(
            !html.contains("<script>"),
            "nothing from the address is echoed"
        );
    }
    app.stop().await;
}

async fn signing_out_needs_the_pages_token_and_clears_the_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("ann@example.com").await;
    let session = sign_in(&app, "ann@example.com").await;
    let sign_out = |csrf: &str| {
        browser()
            .post(app.url("/signout"))
            .header(COOKIE, &session.cookie)
            .header(CONTENT_TYPE, FORM)
            .body(format!("csrf={csrf}"))
            .send()
    };
    let forged = sign_out("forged").await.expect("sign out");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get(SET_COOKIE).is_none());

    let done = sign_out(&session.csrf).await.expect("sign out");
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[LOCATION], "/signin");
    let cleared = done.headers()[SET_COOKIE].to_str().expect("ascii");
    assert!(
        cleared.starts_with("hark_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // The session is over on the server too: a copy of the cookie no longer signs anyone in.
    let copied = browser()
        .get(app.url("/api/v1/users/me"))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .expect("me");
    assert_problem(copied, 401, "unauthorized").await;
    let page = browser()
        .get(app.url("/"))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);

    // A post without the cookie (another site's form: SameSite=Lax leaves it out) clears nothing.
    let cookieless = browser()
        .post(app.url("/signout"))
        .header(CONTENT_TYPE, FORM)
        .body("csrf=")
        .send()
        .await
        .expect("sign out");
    assert_eq!(cookieless.status(), StatusCode::SEE_OTHER);
    assert!(cookieless.headers().get(SET_COOKIE).is_none());
    app.stop().await;
}

async fn registering_in_the_browser_signs_the_new_user_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let register = |email: &str, password: &str| {
        browser()
            .post(app.url("/register"))
            .header(CONTENT_TYPE, FORM)
            .body(form(email, password))
            .send()
    };
    let made = register("cat@example.com", PASSWORD)
        .await
        .expect("register");
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&made).expect("signed in");
    let me = browser()
        .get(app.url("/api/v1/users/me"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("me");
    assert_eq!(
        me.json::<serde_json::Value>().await.expect("json")["email"],
        "cat@example.com"
    );

    let again = register("CAT@example.com", PASSWORD)
        .await
        .expect("register");
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(session_cookie(&again).is_none());
    let short = register("dan@example.com", "short")
        .await
        .expect("register");
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert!(short.text().await.expect("html").contains("role=\"alert\""));
    app.stop().await;
}

async fn assets_are_embedded_and_revalidate_by_etag(backend: Backend) {
    let app = spawn_app(backend).await;
    let script = browser()
        .get(app.url("/ui/app.js"))
        .send()
        .await
        .expect("asset");
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    let etag = script.headers()[ETAG].clone();
    let again = browser()
        .get(app.url("/ui/app.js"))
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("asset");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let missing = browser()
        .get(app.url("/ui/nope.js"))
        .send()
        .await
        .expect("asset");
    assert_problem(missing, 404, "not_found").await;
    app.stop().await;
}

async fn a_deleted_users_session_ends_with_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let session = sign_in(&app, "ann@example.com").await;
    let deleted = ann
        .delete(&format!("/api/v1/users/{}", ann.id))
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let me = browser()
        .get(app.url("/api/v1/users/me"))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .expect("me");
    assert_problem(me, 401, "unauthorized").await;
    app.stop().await;
}

async fn the_cookie_works_only_from_the_sites_own_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("ann@example.com").await;
    let session = sign_in(&app, "ann@example.com").await;
    let me = |site: Option<&'static str>| {
        let mut request = browser()
            .get(app.url("/api/v1/users/me"))
            .header(COOKIE, &session.cookie);
        if let Some(site) = site {
            request = request.header("Sec-Fetch-Site", site);
        }
        request.send()
    };
    for site in [None, Some("same-origin"), Some("none")] {
        assert_eq!(
            me(site).await.expect("me").status(),
            StatusCode::OK,
            "{site:?}"
        );
    }
    // A sibling subdomain is the same site to SameSite=Lax, but not this origin.
    for site in ["same-site", "cross-site"] {
        assert_problem(me(Some(site)).await.expect("me"), 403, "forbidden").await;
    }

    // Another site's forms neither sign a browser in nor register one.
    for path in ["/signin", "/register"] {
        let response = browser()
            .post(app.url(path))
            .header(CONTENT_TYPE, FORM)
            .header("Sec-Fetch-Site", "cross-site")
            .body(form("eve@example.com", PASSWORD))
            .send()
            .await
            .expect("form");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(session_cookie(&response).is_none(), "{path}");
    }

    // Two session cookies (one planted by a sibling subdomain) mean no session.
    let planted = browser()
        .get(app.url("/api/v1/users/me"))
        .header(COOKIE, format!("hark_session=planted; {}", session.cookie))
        .send()
        .await
        .expect("me");
    assert_problem(planted, 401, "unauthorized").await;
    app.stop().await;
}

backend_tests!(
    the_cookie_works_only_from_the_sites_own_pages,
    a_deleted_users_session_ends_with_the_account,
    pages_without_a_session_send_the_browser_to_sign_in,
    signing_in_sets_an_http_only_same_site_cookie_and_goes_on,
    the_session_cookie_reads_the_api_and_changes_it_only_with_its_csrf_token,
    another_users_note_page_is_the_not_found_page,
    signing_out_needs_the_pages_token_and_clears_the_cookie,
    registering_in_the_browser_signs_the_new_user_in,
    assets_are_embedded_and_revalidate_by_etag,
);
