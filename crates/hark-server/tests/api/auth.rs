//! Accounts and credentials: registration, sign-in and its throttling, token verification,
//! service tokens, personal API keys and closed registration.

use hark_api::{Problem, Role};
use hark_server::config::ServiceClient;
use hark_server::db::NewUser;
use hark_server::domain::{Timestamp, UserId};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_problem, sample_wav, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/users"))
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

async fn problem(response: reqwest::Response) -> Problem {
    response.json().await.expect("problem body")
}

async fn get_with(app: &TestApp, path: &str, bearer: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("request")
}

/// Adds a user straight to the app's database, for when registration over HTTP is closed.
async fn insert_user(app: &TestApp, email: &str, role: Role) {
    use secrecy::ExposeSecret;
    let repos = hark_server::db::connect(app.config.database_url.expose_secret(), false)
        .await
        .expect("database");
    let new = NewUser {
        id: UserId::generate(),
        email: email.to_owned(),
        password_hash: hark_server::auth::hash_secret(PASSWORD).expect("hash"),
        role,
        created_at: Timestamp::now(),
    };
    repos.users.create_user(new).await.expect("insert user");
}

async fn token_for(app: &TestApp, email: &str) -> String {
    app.anonymous
        .sign_in(email, PASSWORD)
        .await
        .expect("sign in")
        .access_token
}

fn service_app_config(config: &mut hark_server::Config) {
    let client = |id: &str, scopes: &[&str]| ServiceClient {
        client_id: id.into(),
        secret_hash: hark_server::auth::hash_secret("s3rvice-secret").expect("hash"),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    config.auth.service_clients = vec![
        client("transcoder", &["notes:read", "jobs:write"]),
        client("mailer", &[]),
    ];
}

async fn registering_answers_201_with_the_user_role(backend: Backend) {
    let app = spawn_app(backend).await;

    // Asking for a role does not grant it: registration always makes plain users.
    let response = register(
        &app,
        json!({"email": "Ann@Example.com", "password": PASSWORD, "role": "admin"}),
    )
    .await;

    assert_eq!(response.status().as_u16(), 201);
    let user: Value = response.json().await.expect("user");
    assert_eq!(user["role"], "user");
    assert_eq!(
        user["email"].as_str().map(str::to_lowercase).as_deref(),
        Some("ann@example.com")
    );
    assert!(
        user["id"]
            .as_str()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
        "id is a UUID: {user}"
    );
    assert!(user["created_at"].is_string());
    assert!(
        user.get("password").is_none() && user.get("password_hash").is_none(),
        "no secret in {user}"
    );
    app.stop().await;
}

async fn registering_an_email_twice_in_any_case_answers_409(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = register(
        &app,
        json!({"email": "ann@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(first.status().as_u16(), 201);

    for email in ["ann@example.com", "ANN@Example.COM", " Ann@example.com "] {
        let again = register(
            &app,
            json!({"email": email, "password": "another password"}),
        )
        .await;
        assert_problem(again, 409, "conflict").await;
    }

    // The first account is untouched.
    assert_eq!(
        sign_in(&app, "ann@example.com", PASSWORD)
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await;
}

async fn registering_a_bad_email_or_a_short_password_answers_400(backend: Backend) {
    let app = spawn_app(backend).await;

    for email in [
        "",
        "not-an-email",
        "@example.com",
        "ann@",
        "ann smith@example.com",
    ] {
        let response = register(&app, json!({"email": email, "password": PASSWORD})).await;
        assert_problem(response, 400, "validation").await;
    }
    for password in ["", "short", "1234567"] {
        let response = register(
            &app,
            json!({"email": "ann@example.com", "password": password}),
        )
        .await;
        assert_problem(response, 400, "validation").await;
    }
    let missing = register(&app, json!({"email": "ann@example.com"})).await;
    assert_problem(missing, 400, "validation").await;

    // None of them made an account.
    assert_eq!(
        register(
            &app,
            json!({"email": "ann@example.com", "password": PASSWORD})
        )
        .await
        .status()
        .as_u16(),
        201
    );
    app.stop().await;
}

async fn signing_in_answers_a_bearer_token(backend: Backend) {
    let app = spawn_app(backend).await;
    register(
        &app,
        json!({"email": "ann@example.com", "password": PASSWORD}),
    )
    .await;

    let response = sign_in(&app, "ANN@example.com", PASSWORD).await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("token");
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");
    app.stop().await;
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("ann@example.com").await;

    let wrong_password = sign_in(&app, "ann@example.com", "not the password").await;
    let unknown_email = sign_in(&app, "nobody@example.com", "not the password").await;

    assert_eq!(wrong_password.status().as_u16(), 401);
    assert_eq!(unknown_email.status().as_u16(), 401);
    let (wrong_password, unknown_email) =
        (problem(wrong_password).await, problem(unknown_email).await);
    assert_eq!(
        serde_json::to_value(wrong_password.code).expect("code"),
        json!("unauthorized")
    );
    assert_eq!(
        wrong_password, unknown_email,
        "the answers must not tell which accounts exist"
    );
    app.stop().await;
}

async fn five_failures_for_one_email_refuse_even_the_right_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("ann@example.com").await;
    app.user("bob@example.com").await;

    // Changing the case of the email does not escape the count.
    for email in [
        "ann@example.com",
        "ANN@example.com",
        "Ann@Example.com",
        "ann@EXAMPLE.com",
        "ann@example.com",
    ] {
        assert_problem(
            sign_in(&app, email, "not the password").await,
            401,
            "unauthorized",
        )
        .await;
    }
    let refused = sign_in(&app, "ann@example.com", PASSWORD).await;

    assert_eq!(refused.status().as_u16(), 429);
    let retry_after = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("Retry-After");
    let delay_or_date = retry_after.parse::<u64>().is_ok_and(|s| s > 0)
        || httpdate::parse_http_date(&retry_after).is_ok();
    assert!(delay_or_date, "Retry-After: {retry_after}");
    assert_problem(refused, 429, "too_many_requests").await;
    assert_eq!(
        sign_in(&app, "ann@example.com", PASSWORD)
            .await
            .status()
            .as_u16(),
        429,
        "still refused"
    );
    // Another account is not locked out by Ann's failures.
    assert_eq!(
        sign_in(&app, "bob@example.com", PASSWORD)
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await;
}

async fn verify_shows_the_claims_of_a_user_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;

    let response = get_with(&app, "/token/verify", &ann.token).await;

    assert_eq!(response.status().as_u16(), 200);
    let claims: Value = response.json().await.expect("claims");
    assert_eq!(claims["sub"], ann.id.as_str());
    assert_eq!(claims["role"], "user");
    assert!(
        claims["exp"].as_u64().is_some_and(|exp| exp > now()),
        "exp is in the future: {claims}"
    );
    assert!(
        claims.get("scopes").is_none_or(Value::is_null),
        "a user token has no scopes: {claims}"
    );
    app.stop().await;
}

async fn verify_refuses_garbage_and_missing_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;

    for bearer in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"] {
        assert_problem(
            get_with(&app, "/token/verify", bearer).await,
            401,
            "unauthorized",
        )
        .await;
    }
    let missing = app
        .http
        .get(app.url("/token/verify"))
        .send()
        .await
        .expect("request");
    assert_problem(missing, 401, "unauthorized").await;
    let basic = app
        .http
        .get(app.url("/token/verify"))
        .basic_auth(&ann.email, Some(PASSWORD))
        .send()
        .await
        .expect("request");
    assert_problem(basic, 401, "unauthorized").await;
    app.stop().await;
}

async fn a_service_client_gets_a_token_with_its_scopes(backend: Backend) {
    let app = spawn_app_with(backend, service_app_config).await;

    let response = app
        .http
        .post(app.url("/token/s2s"))
        .json(&json!({"client_id": "transcoder", "client_secret": "s3rvice-secret"}))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("token");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().expect("access_token");
    let claims: Value = get_with(&app, "/token/verify", token)
        .await
        .json()
        .await
        .expect("claims");
    assert_eq!(claims["scopes"], json!(["notes:read", "jobs:write"]));
    assert!(
        claims["sub"].as_str().is_some_and(|s| !s.is_empty()),
        "{claims}"
    );
    assert!(
        claims.get("role").is_none_or(Value::is_null),
        "a service token has no user role: {claims}"
    );
    assert!(claims["exp"].as_u64().is_some_and(|exp| exp > now()));
    app.stop().await;
}

async fn a_wrong_service_secret_answers_401(backend: Backend) {
    let app = spawn_app_with(backend, service_app_config).await;

    let wrong_secret = app
        .anonymous
        .sign_in_service("transcoder", "not-the-secret")
        .await
        .expect_err("refused");
    let unknown_client = app
        .anonymous
        .sign_in_service("nobody", "s3rvice-secret")
        .await
        .expect_err("refused");

    for error in [wrong_secret, unknown_client] {
        let hark_client::ClientError::Api(problem) = error else {
            panic!("not a problem: {error}")
        };
        assert_eq!(problem.status, 401);
        assert_eq!(
            serde_json::to_value(problem.code).expect("code"),
            json!("unauthorized")
        );
    }
    app.stop().await;
}

async fn a_service_token_reads_notes_only_with_the_notes_read_scope(backend: Backend) {
    let app = spawn_app_with(backend, service_app_config).await;
    let ann = app.user("ann@example.com").await;
    let note = ann
        .client
        .upload_bytes(sample_wav(), &Default::default())
        .await
        .expect("upload");
    let token = |client: &'static str| {
        let app = &app;
        async move {
            app.anonymous
                .sign_in_service(client, "s3rvice-secret")
                .await
                .expect("service token")
                .access_token
        }
    };
    let (reader, unscoped) = (token("transcoder").await, token("mailer").await);
    let readable = [
        format!("/api/v1/notes/{}", note.id),
        format!("/api/v1/notes/{}/audio", note.id),
    ];

    for path in &readable {
        assert_eq!(
            get_with(&app, path, &reader).await.status().as_u16(),
            200,
            "{path}"
        );
        assert_problem(get_with(&app, path, &unscoped).await, 403, "forbidden").await;
    }
    let by_query = format!("/api/v1/notes/{}/audio?access_token={reader}", note.id);
    let response = app
        .http
        .get(app.url(&by_query))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let link = app
        .http
        .post(app.url(&format!("/api/v1/notes/{}/link", note.id)))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("request");
    assert_eq!(link.status().as_u16(), 200);
    // A service has no notes of its own: listing, uploading and deleting are for users.
    assert_problem(
        get_with(&app, "/api/v1/notes", &reader).await,
        403,
        "forbidden",
    )
    .await;
    let delete = app
        .http
        .delete(app.url(&format!("/api/v1/notes/{}", note.id)))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("request");
    assert_problem(delete, 403, "forbidden").await;
    // Last: the refused upload's body is left unread, which ends its connection.
    let upload = app
        .http
        .post(app.url("/api/v1/notes"))
        .bearer_auth(&reader)
        .body(sample_wav())
        .send()
        .await
        .expect("request");
    assert_problem(upload, 403, "forbidden").await;
    app.stop().await;
}

async fn an_api_key_is_shown_once_and_works_as_a_bearer(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let note = ann
        .client
        .upload_bytes(sample_wav(), &Default::default())
        .await
        .expect("upload");

    let response = ann
        .post("/api/v1/api-keys")
        .json(&json!({"name": "laptop"}))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.expect("key");
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(!key.is_empty());
    assert_eq!(created["name"], "laptop");
    assert!(
        created["id"].is_string() && created["created_at"].is_string(),
        "{created}"
    );

    let list = get_with(&app, "/api/v1/api-keys", &ann.token).await;
    assert_eq!(list.status().as_u16(), 200);
    let list_text = list.text().await.expect("body");
    assert!(
        !list_text.contains(&key),
        "the key leaks in the list: {list_text}"
    );
    let list: Value = serde_json::from_str(&list_text).expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], created["id"]);
    assert_eq!(items[0]["name"], "laptop");
    assert!(
        items[0].get("key").is_none(),
        "no key field at all: {}",
        items[0]
    );

    let notes = get_with(&app, "/api/v1/notes", &key).await;
    assert_eq!(notes.status().as_u16(), 200);
    let notes: Value = notes.json().await.expect("notes");
    assert_eq!(
        notes["items"][0]["id"],
        note.id.as_str(),
        "the key acts as its owner"
    );
    assert_eq!(
        get_with(&app, &format!("/api/v1/notes/{}/audio", note.id), &key)
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await;
}

async fn a_deleted_api_key_stops_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let created = ann.client.create_api_key("laptop").await.expect("key");
    assert_eq!(
        get_with(&app, "/api/v1/notes", &created.key)
            .await
            .status()
            .as_u16(),
        200
    );

    let deleted = ann
        .delete(&format!("/api/v1/api-keys/{}", created.id))
        .send()
        .await
        .expect("request");

    assert_eq!(deleted.status().as_u16(), 204);
    assert_problem(
        get_with(&app, "/api/v1/notes", &created.key).await,
        401,
        "unauthorized",
    )
    .await;
    assert!(
        ann.client
            .list_api_keys()
            .await
            .expect("list")
            .items
            .is_empty()
    );
    let again = ann
        .delete(&format!("/api/v1/api-keys/{}", created.id))
        .send()
        .await
        .expect("request");
    assert_problem(again, 404, "not_found").await;
    app.stop().await;
}

async fn another_users_api_key_answers_404_like_a_missing_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let anns_key = ann.client.create_api_key("laptop").await.expect("key");

    let delete = |id: String| bob.delete(&format!("/api/v1/api-keys/{id}")).send();
    let others = delete(anns_key.id.clone()).await.expect("request");
    let missing = delete(uuid::Uuid::now_v7().to_string())
        .await
        .expect("request");

    assert_eq!(others.status().as_u16(), 404);
    assert_eq!(missing.status().as_u16(), 404);
    let (others, missing) = (problem(others).await, problem(missing).await);
    assert_eq!(others, missing);
    assert_eq!(
        serde_json::to_value(others.code).expect("code"),
        json!("not_found")
    );
    assert!(
        bob.client
            .list_api_keys()
            .await
            .expect("list")
            .items
            .is_empty(),
        "Bob does not see Ann's key"
    );
    assert_eq!(
        get_with(&app, "/api/v1/notes", &anns_key.key)
            .await
            .status()
            .as_u16(),
        200,
        "Ann's key still works"
    );
    app.stop().await;
}

async fn closed_registration_refuses_anonymous_callers_and_plain_users(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.auth.open_registration = false).await;
    insert_user(&app, "plain@example.com", Role::User).await;
    insert_user(&app, "admin@example.com", Role::Admin).await;
    let body = json!({"email": "new@example.com", "password": PASSWORD});

    let anonymous = register(&app, body.clone()).await;
    assert_problem(anonymous, 401, "unauthorized").await;

    let plain = token_for(&app, "plain@example.com").await;
    let by_plain_user = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&plain)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_problem(by_plain_user, 403, "forbidden").await;

    // Neither made the account; an admin can, and it is still a plain user.
    assert_eq!(
        sign_in(&app, "new@example.com", PASSWORD)
            .await
            .status()
            .as_u16(),
        401
    );
    let admin = token_for(&app, "admin@example.com").await;
    let by_admin = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(by_admin.status().as_u16(), 201);
    let user: Value = by_admin.json().await.expect("user");
    assert_eq!(user["role"], "user");
    assert_eq!(
        sign_in(&app, "new@example.com", PASSWORD)
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await;
}

backend_tests!(
    registering_answers_201_with_the_user_role,
    registering_an_email_twice_in_any_case_answers_409,
    registering_a_bad_email_or_a_short_password_answers_400,
    signing_in_answers_a_bearer_token,
    a_wrong_password_and_an_unknown_email_get_the_same_problem,
    five_failures_for_one_email_refuse_even_the_right_password,
    verify_shows_the_claims_of_a_user_token,
    verify_refuses_garbage_and_missing_tokens,
    a_service_client_gets_a_token_with_its_scopes,
    a_wrong_service_secret_answers_401,
    a_service_token_reads_notes_only_with_the_notes_read_scope,
    an_api_key_is_shown_once_and_works_as_a_bearer,
    a_deleted_api_key_stops_working,
    another_users_api_key_answers_404_like_a_missing_one,
    closed_registration_refuses_anonymous_callers_and_plain_users,
);
