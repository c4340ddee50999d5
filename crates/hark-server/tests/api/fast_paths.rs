//! The fast paths answer exactly as the slow ones would: notes and bytes served from memory
//! never outlive a change (a delete, a user's deletion, the reconciler's verdict is seen by the
//! very next request), and a token checked without loading its account still fails once the
//! account is gone.

use hark_api::NoteStatus;
use hark_client::UploadOptions;
use hark_server::db::NoteFilter;
use hark_server::domain::UserId;

use crate::helpers::{
    Backend, TestApp, TestUser, assert_problem, sample_wav, spawn_app, spawn_app_with,
};

/// Ann with one note, read twice (the second time from memory, where the server keeps it).
async fn with_read_note(app: &TestApp) -> (TestUser, hark_api::Note) {
    let ann = app.user("ann@example.com").await;
    let note = ann
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    for _ in 0..2 {
        assert_eq!(
            ann.client.audio(&note.id).await.expect("audio"),
            sample_wav()
        );
        assert_eq!(ann.client.note(&note.id).await.expect("note").id, note.id);
    }
    (ann, note)
}

async fn a_deleted_note_answers_404_at_once_though_it_was_just_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, note) = with_read_note(&app).await;
    ann.client.delete_note(&note.id).await.expect("delete");
    let audio = ann
        .get(&format!("/api/v1/notes/{}/audio", note.id))
        .send()
        .await
        .expect("send");
    assert_problem(audio, 404, "not_found").await;
    let metadata = ann
        .get(&format!("/api/v1/notes/{}", note.id))
        .send()
        .await
        .expect("send");
    assert_problem(metadata, 404, "not_found").await;
    app.stop().await;
}

async fn another_users_token_never_reads_a_note_served_from_memory(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_ann, note) = with_read_note(&app).await;
    let bob = app.user("bob@example.com").await;
    let audio = bob
        .get(&format!("/api/v1/notes/{}/audio", note.id))
        .send()
        .await
        .expect("send");
    assert_problem(audio, 404, "not_found").await;
    app.stop().await;
}

async fn a_deleted_users_token_answers_401_on_audio_it_had_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, note) = with_read_note(&app).await;
    let deleted = ann
        .delete(&format!("/api/v1/users/{}", ann.id))
        .send()
        .await
        .expect("send");
    assert_eq!(deleted.status().as_u16(), 204);
    let audio = ann
        .get(&format!("/api/v1/notes/{}/audio", note.id))
        .send()
        .await
        .expect("send");
    assert_problem(audio, 401, "unauthorized").await;
    app.stop().await;
}

async fn an_upload_by_a_deleted_users_token_answers_401_and_leaves_no_note(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let deleted = ann
        .delete(&format!("/api/v1/users/{}", ann.id))
        .send()
        .await
        .expect("send");
    assert_eq!(deleted.status().as_u16(), 204);
    let upload = ann
        .post("/api/v1/notes?name=late.wav")
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    assert_problem(upload, 401, "unauthorized").await;
    let owner = UserId::parse(&ann.id).expect("id");
    let notes = app
        .maintenance
        .repos
        .notes
        .list_notes(&NoteFilter::all_for(owner, 10))
        .await
        .expect("list");
    assert!(notes.is_empty());
    app.stop().await;
}

async fn a_note_the_reconciler_fails_shows_its_status_at_once(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.storage.orphan_grace_seconds = 0).await;
    let (ann, note) = with_read_note(&app).await;
    for file in app.blob_files() {
        std::fs::remove_file(file).expect("remove");
    }
    let outcome = app.maintenance.reconcile().await.expect("reconcile");
    assert_eq!(outcome.notes_failed, 1);
    let failed = ann.client.note(&note.id).await.expect("note");
    assert_eq!(failed.status, NoteStatus::Failed);
    app.stop().await;
}

backend_tests!(
    a_deleted_note_answers_404_at_once_though_it_was_just_served,
    another_users_token_never_reads_a_note_served_from_memory,
    a_deleted_users_token_answers_401_on_audio_it_had_read,
    an_upload_by_a_deleted_users_token_answers_401_and_leaves_no_note,
    a_note_the_reconciler_fails_shows_its_status_at_once,
);
