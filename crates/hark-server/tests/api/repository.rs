//! The repository contract: every method of every repository, on SQLite and on PostgreSQL,
//! and the event log's promise that a reader never skips an event that commits late.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hark_api::events::{EventData, NoteDeleted, NoteFailed};
use hark_api::{AudioTags, EventType, NoteStatus, Role};
use hark_server::db::{
    self, DeletedNote, InsertOutcome, NewApiKeyRecord, NewUser, NoteFilter, Repos,
};
use hark_server::domain::ids::{ApiKeyId, PushSubscriptionId, WebhookId};
use hark_server::domain::{
    AudioFacts, Effects, NewNote, Note, NoteId, PushSubscription, Timestamp, UserId, Webhook,
};
use hark_server::notes::effects;

use crate::helpers::{Backend, drop_pg_database, every_step_done, test_database};

pub fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::generate(),
        email: email.into(),
        password_hash: "hash".into(),
        role: Role::User,
        created_at: Timestamp::now(),
    }
}

pub fn new_note(owner: UserId, name: &str, sha: char, duration_seconds: f64) -> NewNote {
    NewNote {
        id: NoteId::generate(),
        owner_id: owner,
        name: name.into(),
        title: Some("title".into()),
        series: None,
        correction_asked: false,
        audio: AudioFacts {
            format: "wav".into(),
            codec: "pcm_s16le".into(),
            mime: "audio/wav".into(),
            duration_seconds,
            sample_rate: 16000,
            channels: 1,
            bitrate: 256_000,
            size_bytes: 1000,
            sha256: sha.to_string().repeat(64),
            tags: AudioTags {
                title: Some("tag".into()),
                ..AudioTags::default()
            },
        },
    }
}

async fn insert(repos: &Repos, note: &NewNote, key: Option<&str>) -> InsertOutcome {
    repos
        .notes
        .insert_note(note, key, &effects::created(note))
        .await
        .expect("insert")
}

fn inserted(outcome: InsertOutcome) -> (Note, bool) {
    match outcome {
        InsertOutcome::Inserted {
            note,
            blob_deleting,
        } => (*note, blob_deleting),
        InsertOutcome::Replayed { .. } => panic!("expected a new note"),
    }
}

async fn users_and_api_keys(repos: &Repos) -> (UserId, UserId) {
    let ann = repos
        .users
        .create_user(new_user("ann@example.com"))
        .await
        .expect("ann");
    let bob = repos
        .users
        .create_user(new_user("bob@example.com"))
        .await
        .expect("bob");
    let taken = repos.users.create_user(new_user("ann@example.com")).await;
    assert!(taken.expect_err("duplicate email").is_conflict());
    assert_eq!(
        repos.users.user_by_id(ann.id).await.expect("by id"),
        Some(ann.clone())
    );
    let by_email = repos
        .users
        .user_by_email("bob@example.com")
        .await
        .expect("by email");
    assert_eq!(by_email.map(|u| u.id), Some(bob.id));
    assert_eq!(
        repos
            .users
            .user_by_email("nobody@example.com")
            .await
            .expect("none"),
        None
    );
    let listed: Vec<UserId> = repos
        .users
        .list_users()
        .await
        .expect("list")
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, [ann.id, bob.id]);
    assert!(
        repos
            .users
            .set_password(ann.id, "new hash")
            .await
            .expect("password")
    );
    assert!(
        repos
            .users
            .set_role(bob.id, Role::Admin)
            .await
            .expect("role")
    );
    assert!(
        !repos
            .users
            .set_role(UserId::generate(), Role::Admin)
            .await
            .expect("no user")
    );
    let bob_now = repos
        .users
        .user_by_id(bob.id)
        .await
        .expect("bob")
        .expect("exists");
    assert_eq!(bob_now.role, Role::Admin);
    let ann_now = repos
        .users
        .user_by_id(ann.id)
        .await
        .expect("ann")
        .expect("exists");
    assert_eq!(ann_now.password_hash, "new hash");

    let key = NewApiKeyRecord {
        id: ApiKeyId::generate(),
        user_id: ann.id,
        name: "laptop".into(),
        prefix: "hark_abc".into(),
        key_hash: "key hash".into(),
        created_at: Timestamp::now(),
    };
    let key_id = key.id;
    let record = repos.api_keys.create_api_key(key).await.expect("key");
    assert_eq!(record.name, "laptop");
    assert_eq!(
        repos.api_keys.list_api_keys(ann.id).await.expect("keys"),
        std::slice::from_ref(&record)
    );
    assert!(
        repos
            .api_keys
            .list_api_keys(bob.id)
            .await
            .expect("keys")
            .is_empty()
    );
    let owner = repos
        .api_keys
        .user_by_api_key("key hash")
        .await
        .expect("by key");
    assert_eq!(owner.map(|u| u.id), Some(ann.id));
    let used = repos.api_keys.list_api_keys(ann.id).await.expect("keys");
    assert!(used[0].last_used_at.is_some(), "the use is recorded");
    assert_eq!(
        repos
            .api_keys
            .user_by_api_key("other")
            .await
            .expect("unknown"),
        None
    );
    assert!(
        !repos
            .api_keys
            .delete_api_key(bob.id, key_id)
            .await
            .expect("not bob's")
    );
    assert!(
        repos
            .api_keys
            .delete_api_key(ann.id, key_id)
            .await
            .expect("delete")
    );
    assert_eq!(
        repos
            .api_keys
            .user_by_api_key("key hash")
            .await
            .expect("gone"),
        None
    );
    (ann.id, bob.id)
}

async fn every_repository_method_keeps_its_contract(backend: Backend) {
    let (url, pg, _dir) = test_database(backend).await;
    let repos = db::connect(&url, true).await.expect("connect");
    repos.health.ping().await.expect("ping");
    let (ann, bob) = users_and_api_keys(&repos).await;

    // Notes: insert with effects and an idempotency key, which replays.
    let memo = new_note(ann, "Memo.wav", 'a', 2.5);
    let (stored, deleting) = inserted(insert(&repos, &memo, Some("key-1")).await);
    assert!(!deleting);
    assert_eq!(
        (stored.id, stored.owner_id, stored.status),
        (memo.id, ann, NoteStatus::Pending)
    );
    assert_eq!(stored.audio, memo.audio);
    let retry = new_note(ann, "Memo.wav", 'a', 2.5);
    match insert(&repos, &retry, Some("key-1")).await {
        InsertOutcome::Replayed { note_id, sha256 } => {
            assert_eq!((note_id, sha256), (memo.id, memo.audio.sha256.clone()))
        }
        InsertOutcome::Inserted { .. } => panic!("a used key replays"),
    }
    let first = repos
        .notes
        .idempotent_result(ann, "key-1")
        .await
        .expect("key");
    assert_eq!(first, Some((memo.id, memo.audio.sha256.clone())));
    let long = new_note(ann, "long.wav", 'b', 90.0);
    inserted(insert(&repos, &long, None).await);
    let same_bytes = new_note(bob, "Memo.wav", 'a', 2.5);
    inserted(insert(&repos, &same_bytes, None).await);

    // Reads: isolation, signed-link reads, names.
    let seen = repos
        .notes
        .note_for_viewer(memo.id, ann)
        .await
        .expect("read");
    assert_eq!(seen, Some(stored.clone()));
    assert_eq!(
        repos
            .notes
            .note_for_viewer(memo.id, bob)
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        repos.notes.note_by_id(memo.id).await.expect("read"),
        Some(stored)
    );
    let named = repos
        .notes
        .newest_named(bob, "Memo.wav")
        .await
        .expect("named");
    assert_eq!(named.map(|n| n.id), Some(same_bytes.id));
    assert_eq!(
        repos
            .notes
            .newest_named(bob, "long.wav")
            .await
            .expect("named"),
        None
    );

    // Lists: the viewer's notes, filtered and limited.
    let mut filter = NoteFilter::all_for(ann, 10);
    let all: Vec<NoteId> = repos
        .notes
        .list_notes(&filter)
        .await
        .expect("list")
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(all, [long.id, memo.id]);
    filter.max_duration = Some(10.0);
    filter.name_contains = Some("MEMO".into());
    let short: Vec<NoteId> = repos
        .notes
        .list_notes(&filter)
        .await
        .expect("list")
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(short, [memo.id]);

    // A blob whose bytes are missing fails its notes, with an event each.
    let failed = db_fail(&repos, &memo.audio.sha256).await;
    assert_eq!(failed, 2);
    let failed_note = repos
        .notes
        .note_by_id(memo.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(failed_note.status, NoteStatus::Failed);
    assert_eq!(failed_note.failure_reason.as_deref(), Some("missing"));

    // Deleting: only the owner; the effects see who could see the note.
    let not_bobs = repos
        .notes
        .delete_note(memo.id, bob, &effects::deleted)
        .await
        .expect("delete");
    assert_eq!(not_bobs, None);
    let deleted = repos
        .notes
        .delete_note(memo.id, ann, &effects::deleted)
        .await
        .expect("delete");
    assert_eq!(
        deleted,
        Some(DeletedNote {
            id: memo.id,
            owner_id: ann,
            recipients: vec![]
        })
    );
    assert_eq!(repos.notes.note_by_id(memo.id).await.expect("read"), None);
    assert_eq!(
        repos
            .notes
            .prune_idempotency_keys(Timestamp::now().plus_seconds(1))
            .await
            .expect("prune"),
        1
    );
    assert_eq!(
        repos
            .notes
            .idempotent_result(ann, "key-1")
            .await
            .expect("key"),
        None
    );

    // Blobs: the last reference gone, a collector marks, deletes and finishes.
    let sha_b = long.audio.sha256.clone();
    assert!(
        repos
            .notes
            .delete_note(long.id, ann, &effects::deleted)
            .await
            .expect("delete")
            .is_some()
    );
    let orphans = repos
        .blobs
        .orphaned_blobs(Timestamp::now().plus_seconds(1), 10)
        .await
        .expect("orphans");
    assert_eq!(orphans, std::slice::from_ref(&sha_b));
    let sha_a = memo.audio.sha256.clone();
    assert!(
        !repos
            .blobs
            .begin_blob_deletion(&sha_a)
            .await
            .expect("bob still uses it")
    );
    assert!(repos.blobs.begin_blob_deletion(&sha_b).await.expect("mark"));
    assert!(repos.blobs.blob_deleting(&sha_b).await.expect("marked"));
    // An upload of the same bytes meanwhile learns that they are being deleted...
    let again = new_note(ann, "again.wav", 'b', 90.0);
    let (_, deleting) = inserted(insert(&repos, &again, None).await);
    assert!(deleting);
    // ...and the finished deletion keeps the revived row, clearing the mark.
    repos
        .blobs
        .finish_blob_deletion(&sha_b)
        .await
        .expect("finish");
    assert!(!repos.blobs.blob_deleting(&sha_b).await.expect("cleared"));
    let known = repos
        .blobs
        .known_blobs(&[sha_a.clone(), sha_b.clone(), "c".repeat(64)])
        .await
        .expect("known");
    assert_eq!(known, [sha_a.clone(), sha_b.clone()].into_iter().collect());
    let referenced = repos
        .blobs
        .referenced_blobs("", Timestamp::now().plus_seconds(1), 10)
        .await
        .expect("referenced");
    assert_eq!(referenced, [sha_a.clone(), sha_b.clone()]);
    assert_eq!(
        repos
            .blobs
            .referenced_blobs(&sha_a, Timestamp::now().plus_seconds(1), 10)
            .await
            .expect("after"),
        std::slice::from_ref(&sha_b)
    );
    // Bytes no row knows: a placeholder marks them, and finishing removes it.
    let unknown = "d".repeat(64);
    assert!(
        repos
            .blobs
            .begin_unknown_blob_deletion(&unknown)
            .await
            .expect("claim")
    );
    assert!(
        !repos
            .blobs
            .begin_unknown_blob_deletion(&sha_a)
            .await
            .expect("has a row")
    );
    repos
        .blobs
        .finish_blob_deletion(&unknown)
        .await
        .expect("finish");
    assert!(
        repos
            .blobs
            .known_blobs(&[unknown])
            .await
            .expect("known")
            .is_empty()
    );

    // Deleting a user deletes their notes, with the notes' effects.
    assert!(
        repos
            .users
            .delete_user(bob, &effects::deleted)
            .await
            .expect("delete user")
    );
    assert_eq!(repos.users.user_by_id(bob).await.expect("gone"), None);
    assert_eq!(
        repos.notes.note_by_id(same_bytes.id).await.expect("gone"),
        None
    );
    assert!(
        !repos
            .users
            .delete_user(bob, &effects::deleted)
            .await
            .expect("twice")
    );

    // The log holds every effect, in order, with its audience.
    repos
        .events
        .append(&Effects::none())
        .await
        .expect("nothing to append");
    let events = repos.events.events_after(0, 100).await.expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.data.kind().as_str()).collect();
    assert_eq!(
        kinds,
        [
            "note.created",
            "note.created",
            "note.created",
            "note.failed",
            "note.failed",
            "note.deleted",
            "note.deleted",
            "note.created",
            "note.deleted"
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        events[3].data,
        EventData::NoteFailed(NoteFailed {
            note_id: memo.id.to_string(),
            reason: "missing".into()
        })
    );
    assert_eq!(
        events[8].data,
        EventData::NoteDeleted(NoteDeleted {
            note_id: same_bytes.id.to_string()
        })
    );
    assert_eq!(events[8].audience, [bob]);
    let tail = repos
        .events
        .events_after(events[6].seq, 2)
        .await
        .expect("tail");
    assert_eq!(tail, events[7..9]);
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

async fn db_fail(repos: &Repos, sha: &str) -> u64 {
    hark_server::notes::fail_notes_of_blob(repos, sha, "missing")
        .await
        .expect("fail")
}

/// Either backend, concretely: `append_holding` is not part of the object-safe traits.
enum Concrete {
    Sqlite(db::sqlite::SqliteRepo),
    Postgres(db::postgres::PostgresRepo),
}

impl Concrete {
    async fn append_holding(&self, effects: &Effects, hold: Duration) {
        let wait = tokio::time::sleep(hold);
        match self {
            Concrete::Sqlite(repo) => repo.append_holding(effects, wait).await,
            Concrete::Postgres(repo) => repo.append_holding(effects, wait).await,
        }
        .expect("append");
    }
}

/// Writers hold their transactions open for random times after appending, so that without a
/// commit-ordered log they would commit out of `seq` order, while a reader polls `seq > last`.
async fn a_reader_of_the_event_log_never_skips_an_event_that_commits_late(backend: Backend) {
    const WRITERS: usize = 24;
    const EVENTS_EACH: usize = 8;
    let (url, pg, _dir) = test_database(backend).await;
    let concrete = match backend {
        Backend::Sqlite => Concrete::Sqlite(db::sqlite::connect(&url, true).await.expect("sqlite")),
        Backend::Postgres => {
            Concrete::Postgres(db::postgres::connect(&url, true).await.expect("postgres"))
        }
    };
    let concrete = Arc::new(concrete);
    let reader = db::connect(&url, false).await.expect("reader");
    let audience = UserId::generate();
    let writing = Arc::new(AtomicBool::new(true));

    let polled = tokio::spawn({
        let writing = writing.clone();
        async move {
            let (mut last, mut seen) = (0, Vec::new());
            loop {
                let done = !writing.load(Ordering::SeqCst);
                let batch = reader.events.events_after(last, 1000).await.expect("poll");
                for event in batch {
                    assert!(event.seq > last);
                    last = event.seq;
                    seen.push(event.data.note_id().to_owned());
                }
                if done {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let concrete = concrete.clone();
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..EVENTS_EACH {
                let note_id = format!("{writer}-{i}");
                let effects = Effects::none().event(
                    EventData::NoteDeleted(NoteDeleted {
                        note_id: note_id.clone(),
                    }),
                    vec![audience],
                );
                let hold = Duration::from_millis(((writer * 7 + i * 13) % 23) as u64);
                concrete.append_holding(&effects, hold).await;
                written.push(note_id);
            }
            written
        }));
    }
    let mut written = BTreeSet::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    writing.store(false, Ordering::SeqCst);
    let seen = polled.await.expect("reader");
    assert_eq!(
        seen.len(),
        WRITERS * EVENTS_EACH,
        "every event read exactly once"
    );
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), written);
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

/// Appends a `note.deleted` for `audience`.
async fn append_deleted(repos: &Repos, audience: UserId) {
    let effects = Effects::none().event(
        EventData::NoteDeleted(NoteDeleted {
            note_id: NoteId::generate().to_string(),
        }),
        vec![audience],
    );
    repos.events.append(&effects).await.expect("append");
}

/// A webhook of `owner`'s for `note.deleted`.
async fn webhook_for_deletions(repos: &Repos, owner: UserId) -> Webhook {
    let webhook = Webhook {
        id: WebhookId::generate(),
        owner_id: owner,
        url: "https://example.com/hook".into(),
        events: vec![EventType::NoteDeleted],
        created_at: Timestamp::now(),
    };
    repos
        .webhooks
        .create_webhook(&webhook, "whsec_c2VjcmV0")
        .await
        .expect("webhook");
    webhook
}

async fn a_leased_position_has_one_holder_at_a_time(backend: Backend) {
    let (url, pg, _dir) = test_database(backend).await;
    let repos = db::connect(&url, true).await.expect("connect");
    let positions = repos.positions.as_ref();
    let audience = UserId::generate();
    for _ in 0..3 {
        append_deleted(&repos, audience).await;
    }
    let soon = || Timestamp::now().plus_seconds(60);

    // A new position starts at the log's end, and opening it again keeps it.
    assert_eq!(positions.open_position("relay").await.expect("open"), 3);
    let lease = |owner: &'static str, until: Timestamp| async move {
        positions
            .lease_position("relay", owner, until)
            .await
            .expect("lease")
    };
    assert_eq!(lease("a", soon()).await, Some(3));
    assert_eq!(lease("b", soon()).await, None, "a holds it");
    assert!(
        !positions
            .advance_position("relay", "b", 9, soon())
            .await
            .expect("advance")
    );
    positions
        .release_position("relay", "b")
        .await
        .expect("release");
    assert_eq!(lease("b", soon()).await, None, "only the holder releases");

    append_deleted(&repos, audience).await;
    assert!(
        positions
            .advance_position("relay", "a", 4, soon())
            .await
            .expect("advance")
    );
    assert_eq!(lease("a", soon()).await, Some(4), "the holder renews");
    assert_eq!(positions.open_position("relay").await.expect("open"), 4);

    // An expired lease goes to whoever asks; the old holder can no longer move the position.
    let past = Timestamp::now().plus_seconds(-1);
    assert_eq!(lease("a", past).await, Some(4));
    assert_eq!(lease("b", soon()).await, Some(4), "a's lease expired");
    assert!(
        !positions
            .advance_position("relay", "a", 4, soon())
            .await
            .expect("advance")
    );
    assert_eq!(lease("a", soon()).await, None);
    positions
        .release_position("relay", "b")
        .await
        .expect("release");
    assert_eq!(lease("a", soon()).await, Some(4), "released: free at once");

    // Leasing a position nobody opened opens it at the log's end; others are apart.
    assert_eq!(lease("c", soon()).await, None, "\"relay\" is a's");
    assert_eq!(
        positions
            .lease_position("other", "c", soon())
            .await
            .expect("lease"),
        Some(4)
    );
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

async fn an_event_from_elsewhere_gets_the_rows_the_dispatchers_would_make(backend: Backend) {
    let (url, pg, _dir) = test_database(backend).await;
    let repos = db::connect(&url, true).await.expect("connect");
    let (ann, bob) = users_and_api_keys(&repos).await;
    let webhook = webhook_for_deletions(&repos, ann).await;
    let subscription = repos
        .push
        .save_push_subscription(&PushSubscription {
            id: PushSubscriptionId::generate(),
            owner_id: ann,
            endpoint: "https://push.example.com/send/1".into(),
            p256dh: "BPubKey".into(),
            auth: "c2VjcmV0".into(),
            created_at: Timestamp::now(),
        })
        .await
        .expect("subscription");
    append_deleted(&repos, ann).await;
    append_deleted(&repos, bob).await;
    let events = repos.events.events_after(0, 10).await.expect("events");
    let (anns, bobs) = (&events[0], &events[1]);
    let dispatch = |seq: i64, id: String| {
        let webhooks = repos.webhooks.clone();
        async move { webhooks.dispatch_event(seq, &id).await.expect("dispatch") }
    };

    assert_eq!(dispatch(anns.seq, anns.id.clone()).await, 1);
    assert_eq!(dispatch(anns.seq, anns.id.clone()).await, 0, "once only");
    assert_eq!(
        dispatch(bobs.seq, bobs.id.clone()).await,
        0,
        "not ann's to see"
    );
    assert_eq!(
        dispatch(anns.seq, bobs.id.clone()).await,
        0,
        "no such event"
    );
    // The dispatcher, reading the same events from the log, makes nothing more.
    let dispatched = repos
        .webhooks
        .dispatch_events(hark_server::webhooks::CONSUMER, 100)
        .await
        .expect("dispatch");
    assert_eq!((dispatched.events, dispatched.deliveries), (2, 0));
    let claimed = repos
        .webhooks
        .claim_deliveries(Timestamp::now().plus_seconds(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].webhook_id, claimed[0].event.seq),
        (webhook.id, anns.seq)
    );

    // Push messages, the same way.
    let push = |types: &'static [EventType], seq: i64, id: String| {
        let push = repos.push.clone();
        async move {
            push.dispatch_push_event(types, seq, &id)
                .await
                .expect("dispatch")
        }
    };
    let deleted: &[EventType] = &[EventType::NoteDeleted];
    assert_eq!(
        push(&[EventType::NoteReady], anns.seq, anns.id.clone()).await,
        0,
        "not a type pushed"
    );
    assert_eq!(push(deleted, anns.seq, anns.id.clone()).await, 1);
    assert_eq!(
        push(deleted, anns.seq, anns.id.clone()).await,
        0,
        "once only"
    );
    assert_eq!(
        push(deleted, bobs.seq, bobs.id.clone()).await,
        0,
        "not ann's to see"
    );
    let dispatched = repos
        .push
        .dispatch_push(hark_server::push::CONSUMER, deleted, 100)
        .await
        .expect("dispatch");
    assert_eq!((dispatched.events, dispatched.deliveries), (2, 0));
    let claimed = repos
        .push
        .claim_push_messages(Timestamp::now().plus_seconds(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].subscription_id, claimed[0].event.seq),
        (subscription.id, anns.seq)
    );
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

async fn a_dispatcher_writes_only_when_it_makes_rows_or_a_batch_is_behind(backend: Backend) {
    let (url, pg, _dir) = test_database(backend).await;
    let repos = db::connect(&url, true).await.expect("connect");
    let (ann, bob) = users_and_api_keys(&repos).await;
    let consumer = hark_server::webhooks::CONSUMER;
    let (positions, webhooks) = (repos.positions.as_ref(), repos.webhooks.as_ref());
    let position = || async { positions.open_position(consumer).await.expect("position") };
    let dispatch = |limit: i64| async move {
        let dispatched = webhooks
            .dispatch_events(consumer, limit)
            .await
            .expect("dispatch");
        (dispatched.events, dispatched.deliveries)
    };
    let start = position().await;

    // Events for no webhook: read, and read again next time, but nothing written.
    for _ in 0..3 {
        append_deleted(&repos, bob).await;
    }
    assert_eq!(dispatch(10).await, (3, 0));
    assert_eq!(
        position().await,
        start,
        "nothing to make: the position stays"
    );

    // A delivery to make: made, and the position moves past every event read.
    webhook_for_deletions(&repos, ann).await;
    append_deleted(&repos, ann).await;
    assert_eq!(dispatch(10).await, (4, 1));
    assert_eq!(position().await, start + 4);
    assert_eq!(dispatch(10).await, (0, 0));

    // A whole batch with nothing to make moves the position too, so passes stay short.
    for _ in 0..3 {
        append_deleted(&repos, bob).await;
    }
    assert_eq!(dispatch(2).await, (2, 0));
    assert_eq!(position().await, start + 6);
    assert_eq!(dispatch(2).await, (1, 0));
    assert_eq!(position().await, start + 6, "one event, less than a batch");
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

/// Claims, lease renewals, recorded passes and deletions of the same notes, all at once, never
/// fail: each locks a note's jobs in one order, so none waits for another in a cycle (on
/// PostgreSQL, a deadlock would abort one of them).
async fn claims_passes_and_deletions_of_the_same_notes_never_deadlock(backend: Backend) {
    const NOTES: usize = 200;
    const WORKERS: usize = 3;
    let (url, pg, _dir) = test_database(backend).await;
    let repos = db::connect(&url, true).await.expect("connect");
    let (ann, _) = users_and_api_keys(&repos).await;
    let mut notes = Vec::new();
    for i in 0..NOTES {
        // Notes of the same audio share their blobs' rows, which deletions lock too.
        let sha = ['a', 'b', 'c'][i % 3];
        let note = new_note(ann, &format!("n{i}.wav"), sha, 1.0);
        notes.push(inserted(insert(&repos, &note, None).await).0.id);
    }
    let deleting = Arc::new(AtomicBool::new(true));
    let passes = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (repos, deleting, passes) = (repos.clone(), deleting.clone(), passes.clone());
            tokio::spawn(async move {
                loop {
                    let until = Timestamp::after(Duration::from_secs(60));
                    let Some(claim) = repos.jobs.claim_jobs(until).await.expect("claim") else {
                        if !deleting.load(Ordering::SeqCst) {
                            return;
                        }
                        tokio::task::yield_now().await;
                        continue;
                    };
                    repos.jobs.extend_lease(&claim, until).await.expect("renew");
                    repos
                        .jobs
                        .finish_jobs(&claim, &every_step_done(&claim), &|s| {
                            effects::settled(s, "http://h")
                        })
                        .await
                        .expect("record the pass");
                    passes.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let deleters: Vec<_> = (0..WORKERS)
        .map(|k| {
            let (repos, passes) = (repos.clone(), passes.clone());
            let mine: Vec<NoteId> = notes.iter().copied().skip(k).step_by(WORKERS).collect();
            tokio::spawn(async move {
                // Once the workers are under way, so that deletions meet passes.
                while passes.load(Ordering::SeqCst) == 0 {
                    tokio::task::yield_now().await;
                }
                for note in mine {
                    let deleted = repos.notes.delete_note(note, ann, &effects::deleted).await;
                    assert!(deleted.expect("delete").is_some());
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for deleter in deleters {
        deleter.await.expect("deleter");
    }
    deleting.store(false, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("worker");
    }
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

backend_tests!(
    every_repository_method_keeps_its_contract,
    a_reader_of_the_event_log_never_skips_an_event_that_commits_late,
    a_leased_position_has_one_holder_at_a_time,
    an_event_from_elsewhere_gets_the_rows_the_dispatchers_would_make,
    a_dispatcher_writes_only_when_it_makes_rows_or_a_batch_is_behind,
    claims_passes_and_deletions_of_the_same_notes_never_deadlock,
);
