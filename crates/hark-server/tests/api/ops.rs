//! Health, readiness, metrics, the OpenAPI document, and answers for routes that do not exist.

use crate::helpers::{Backend, assert_problem, sample_wav, spawn_app};

async fn health_and_readiness_answer_without_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        (&ready["database"], &ready["store"]),
        (&"ok".into(), &"ok".into())
    );
    assert!(
        ready.get("broker").is_none(),
        "no broker is configured: {ready}"
    );
    app.stop().await;
}

async fn readiness_fails_when_the_store_is_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    std::fs::remove_dir_all(&app.config.storage.blob_dir).expect("remove store");
    let ready = app.http.get(app.url("/readyz")).send().await.expect("send");
    assert_problem(ready, 503, "unavailable").await;
    app.stop().await;
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let note = user
        .client
        .upload_bytes(sample_wav(), &Default::default())
        .await
        .expect("upload");
    user.client.note(&note.id).await.expect("get");
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(
            "hark_http_requests_total{method=\"GET\",route=\"/api/v1/notes/{id}\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("hark_http_request_duration_seconds_bucket"));
    assert!(text.contains("hark_upload_bytes_total"));
    // The group committer's batches, in buckets of their own scale.
    for committed in [
        "hark_commit_batch_notes_bucket{le=\"1\"}",
        "hark_commit_flush_seconds_bucket{le=\"0.0005\"}",
        "hark_commit_transaction_seconds_bucket{le=\"0.0005\"}",
    ] {
        assert!(text.contains(committed), "{committed} in {text}");
    }
    app.stop().await;
}

async fn the_openapi_document_lists_every_route_and_the_docs_render(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: serde_json::Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/notes",
        "/api/v1/notes/{id}",
        "/api/v1/notes/{id}/audio",
        "/api/v1/notes/{id}/link",
        "/api/v1/users",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/{id}/deliveries",
        "/token",
        "/token/s2s",
        "/token/verify",
        "/post",
        "/list",
        "/download",
        "/info",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let docs = app.http.get(app.url("/docs/")).send().await.expect("send");
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.expect("html").contains("swagger"));
    app.stop().await;
}

async fn unknown_routes_and_methods_answer_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_problem(
        app.http
            .get(app.url("/nowhere"))
            .send()
            .await
            .expect("send"),
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.http.put(app.url("/token")).send().await.expect("send"),
        405,
        "method_not_allowed",
    )
    .await;
    let bad_json = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("send");
    assert_problem(bad_json, 400, "validation").await;
    app.stop().await;
}

async fn malformed_requests_answer_problems_never_plain_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    // Bodies over the limit are refused unread, and the server then closes the connection:
    // none is reused.
    let close =
        |request: reqwest::RequestBuilder| request.header(reqwest::header::CONNECTION, "close");
    // A struct would also be read from an array of its fields; no client means that.
    let array = close(app.http.post(app.url("/token")))
        .json(&serde_json::json!([
            "ann@example.com",
            "correct horse battery"
        ]))
        .send()
        .await
        .expect("send");
    assert_problem(array, 400, "validation").await;
    let oversized = serde_json::json!({"email": "ann@example.com", "password": "p".repeat(70_000)});
    let response = close(app.http.post(app.url("/token")))
        .json(&oversized)
        .send()
        .await
        .expect("send");
    assert_problem(response, 413, "payload_too_large").await;
    let note = user
        .client
        .upload_bytes(sample_wav(), &Default::default())
        .await
        .expect("upload");
    let response = close(user.post(&format!("/api/v1/notes/{}/link", note.id)))
        .json(&oversized)
        .send()
        .await
        .expect("send");
    assert_problem(response, 413, "payload_too_large").await;
    let response = close(user.post(&format!("/api/v1/notes/{}/link", note.id)))
        .json(&serde_json::json!([60]))
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    // A path segment that is not UTF-8 once decoded.
    let response = close(user.get("/api/v1/notes/%FF%FE"))
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    app.stop().await;
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert!(!response.headers()["x-request-id"].is_empty());
    let given = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(given.headers()["x-request-id"], "abc-123");
    app.stop().await;
}

backend_tests!(
    health_and_readiness_answer_without_credentials,
    readiness_fails_when_the_store_is_gone,
    metrics_count_requests_by_route_and_status,
    the_openapi_document_lists_every_route_and_the_docs_render,
    unknown_routes_and_methods_answer_problems,
    malformed_requests_answer_problems_never_plain_text,
    every_response_carries_a_request_id,
);

/// The document clients generate code from changes only on purpose: review the diff, then
/// refresh it with `UPDATE_SNAPSHOTS=1 cargo test -p hark-server --test api openapi`.
#[test]
fn the_openapi_document_matches_its_snapshot() {
    let (_, document) = hark_server::http::api();
    let actual = serde_json::to_string_pretty(&document).expect("serialise") + "\n";
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/openapi.snapshot.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).expect("write snapshot");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).expect("snapshot exists; create it with UPDATE_SNAPSHOTS=1");
    assert!(
        actual == expected,
        "the OpenAPI document changed; review it and refresh the snapshot with UPDATE_SNAPSHOTS=1"
    );
}

/// Clients name their methods after operation ids, so no two operations share one.
#[test]
fn every_operation_has_an_id_of_its_own() {
    let (_, openapi) = hark_server::http::api();
    let doc = serde_json::to_value(&openapi).expect("json");
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .map(|operation| operation["operationId"].as_str().expect("operationId"))
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "{ids:?}");
}

/// Every `$ref` in the document points at a component it defines; a dangling one leaves
/// generated clients (and fuzzers) without the type.
#[test]
fn every_reference_in_the_openapi_document_resolves() {
    fn refs<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    found.push(target);
                }
                map.values().for_each(|v| refs(v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }
    let (_, openapi) = hark_server::http::api();
    let doc = serde_json::to_value(&openapi).expect("json");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    let dangling: Vec<&str> = found
        .into_iter()
        .filter(|target| {
            let pointer = target.strip_prefix('#').expect("local reference");
            doc.pointer(pointer).is_none()
        })
        .collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:?}");
}

/// The README's table of scopes and the OpenAPI document's `bearer` scopes say the same.
#[test]
fn the_readme_scope_table_matches_the_openapi_document() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README");
    let section = readme
        .split("## Service tokens and scopes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the scopes section");
    let mut documented: Vec<(String, String)> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let route = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let scope = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((route.to_owned(), scope.to_owned()))
        })
        .collect();
    documented.sort();

    let (_, openapi) = hark_server::http::api();
    let doc = serde_json::to_value(&openapi).expect("json");
    let mut declared = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for scope in requirement["bearer"].as_array().into_iter().flatten() {
                    let route = format!("{} {path}", method.to_uppercase());
                    declared.push((route, scope.as_str().unwrap_or_default().to_owned()));
                }
            }
        }
    }
    declared.sort();
    assert!(!declared.is_empty());
    assert_eq!(documented, declared);
}

/// The README's configuration table names every key of the defaults file.
#[test]
fn the_readme_configuration_table_names_every_key() {
    use figment::providers::{Format, Toml};
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README");
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the configuration section");
    let defaults: serde_json::Map<String, serde_json::Value> =
        figment::Figment::from(Toml::string(hark_server::config::DEFAULT_CONFIG))
            .extract()
            .expect("the defaults");
    /// Every leaf key, dotted: `speech.tts.url`.
    fn leaves(
        prefix: &str,
        table: &serde_json::Map<String, serde_json::Value>,
        out: &mut Vec<String>,
    ) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value.as_object() {
                Some(inner) => leaves(&key, inner, out),
                None => out.push(key),
            }
        }
    }
    let mut keys = Vec::new();
    leaves("", &defaults, &mut keys);
    // Every form was read: top-level keys, and those of a table and of a nested one.
    assert!(keys.iter().any(|key| key == "listen"));
    assert!(keys.iter().any(|key| key == "auth.jwt_secret"));
    assert!(keys.iter().any(|key| key == "speech.tts.url"));
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| !section.contains(&format!("`{key}`")))
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}
