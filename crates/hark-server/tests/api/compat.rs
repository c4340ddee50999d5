//! The seed's curl flows, as written, with a bearer token.

use reqwest::multipart::{Form, Part};

use crate::helpers::{Backend, assert_problem, sample_wav, spawn_app};

async fn the_seed_curl_flows_work_with_a_bearer_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let wav = sample_wav();
    // curl -X POST --data-binary @myfile.wav .../post?name=myfile.wav (curl's default form type)
    let raw = user
        .post("/post?name=myfile.wav")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(wav.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), 201);
    let first: hark_api::Note = raw.json().await.expect("note");
    // curl -X POST -F file=@myfile.wav .../post
    let form = Form::new().part(
        "file",
        Part::bytes(wav.clone())
            .file_name("myfile.wav")
            .mime_str("audio/wav")
            .expect("mime"),
    );
    let multipart = user
        .post("/post")
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(multipart.status(), 201);
    let newest: hark_api::Note = multipart.json().await.expect("note");
    assert_eq!(newest.name, "myfile.wav");

    // curl http://localhost:8000/list?maxduration=300
    let list: hark_api::NoteList = user
        .get("/list?maxduration=300")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("list");
    assert_eq!(list.items.len(), 2);
    let none: hark_api::NoteList = user
        .get("/list?maxduration=1")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("list");
    assert!(none.items.is_empty());

    // curl --output test.wav http://localhost:8000/download?name=myfile.wav
    let download = user
        .get("/download?name=myfile.wav")
        .send()
        .await
        .expect("send");
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"myfile.wav\""
    );
    assert_eq!(download.bytes().await.expect("bytes"), wav);

    // curl http://localhost:8000/info?name=myfile.wav: the newest note of that name
    let info: hark_api::Note = user
        .get("/info?name=myfile.wav")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("info");
    assert_eq!(info.id, newest.id);
    assert_ne!(info.id, first.id);
    assert!((info.duration_seconds - 4.875).abs() < 0.02);
    app.stop().await;
}

async fn seed_routes_answer_problems_for_bad_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let missing = user
        .get("/info?name=nothing.wav")
        .send()
        .await
        .expect("send");
    assert_problem(missing, 404, "not_found").await;
    let no_name = user.get("/download").send().await.expect("send");
    assert_problem(no_name, 400, "validation").await;
    let anonymous = app
        .http
        .get(app.url("/list?maxduration=300"))
        .send()
        .await
        .expect("send");
    assert_problem(anonymous, 401, "unauthorized").await;
    let text = user.post("/post").body("hello").send().await.expect("send");
    assert_problem(text, 415, "unsupported_audio").await;
    app.stop().await;
}

backend_tests!(
    the_seed_curl_flows_work_with_a_bearer_token,
    seed_routes_answer_problems_for_bad_requests
);
