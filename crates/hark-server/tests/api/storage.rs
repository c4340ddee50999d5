//! Durability and cleanup: orphan blobs, missing blobs, abandoned spool files, deleted users.

use hark_client::UploadOptions;

use crate::helpers::{Backend, sample_wav, spawn_app, spawn_app_with};

async fn a_blob_file_no_note_references_is_removed_by_the_reconciler(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.storage.orphan_grace_seconds = 0).await;
    let user = app.user("ann@example.com").await;
    let kept = user
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    // What a crash between writing the blob and committing its row leaves behind.
    let orphan_sha = "ab".repeat(32);
    let orphan = app
        .config
        .storage
        .blob_dir
        .join(format!("ab/ab/{orphan_sha}"));
    std::fs::create_dir_all(orphan.parent().expect("parent")).expect("mkdir");
    std::fs::write(&orphan, b"half an upload").expect("write");
    let outcome = app.maintenance.reconcile().await.expect("reconcile");
    assert_eq!(outcome.orphan_files_removed, 1);
    assert!(!orphan.exists());
    assert_eq!(
        user.client.audio(&kept.id).await.expect("kept"),
        sample_wav()
    );
    app.stop().await;
}

async fn a_young_orphan_is_left_for_its_upload_to_commit(backend: Backend) {
    let app = spawn_app(backend).await;
    let orphan = app
        .config
        .storage
        .blob_dir
        .join(format!("cd/cd/{}", "cd".repeat(32)));
    std::fs::create_dir_all(orphan.parent().expect("parent")).expect("mkdir");
    std::fs::write(&orphan, b"in flight").expect("write");
    let outcome = app.maintenance.reconcile().await.expect("reconcile");
    assert_eq!(outcome.orphan_files_removed, 0);
    assert!(orphan.exists());
    app.stop().await;
}

async fn a_note_whose_blob_is_missing_is_reported_failed_not_dropped(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.storage.orphan_grace_seconds = 0).await;
    let user = app.user("ann@example.com").await;
    let note = user
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    for file in app.blob_files() {
        std::fs::remove_file(file).expect("remove");
    }
    let response = user
        .get(&format!("/api/v1/notes/{}/audio", note.id))
        .send()
        .await
        .expect("send");
    crate::helpers::assert_problem(response, 404, "not_found").await;
    let outcome = app.maintenance.reconcile().await.expect("reconcile");
    assert_eq!(outcome.notes_failed, 1);
    let note = user.client.note(&note.id).await.expect("still listed");
    assert_eq!(note.status, hark_api::NoteStatus::Failed);
    assert!(note.failure_reason.expect("reason").contains("missing"));
    app.stop().await;
}

async fn spool_files_of_interrupted_uploads_are_removed_at_start_up(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let config = app.config.clone();
    let refused = hark_server::App::build(config.clone()).await;
    assert!(
        refused.is_err(),
        "a second server on the same data directory is refused"
    );
    app.shut_down().await;
    let leftover = app.config.tmp_dir().join("upload-crashed");
    std::fs::write(&leftover, b"partial").expect("write");
    // The next server on the data directory starts by clearing the spool.
    let _restarted = hark_server::App::build(config).await.expect("restart");
    assert!(!leftover.exists());
    app.stop().await;
}

async fn a_deleted_notes_last_blob_goes_when_the_collector_wakes(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.storage.gc_interval_seconds = 3600).await;
    let user = app.user("ann@example.com").await;
    let note = user
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    user.client.delete_note(&note.id).await.expect("delete");
    // The delete wakes the collector; wait for it (bounded), not for the hourly tick.
    for _ in 0..100 {
        if app.blob_files().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(app.blob_files().is_empty());
    let missing = user.client.note(&note.id).await.expect_err("deleted");
    assert_eq!(missing.status(), Some(404));
    app.stop().await;
}

async fn deleting_a_user_deletes_their_notes_and_releases_their_blobs(backend: Backend) {
    // Processing stays off so that the store holds originals only, not renditions.
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    ann.client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    ann.client
        .upload_bytes(crate::helpers::sample("t4.flac"), &UploadOptions::default())
        .await
        .expect("upload");
    let bobs = bob
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    let response = ann
        .delete(&format!("/api/v1/users/{}", ann.id))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    app.maintenance.collect_garbage().await.expect("gc");
    assert_eq!(
        app.blob_files().len(),
        1,
        "only bob's (shared) bytes remain"
    );
    assert_eq!(
        bob.client.audio(&bobs.id).await.expect("bob's note"),
        sample_wav()
    );
    let gone = ann
        .client
        .list_notes(&Default::default())
        .await
        .expect_err("ann is gone");
    assert_eq!(gone.status(), Some(401));
    app.stop().await;
}

async fn every_change_writes_its_event_in_the_same_transaction(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let note = user
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    user.client.delete_note(&note.id).await.expect("delete");
    let repos = hark_server::db::connect(
        secrecy::ExposeSecret::expose_secret(&app.config.database_url),
        false,
    )
    .await
    .expect("db");
    let events = repos.events.events_after(0, 100).await.expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.data.kind().as_str()).collect();
    assert_eq!(kinds, ["note.created", "note.deleted"]);
    assert!(events.iter().all(|e| {
        e.data.note_id() == note.id
            && e.audience
                .iter()
                .map(ToString::to_string)
                .eq([user.id.clone()])
    }));
    assert!(events[0].seq < events[1].seq);
    app.stop().await;
}

backend_tests!(
    a_blob_file_no_note_references_is_removed_by_the_reconciler,
    a_young_orphan_is_left_for_its_upload_to_commit,
    a_note_whose_blob_is_missing_is_reported_failed_not_dropped,
    spool_files_of_interrupted_uploads_are_removed_at_start_up,
    a_deleted_notes_last_blob_goes_when_the_collector_wakes,
    deleting_a_user_deletes_their_notes_and_releases_their_blobs,
    every_change_writes_its_event_in_the_same_transaction,
);
