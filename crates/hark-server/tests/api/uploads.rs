//! Uploading: every corpus file's metadata, the body forms, and every kind of bad input,
//! each leaving nothing behind.

use std::io::Write;

use base64::Engine;
use hark_client::UploadOptions;
use reqwest::multipart::{Form, Part};

use crate::helpers::{
    Backend, TestApp, assert_problem, corpus, manifest, sample_wav, spawn_app, spawn_app_with,
};

/// ffprobe's format_name for each of our formats.
fn ffprobe_format(format: &str) -> &'static str {
    match format {
        "wav" => "wav",
        "mp3" => "mp3",
        "ogg" => "ogg",
        "flac" => "flac",
        "m4a" => "mov,mp4,m4a,3gp,3g2,mj2",
        "webm" => "matroska,webm",
        _ => "unknown",
    }
}

/// Nothing of a refused upload may remain: no note, no blob, no spool file.
async fn assert_nothing_stored(app: &TestApp, user: &crate::helpers::TestUser) {
    let list = user
        .client
        .list_notes(&Default::default())
        .await
        .expect("list");
    assert!(list.items.is_empty(), "a note was stored: {:?}", list.items);
    assert!(
        app.blob_files().is_empty(),
        "blobs left: {:?}",
        app.blob_files()
    );
    assert!(
        app.tmp_files().is_empty(),
        "spool files left: {:?}",
        app.tmp_files()
    );
}

async fn every_corpus_file_gets_the_metadata_ffprobe_reports(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let mut wrong = Vec::new();
    for file in manifest() {
        let note = user
            .client
            .upload_bytes(file.bytes(), &UploadOptions::default())
            .await
            .expect(&file.file);
        let tolerance = (0.020f64).max(file.duration_seconds * 0.002);
        let duration_ok = (note.duration_seconds - file.duration_seconds).abs() <= tolerance
            || (note.duration_seconds - file.decoded_seconds).abs() <= tolerance;
        let ok = ffprobe_format(&note.format) == file.format_name
            && note.codec == file.codec
            && note.sample_rate == file.sample_rate
            && note.channels == file.channels
            && duration_ok
            && note.size_bytes == file.bytes().len() as u64
            && note.name == format!("{}.{}", note.id, note.format)
            && note.status == hark_api::NoteStatus::Pending;
        if !ok {
            wrong.push(format!(
                "{}: got {:?}, manifest {:?}",
                file.file, note, file
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    app.stop().await;
}

async fn every_bad_file_is_refused_with_what_was_detected(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let bad = corpus().join("bad");
    for entry in std::fs::read_dir(&bad).expect("bad dir").flatten() {
        if entry.file_name() == "README" {
            continue;
        }
        let response = user
            .post("/api/v1/notes")
            .query(&[("name", entry.file_name().to_string_lossy().as_ref())])
            .body(std::fs::read(entry.path()).expect("read"))
            .send()
            .await
            .expect("send");
        let detail = assert_problem(response, 415, "unsupported_audio").await;
        assert!(
            detail.starts_with("unsupported audio: ") && detail.len() > 20,
            "{detail}"
        );
    }
    let text = user
        .post("/api/v1/notes")
        .body("just words")
        .send()
        .await
        .expect("send");
    assert_problem(text, 415, "unsupported_audio").await;
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

async fn a_zero_length_body_is_unsupported_audio(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let response = user
        .post("/api/v1/notes")
        .body(Vec::new())
        .send()
        .await
        .expect("send");
    let detail = assert_problem(response, 415, "unsupported_audio").await;
    assert!(detail.contains("empty"), "{detail}");
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

async fn an_oversize_body_is_refused_while_streaming(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.limits.max_upload_bytes = 100_000).await;
    let user = app.user("ann@example.com").await;
    let response = user
        .post("/api/v1/notes")
        .body(vec![0u8; 300_000])
        .send()
        .await
        .expect("send");
    assert_problem(response, 413, "payload_too_large").await;
    let form = Form::new().part("file", Part::bytes(vec![0u8; 300_000]).file_name("big.wav"));
    let response = user
        .post("/api/v1/notes")
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_problem(response, 413, "payload_too_large").await;
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A multipart form whose first part, `name`, holds `size` zero bytes, and whose last part is
/// a small good `file`; gzipped as it is written, so a large form never sits in memory.
fn form_with(name: &str, size: usize, gzip: bool) -> Vec<u8> {
    fn write_form(out: &mut dyn Write, name: &str, size: usize) -> std::io::Result<()> {
        let disposition = "\r\nContent-Disposition: form-data; name=";
        write!(
            out,
            "--XYZ{disposition}\"{name}\"; filename=\"big.wav\"\r\n\r\n"
        )?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(zeros.len());
            out.write_all(&zeros[..n])?;
            left -= n;
        }
        write!(
            out,
            "\r\n--XYZ{disposition}\"file\"; filename=\"a.wav\"\r\n\r\n"
        )?;
        out.write_all(&sample_wav())?;
        out.write_all(b"\r\n--XYZ--\r\n")
    }
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        write_form(&mut encoder, name, size).expect("gzip");
        encoder.finish().expect("gzip")
    } else {
        let mut form = Vec::new();
        write_form(&mut form, name, size).expect("form");
        form
    }
}

async fn a_multipart_body_over_the_cap_is_413_gzipped_or_not(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.limits.max_upload_bytes = 100_000).await;
    let user = app.user("ann@example.com").await;
    // A file part just over the cap and far over it (past where inflating stops), and an
    // ignored part too large to be framing.
    for (part, size, gzip) in [
        ("file", 300_000, true),
        ("file", 4 << 20, true),
        ("extra", 4 << 20, true),
        ("extra", 2 << 20, false),
    ] {
        let mut request = user
            .post("/api/v1/notes")
            .header("content-type", "multipart/form-data; boundary=XYZ");
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        let response = request
            .body(form_with(part, size, gzip))
            .send()
            .await
            .expect("the answer can be read");
        assert_problem(response, 413, "payload_too_large").await;
    }
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

async fn a_gzip_body_is_stored_decompressed(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let wav = sample_wav();
    let response = user
        .post("/api/v1/notes?name=zipped.wav")
        .header("content-encoding", "gzip")
        .header("content-type", "audio/wav")
        .body(gzip(&wav))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let note: hark_api::Note = response.json().await.expect("note");
    assert_eq!(note.size_bytes, wav.len() as u64);
    assert_eq!(user.client.audio(&note.id).await.expect("audio"), wav);
    app.stop().await;
}

async fn a_gzip_bomb_is_refused_fast_and_leaves_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    // 1 GiB of zeros compresses to about 1 MiB; the server must stop at 50 MiB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        encoder.write_all(&zeros).expect("gzip");
    }
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < 2 << 20);
    let response = user
        .post("/api/v1/notes")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .expect("send");
    assert_problem(response, 413, "payload_too_large").await;
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

async fn content_digest_is_verified(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let wav = sample_wav();
    let wrong = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode([0u8; 32])
    );
    // A malformed digest is refused before the body is read, and the server then closes the
    // connection: none is reused.
    let send = |digest: String| {
        user.post("/api/v1/notes")
            .header(reqwest::header::CONNECTION, "close")
            .header("content-digest", digest)
            .body(wav.clone())
            .send()
    };
    assert_problem(send(wrong).await.expect("send"), 400, "checksum_mismatch").await;
    for malformed in ["sha-256=garbage", "md5=garbage", "0"] {
        assert_problem(
            send(malformed.into()).await.expect("send"),
            400,
            "validation",
        )
        .await;
    }
    assert_nothing_stored(&app, &user).await;
    use sha2::Digest;
    let right = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&wav))
    );
    assert_eq!(send(right).await.expect("send").status(), 201);
    app.stop().await;
}

async fn multipart_fields_count_wherever_they_stand(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let form = Form::new()
        .text("title", "Front door")
        .part(
            "file",
            Part::bytes(sample_wav())
                .file_name("from-part.wav")
                .mime_str("audio/wav")
                .expect("mime"),
        )
        .text("name", "from-field.wav")
        .text("series", "Deliveries");
    let response = user
        .post("/api/v1/notes")
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let note: hark_api::Note = response.json().await.expect("note");
    assert_eq!(location, format!("/api/v1/notes/{}", note.id));
    assert_eq!(
        (
            note.name.as_str(),
            note.title.as_deref(),
            note.series.as_deref()
        ),
        ("from-field.wav", Some("Front door"), Some("Deliveries"))
    );
    let form = Form::new().part("file", Part::bytes(sample_wav()).file_name("from-part.wav"));
    let note: hark_api::Note = user
        .post("/api/v1/notes")
        .multipart(form)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("note");
    assert_eq!(note.name, "from-part.wav");
    app.stop().await;
}

async fn malformed_multipart_and_a_missing_file_part_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let missing = Form::new().text("name", "x.wav");
    let response = user
        .post("/api/v1/notes")
        .multipart(missing)
        .send()
        .await
        .expect("send");
    let detail = assert_problem(response, 400, "validation").await;
    assert!(detail.contains("file part"), "{detail}");
    let response = user.post("/api/v1/notes")
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF")
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    let response = user
        .post("/api/v1/notes")
        .header("content-type", "multipart/form-data")
        .body("no boundary at all")
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

async fn names_are_kept_safe(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    for (given, stored) in [
        ("../../etc/passwd.wav", "passwd.wav"),
        ("..\\..\\boot.ini.wav", "boot.ini.wav"),
        ("say \"hi\".wav", "say \"hi\".wav"),
        ("mémo 日本.wav", "mémo 日本.wav"),
    ] {
        let options = UploadOptions {
            name: Some(given.into()),
            ..Default::default()
        };
        let note = user
            .client
            .upload_bytes(sample_wav(), &options)
            .await
            .expect(given);
        assert_eq!(note.name, stored);
    }
    let response = user
        .post("/api/v1/notes")
        .query(&[("name", "x".repeat(300))])
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    // Every stored blob lives in the store's own layout, whatever the name said.
    for file in app.blob_files() {
        assert!(file.starts_with(&app.config.storage.blob_dir));
    }
    app.stop().await;
}

async fn identical_bytes_are_stored_once_and_deleting_one_note_keeps_the_other(backend: Backend) {
    // Processing stays off so that the store holds originals only, not renditions.
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let wav = sample_wav();
    let first = ann
        .client
        .upload_bytes(wav.clone(), &UploadOptions::default())
        .await
        .expect("upload");
    let second = bob
        .client
        .upload_bytes(wav.clone(), &UploadOptions::default())
        .await
        .expect("upload");
    assert_ne!(first.id, second.id);
    assert_eq!(app.blob_files().len(), 1);
    ann.client.delete_note(&first.id).await.expect("delete");
    app.maintenance.collect_garbage().await.expect("gc");
    assert_eq!(
        bob.client.audio(&second.id).await.expect("still there"),
        wav
    );
    assert_eq!(app.blob_files().len(), 1);
    bob.client.delete_note(&second.id).await.expect("delete");
    app.maintenance.collect_garbage().await.expect("gc");
    assert!(
        app.blob_files().is_empty(),
        "the last reference is gone, so is the blob"
    );
    // The same bytes can come back after their blob was collected.
    let again = ann
        .client
        .upload_bytes(wav.clone(), &UploadOptions::default())
        .await
        .expect("upload");
    assert_eq!(ann.client.audio(&again.id).await.expect("audio"), wav);
    app.stop().await;
}

async fn an_idempotency_key_replays_the_first_upload(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let send = |body: Vec<u8>| {
        user.post("/api/v1/notes")
            .header("idempotency-key", "retry-1")
            .body(body)
            .send()
    };
    let first = send(sample_wav()).await.expect("send");
    assert_eq!(first.status(), 201);
    let first: hark_api::Note = first.json().await.expect("note");
    let again = send(sample_wav()).await.expect("send");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let mut again: hark_api::Note = again.json().await.expect("note");
    // The same note, as it is now: processing may have moved it on since the first answer.
    (again.status, again.renditions, again.loudness) =
        (first.status, first.renditions.clone(), first.loudness);
    assert_eq!(again, first);
    let other = crate::helpers::sample("t4.flac");
    assert_problem(
        send(other).await.expect("send"),
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(
        user.client
            .list_notes(&Default::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    app.stop().await;
}

async fn uploads_need_a_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .http
        .post(app.url("/api/v1/notes"))
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    assert_problem(response, 401, "unauthorized").await;
    assert!(app.blob_files().is_empty());
    app.stop().await;
}

async fn delivery_fields_are_refused_until_delivery_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let response = user
        .post("/api/v1/notes?to=bob@example.com")
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

async fn upload_fields_and_headers_are_checked_wherever_they_come_from(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    // Some of these are refused before their body is read, and the server then closes the
    // connection: none is reused.
    let post = |path: &str| user.post(path).header(reqwest::header::CONNECTION, "close");
    // A query name too long for a note is refused even though a form field replaces it.
    let form = reqwest::multipart::Form::new()
        .text("name", "memo.wav")
        .part("file", reqwest::multipart::Part::bytes(sample_wav()));
    let long_name = "n".repeat(256);
    let response = post(&format!("/api/v1/notes?name={long_name}"))
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    let form = reqwest::multipart::Form::new()
        .text("correct", "maybe")
        .part("file", reqwest::multipart::Part::bytes(sample_wav()));
    let response = post("/api/v1/notes")
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    let response = post("/api/v1/notes?correct=maybe")
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    let response = post("/api/v1/notes")
        .header("content-encoding", "")
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    assert_problem(response, 415, "unsupported_media_type").await;
    let response = post("/api/v1/notes")
        .header("idempotency-key", format!("\"{}\"", "k".repeat(254)))
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    assert_nothing_stored(&app, &user).await;
    app.stop().await;
}

async fn a_digest_of_the_gzip_bytes_or_of_the_audio_both_verify(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    use sha2::Digest;
    let wav = sample_wav();
    let zipped = gzip(&wav);
    for digested in [&zipped, &wav] {
        let digest = format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(digested))
        );
        let response = user
            .post("/api/v1/notes")
            .header("content-encoding", "gzip")
            .header("content-digest", digest)
            .body(zipped.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 201);
    }
    app.stop().await;
}

backend_tests!(
    a_digest_of_the_gzip_bytes_or_of_the_audio_both_verify,
    every_corpus_file_gets_the_metadata_ffprobe_reports,
    every_bad_file_is_refused_with_what_was_detected,
    a_zero_length_body_is_unsupported_audio,
    an_oversize_body_is_refused_while_streaming,
    a_gzip_body_is_stored_decompressed,
    a_multipart_body_over_the_cap_is_413_gzipped_or_not,
    a_gzip_bomb_is_refused_fast_and_leaves_nothing,
    content_digest_is_verified,
    multipart_fields_count_wherever_they_stand,
    malformed_multipart_and_a_missing_file_part_are_400,
    names_are_kept_safe,
    identical_bytes_are_stored_once_and_deleting_one_note_keeps_the_other,
    an_idempotency_key_replays_the_first_upload,
    upload_fields_and_headers_are_checked_wherever_they_come_from,
    uploads_need_a_user,
    delivery_fields_are_refused_until_delivery_exists,
);
