//! Group commit: uploads that reach their commit together share one transaction, and each
//! note in it stands or fails on its own.

use std::collections::HashSet;

use hark_api::events::EventData;
use hark_client::UploadOptions;
use hark_server::db::{self, BeforeCommit, DbError, InsertOutcome, NoteInsert, Repos};
use hark_server::domain::{NewNote, UserId};
use hark_server::notes::effects;

use crate::helpers::{Backend, drop_pg_database, sample_wav, spawn_app, test_database};
use crate::repository::{new_note, new_user};

fn insert(note: NewNote, key: Option<&str>) -> NoteInsert {
    NoteInsert {
        effects: effects::created(&note),
        note,
        idempotency_key: key.map(str::to_owned),
    }
}

/// A fresh database whose one user is Ann; the directory holds it until the test ends.
async fn with_ann(backend: Backend) -> (Repos, UserId, Option<String>, tempfile::TempDir) {
    let (url, pg, dir) = test_database(backend).await;
    let repos = db::connect(&url, true).await.expect("connect");
    let ann = repos
        .users
        .create_user(new_user("ann@example.com"))
        .await
        .expect("ann");
    (repos, ann.id, pg, dir)
}

/// Blobs that are already durable.
fn durable() -> BeforeCommit {
    Box::pin(async { Ok(()) })
}

async fn a_batch_commits_only_once_its_blobs_are_durable(backend: Backend) {
    let (repos, ann, pg, _dir) = with_ann(backend).await;
    let notes = [
        new_note(ann, "first.wav", 'a', 1.0),
        new_note(ann, "second.wav", 'b', 1.0),
    ];
    let batch: Vec<_> = notes.iter().map(|n| insert(n.clone(), None)).collect();
    let (flushed, flush) = tokio::sync::oneshot::channel::<Result<(), DbError>>();
    let flush: BeforeCommit = Box::pin(async move { flush.await.expect("flush") });
    let notes_repo = repos.notes.clone();
    let committing = tokio::spawn(async move { notes_repo.insert_notes(&batch, flush).await });
    // The statements have run and the flush goes on: nothing is visible yet.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!committing.is_finished());
    for note in &notes {
        assert!(
            repos
                .notes
                .note_by_id(note.id)
                .await
                .expect("read")
                .is_none()
        );
    }
    flushed.send(Ok(())).expect("the batch waits for its flush");
    let outcomes = committing.await.expect("task").expect("batch");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(InsertOutcome::Inserted { .. })))
    );
    for note in &notes {
        assert!(
            repos
                .notes
                .note_by_id(note.id)
                .await
                .expect("read")
                .is_some()
        );
    }

    // A failed flush commits nothing of its batch, and fails it as a whole.
    let lost = new_note(ann, "lost.wav", 'c', 1.0);
    let failing: BeforeCommit = Box::pin(async { Err(DbError::Batch("disk gone".into())) });
    let failed = repos
        .notes
        .insert_notes(&[insert(lost.clone(), Some("key"))], failing)
        .await;
    assert!(matches!(failed, Err(DbError::Batch(_))), "{failed:?}");
    assert!(
        repos
            .notes
            .note_by_id(lost.id)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        repos
            .notes
            .idempotent_result(ann, "key")
            .await
            .expect("key")
            .is_none()
    );
    let shas = [lost.audio.sha256.clone()];
    assert!(
        repos
            .blobs
            .known_blobs(&shas)
            .await
            .expect("blobs")
            .is_empty()
    );
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

async fn a_batch_where_one_note_fails_commits_the_others(backend: Backend) {
    let (repos, ann, pg, _dir) = with_ann(backend).await;
    let first = new_note(ann, "first.wav", 'a', 1.0);
    // Its owner does not exist: the foreign key refuses this note alone.
    let orphan = new_note(UserId::generate(), "orphan.wav", 'b', 1.0);
    let last = new_note(ann, "last.wav", 'c', 1.0);
    let batch = [
        insert(first.clone(), None),
        insert(orphan.clone(), None),
        insert(last.clone(), None),
    ];
    let outcomes = repos
        .notes
        .insert_notes(&batch, durable())
        .await
        .expect("batch");
    assert!(matches!(outcomes[0], Ok(InsertOutcome::Inserted { .. })));
    assert!(outcomes[1].is_err(), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2], Ok(InsertOutcome::Inserted { .. })));
    for (note, kept) in [(&first, true), (&orphan, false), (&last, true)] {
        let found = repos.notes.note_by_id(note.id).await.expect("read");
        assert_eq!(found.is_some(), kept, "{}", note.name);
    }
    // Nothing of the failed note stays: neither its event nor its blob reference.
    let events = repos.events.events_after(0, 10).await.expect("events");
    let created: Vec<_> = events
        .iter()
        .map(|e| match &e.data {
            EventData::NoteCreated(created) => created.note_id.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(created, [first.id.to_string(), last.id.to_string()]);
    let shas: Vec<String> = [&first, &orphan, &last]
        .iter()
        .map(|n| n.audio.sha256.clone())
        .collect();
    let known = repos.blobs.known_blobs(&shas).await.expect("blobs");
    assert_eq!(known, HashSet::from([shas[0].clone(), shas[2].clone()]));
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

async fn a_key_used_twice_in_one_batch_replays_the_first_note(backend: Backend) {
    let (repos, ann, pg, _dir) = with_ann(backend).await;
    let first = new_note(ann, "memo.wav", 'a', 1.0);
    let retry = new_note(ann, "memo.wav", 'a', 1.0);
    let batch = [
        insert(first.clone(), Some("key")),
        insert(retry.clone(), Some("key")),
    ];
    let outcomes = repos
        .notes
        .insert_notes(&batch, durable())
        .await
        .expect("batch");
    assert!(matches!(outcomes[0], Ok(InsertOutcome::Inserted { .. })));
    match &outcomes[1] {
        Ok(InsertOutcome::Replayed { note_id, sha256 }) => {
            assert_eq!((*note_id, sha256), (first.id, &first.audio.sha256));
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    assert!(
        repos
            .notes
            .note_by_id(retry.id)
            .await
            .expect("read")
            .is_none()
    );
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

async fn uploads_at_the_same_moment_each_get_their_own_note(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let uploads = (0..16).map(|n| {
        let options = UploadOptions {
            name: Some(format!("memo-{n}.wav")),
            ..Default::default()
        };
        let client = ann.client.clone();
        async move { client.upload_bytes(sample_wav(), &options).await }
    });
    let notes: Vec<_> = futures_util::future::join_all(uploads)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every upload commits");
    let ids: HashSet<_> = notes.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids.len(), 16);
    for note in &notes {
        assert_eq!(
            ann.client.audio(&note.id).await.expect("audio"),
            sample_wav()
        );
    }
    app.stop().await;
}

backend_tests!(
    a_batch_commits_only_once_its_blobs_are_durable,
    a_batch_where_one_note_fails_commits_the_others,
    a_key_used_twice_in_one_batch_replays_the_first_note,
    uploads_at_the_same_moment_each_get_their_own_note,
);
