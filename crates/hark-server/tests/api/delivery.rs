//! Delivery: channels, sending at upload and later (all or nothing), what recipients may
//! read, the inbox with its cursor and long-poll, and listened marks.

use std::time::Duration;

use hark_api::{EventType, InboxQuery, NoteStatus, SendRequest};
use hark_client::UploadOptions;
use secrecy::ExposeSecret;

use crate::helpers::{
    Backend, TestApp, TestUser, assert_problem, sample_wav, spawn_app, spawn_app_with,
};

fn to(users: &[&TestUser]) -> UploadOptions {
    UploadOptions {
        to: users.iter().map(|u| u.email.clone()).collect(),
        ..UploadOptions::default()
    }
}

/// How many events of `kind` about `note` each user is in the audience of.
async fn audience_of(app: &TestApp, note: &str, kind: EventType) -> Vec<Vec<String>> {
    let repos = hark_server::db::connect(app.config.database_url.expose_secret(), false)
        .await
        .expect("database");
    let events = repos.events.events_after(0, 10_000).await.expect("events");
    events
        .iter()
        .filter(|e| e.data.kind() == kind && e.data.note_id() == note)
        .map(|e| {
            let mut users: Vec<String> = e.audience.iter().map(ToString::to_string).collect();
            users.sort();
            users
        })
        .collect()
}

async fn channels_are_managed_by_their_creator(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob, eve) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
        app.user("eve@example.com").await,
    );
    let created = ann.client.create_channel("job-42").await.expect("create");
    assert_eq!(
        (created.name.as_str(), created.creator_id.as_str()),
        ("job-42", ann.id.as_str())
    );
    let taken = ann
        .post("/api/v1/channels")
        .json(&serde_json::json!({"name": "job-42"}));
    assert_problem(taken.send().await.expect("send"), 409, "conflict").await;
    for bad in ["", "Job 42", "-x", "ü"] {
        let refused = ann
            .post("/api/v1/channels")
            .json(&serde_json::json!({"name": bad}));
        assert_problem(refused.send().await.expect("send"), 400, "validation").await;
    }
    let with_bob = ann
        .client
        .add_member("job-42", &bob.email)
        .await
        .expect("add");
    assert_eq!(with_bob.members, std::slice::from_ref(&bob.id));
    // By id as well as by email; adding twice changes nothing.
    let again = ann
        .client
        .add_member("job-42", &bob.id)
        .await
        .expect("again");
    assert_eq!(again.members, std::slice::from_ref(&bob.id));
    // A member sees the channel but does not manage it; anyone else does not see it.
    let listed = bob.client.channels().await.expect("bob's channels");
    assert_eq!(listed.items.len(), 1);
    let by_member = bob
        .client
        .add_member("job-42", &eve.email)
        .await
        .expect_err("member");
    assert_eq!(by_member.status(), Some(403));
    let by_stranger = eve
        .client
        .add_member("job-42", &eve.email)
        .await
        .expect_err("stranger");
    assert_eq!(by_stranger.status(), Some(404));
    assert!(eve.client.channels().await.expect("eve's").items.is_empty());
    let unknown = ann.client.add_member("job-42", "nobody@example.com").await;
    assert_eq!(unknown.expect_err("unknown user").status(), Some(404));
    ann.client
        .remove_member("job-42", &bob.email)
        .await
        .expect("remove");
    let gone = ann.client.remove_member("job-42", &bob.email).await;
    assert_eq!(gone.expect_err("not a member").status(), Some(404));
    assert!(bob.client.channels().await.expect("bob's").items.is_empty());
    app.stop().await;
}

async fn an_upload_reaches_its_recipients_and_nobody_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob, cat, eve) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
        app.user("cat@example.com").await,
        app.user("eve@example.com").await,
    );
    let note = ann
        .client
        .upload_bytes(sample_wav(), &to(&[&bob, &cat]))
        .await
        .expect("upload");
    for recipient in [&bob, &cat] {
        let inbox = recipient
            .client
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox");
        assert_eq!(inbox.items.len(), 1);
        let item = &inbox.items[0];
        assert_eq!(item.note.id, note.id);
        assert_eq!(
            (item.sender.id.as_str(), item.sender.email.as_str()),
            (ann.id.as_str(), "ann@example.com")
        );
        assert_eq!(item.listened_at, None);
        // A recipient reads the note, its audio and links.
        assert_eq!(
            recipient.client.note(&note.id).await.expect("note").id,
            note.id
        );
        assert_eq!(
            recipient.client.audio(&note.id).await.expect("audio"),
            sample_wav()
        );
        // ...and may not delete or send it.
        let delete = recipient
            .client
            .delete_note(&note.id)
            .await
            .expect_err("delete");
        assert_eq!(delete.status(), Some(404));
        let send = recipient
            .client
            .send_note(
                &note.id,
                &SendRequest {
                    to: vec![eve.email.clone()],
                    channel: None,
                },
            )
            .await
            .expect_err("forward");
        assert_eq!(send.status(), Some(403));
    }
    // The sender's own inbox is empty; a stranger sees nothing.
    assert!(
        ann.client
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox")
            .items
            .is_empty()
    );
    assert!(
        eve.client
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox")
            .items
            .is_empty()
    );
    assert_eq!(
        eve.client
            .note(&note.id)
            .await
            .expect_err("stranger")
            .status(),
        Some(404)
    );
    let mut expected = vec![bob.id.clone(), cat.id.clone()];
    expected.sort();
    assert_eq!(
        audience_of(&app, &note.id, EventType::NoteReceived).await,
        [expected]
    );
    app.stop().await;
}

async fn unknown_recipients_send_nothing_to_anybody(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let response = ann
        .post("/api/v1/notes")
        .query(&[
            ("to", format!("{},ghost@example.com", bob.email)),
            ("channel", "nope".into()),
        ])
        .body(sample_wav())
        .send()
        .await
        .expect("send");
    let problem = assert_problem(response, 400, "validation").await;
    assert!(problem.contains("ghost@example.com"), "{}", problem);
    assert!(problem.contains("channel nope"), "{}", problem);
    assert!(
        ann.client
            .list_notes(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(
        bob.client
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox")
            .items
            .is_empty()
    );
    assert!(app.blob_files().is_empty(), "{:?}", app.blob_files());
    // The same for a later send.
    let note = ann
        .client
        .upload_bytes(sample_wav(), &Default::default())
        .await
        .expect("upload");
    let refused = ann
        .client
        .send_note(
            &note.id,
            &SendRequest {
                to: vec![bob.id.clone(), "ghost@example.com".into()],
                channel: None,
            },
        )
        .await
        .expect_err("unknown");
    assert_eq!(refused.status(), Some(400));
    assert!(
        bob.client
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox")
            .items
            .is_empty()
    );
    app.stop().await;
}

async fn a_note_sent_to_a_channel_reaches_everyone_in_it_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob, cat, eve) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
        app.user("cat@example.com").await,
        app.user("eve@example.com").await,
    );
    ann.client.create_channel("route-7").await.expect("channel");
    for member in [&bob, &cat] {
        ann.client
            .add_member("route-7", &member.email)
            .await
            .expect("member");
    }
    let note = ann
        .client
        .upload_bytes(sample_wav(), &Default::default())
        .await
        .expect("upload");
    let channel = SendRequest {
        to: vec![],
        channel: Some("route-7".into()),
    };
    let sent = ann
        .client
        .send_note(&note.id, &channel)
        .await
        .expect("send");
    assert_eq!(sent.recipients.len(), 2);
    // Sending again, and to a recipient directly, delivers nothing twice.
    ann.client
        .send_note(&note.id, &channel)
        .await
        .expect("again");
    let direct = SendRequest {
        to: vec![bob.email.clone()],
        channel: None,
    };
    ann.client
        .send_note(&note.id, &direct)
        .await
        .expect("direct");
    for member in [&bob, &cat] {
        let inbox = member
            .client
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox");
        assert_eq!(inbox.items.len(), 1);
        assert_eq!(inbox.items[0].channel.as_deref(), Some("route-7"));
    }
    assert_eq!(
        audience_of(&app, &note.id, EventType::NoteReceived)
            .await
            .len(),
        1
    );
    // A member's note to the channel reaches the creator and the other members.
    let reply = cat
        .client
        .upload_bytes(
            sample_wav(),
            &UploadOptions {
                channel: Some("route-7".into()),
                ..Default::default()
            },
        )
        .await
        .expect("reply");
    for user in [&ann, &bob] {
        let inbox = user
            .client
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox");
        assert!(inbox.items.iter().any(|i| i.note.id == reply.id));
    }
    // Someone outside the channel cannot send to it.
    let outside = eve
        .client
        .upload_bytes(
            sample_wav(),
            &UploadOptions {
                channel: Some("route-7".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("not in the channel");
    assert_eq!(outside.status(), Some(400));
    app.stop().await;
}

async fn the_inbox_resumes_from_its_cursor_and_long_polls(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let empty = bob
        .client
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox");
    assert!(empty.items.is_empty());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let note = ann
            .client
            .upload_bytes(sample_wav(), &to(&[&bob]))
            .await
            .expect("upload");
        ids.push(note.id);
    }
    let all = bob
        .client
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox");
    let newest_first: Vec<&str> = all.items.iter().map(|i| i.note.id.as_str()).collect();
    assert_eq!(
        newest_first,
        [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
    );
    // Paging on from the start with a small limit never skips one.
    let mut query = InboxQuery {
        since: Some(empty.cursor.clone()),
        limit: Some(2),
        ..Default::default()
    };
    let first = bob.client.inbox(&query).await.expect("page");
    let seen: Vec<&str> = first.items.iter().map(|i| i.note.id.as_str()).collect();
    assert_eq!(seen, [ids[1].as_str(), ids[0].as_str()]);
    query.since = Some(first.cursor.clone());
    let second = bob.client.inbox(&query).await.expect("page");
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].note.id, ids[2]);
    assert_eq!(second.cursor, all.cursor);
    // Nothing newer: a short wait ends empty, at the same cursor.
    query.since = Some(second.cursor.clone());
    query.wait = Some(1);
    let nothing = bob.client.inbox(&query).await.expect("wait");
    assert!(nothing.items.is_empty());
    assert_eq!(nothing.cursor, second.cursor);
    // A long wait answers with the note as soon as it is sent.
    query.wait = Some(30);
    let waiting = {
        let (client, query) = (bob.client.clone(), query.clone());
        tokio::spawn(async move { client.inbox(&query).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the long-poll held");
    let late = ann
        .client
        .upload_bytes(sample_wav(), &to(&[&bob]))
        .await
        .expect("upload");
    let woken = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("woken well before the wait ends")
        .expect("task")
        .expect("inbox");
    assert_eq!(woken.items.len(), 1);
    assert_eq!(woken.items[0].note.id, late.id);
    // Bad cursors and waits are refused.
    for (key, value) in [
        ("since", "x"),
        ("since", "-1"),
        ("wait", "61"),
        ("limit", "0"),
    ] {
        let response = bob
            .get("/api/v1/inbox")
            .query(&[(key, value)])
            .send()
            .await
            .expect("send");
        assert_problem(response, 400, "validation").await;
    }
    app.stop().await;
}

async fn a_thousand_long_polls_all_wake_for_one_note(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    ann.client
        .create_channel("everyone")
        .await
        .expect("channel");
    let mut members = Vec::new();
    for n in 0..20 {
        let user = app.user(&format!("member{n}@example.com")).await;
        ann.client
            .add_member("everyone", &user.id)
            .await
            .expect("member");
        members.push(user);
    }
    let start = members[0]
        .client
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox")
        .cursor;
    let query = InboxQuery {
        since: Some(start),
        wait: Some(60),
        ..Default::default()
    };
    let mut waiters = Vec::new();
    for n in 0..1000 {
        let (client, query) = (members[n % members.len()].client.clone(), query.clone());
        waiters.push(tokio::spawn(async move { client.inbox(&query).await }));
    }
    // Give the requests time to be waiting (one that is not yet would find the note in its
    // first read, which is right too); none has answered.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    let options = UploadOptions {
        channel: Some("everyone".into()),
        ..Default::default()
    };
    let note = ann
        .client
        .upload_bytes(sample_wav(), &options)
        .await
        .expect("upload");
    for waiter in waiters {
        let page = waiter.await.expect("task").expect("inbox");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].note.id, note.id);
    }
    app.stop().await;
}

async fn listening_is_recorded_once_and_told_to_the_sender(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob, cat) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
        app.user("cat@example.com").await,
    );
    let note = ann
        .client
        .upload_bytes(sample_wav(), &to(&[&bob, &cat]))
        .await
        .expect("upload");
    // Bob marks it; twice changes nothing.
    bob.client.mark_listened(&note.id).await.expect("listened");
    bob.client.mark_listened(&note.id).await.expect("again");
    let unlistened = InboxQuery {
        unlistened: Some(true),
        ..Default::default()
    };
    assert!(
        bob.client
            .inbox(&unlistened)
            .await
            .expect("inbox")
            .items
            .is_empty()
    );
    let inbox = bob
        .client
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox");
    assert!(inbox.items[0].listened_at.is_some());
    // Cat's range request is not a listen; her whole download is.
    let part = cat
        .get(&format!("/api/v1/notes/{}/audio", note.id))
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    part.bytes().await.expect("body");
    assert_eq!(
        cat.client
            .inbox(&unlistened)
            .await
            .expect("inbox")
            .items
            .len(),
        1
    );
    cat.client.audio(&note.id).await.expect("download");
    let mut listened = Vec::new();
    for _ in 0..100 {
        listened = cat.client.inbox(&unlistened).await.expect("inbox").items;
        if listened.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listened.is_empty(), "the whole download marked it");
    // The owner's download marks nothing; strangers cannot mark.
    ann.client.audio(&note.id).await.expect("owner");
    let owner_mark = ann
        .client
        .mark_listened(&note.id)
        .await
        .expect_err("not received");
    assert_eq!(owner_mark.status(), Some(404));
    let events = audience_of(&app, &note.id, EventType::NoteListened).await;
    assert_eq!(
        events,
        [vec![ann.id.clone()], vec![ann.id.clone()]],
        "one per listener, to the sender"
    );
    app.stop().await;
}

async fn a_recipient_sees_the_note_processed(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let note = ann
        .client
        .upload_bytes(sample_wav(), &to(&[&bob]))
        .await
        .expect("upload");
    let mut status = NoteStatus::Pending;
    for _ in 0..200 {
        status = bob.client.note(&note.id).await.expect("note").status;
        if status == NoteStatus::Ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, NoteStatus::Ready);
    assert_eq!(
        bob.client.jobs(&note.id).await.expect("jobs").items.len(),
        6
    );
    let mut audience = audience_of(&app, &note.id, EventType::NoteReady).await;
    let mut expected = vec![ann.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(
        audience.pop(),
        Some(expected),
        "note.ready reaches the recipients too"
    );
    app.stop().await;
}

backend_tests!(
    channels_are_managed_by_their_creator,
    an_upload_reaches_its_recipients_and_nobody_else,
    unknown_recipients_send_nothing_to_anybody,
    a_note_sent_to_a_channel_reaches_everyone_in_it_once,
    the_inbox_resumes_from_its_cursor_and_long_polls,
    a_thousand_long_polls_all_wake_for_one_note,
    listening_is_recorded_once_and_told_to_the_sender,
    a_recipient_sees_the_note_processed,
);

/// Two servers on one PostgreSQL behave as one: a long-poll and an event stream on the second
/// wake when the first accepts a note (the first announces its commits with NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_wake_each_others_waiters() {
    let first = spawn_app(Backend::Postgres).await;
    let shared = first.config.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, move |c| c.database_url = shared).await;
    let ann = first.user("ann@example.com").await;
    let bob = first.user("bob@example.com").await;
    let on_second = hark_client::Client::new(&second.base).with_token(&bob.token);
    let start = on_second
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox")
        .cursor;
    let query = InboxQuery {
        since: Some(start),
        wait: Some(30),
        ..Default::default()
    };
    let waiting = tokio::spawn(async move { on_second.inbox(&query).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the long-poll on the second node held"
    );
    let note = ann
        .client
        .upload_bytes(sample_wav(), &to(&[&bob]))
        .await
        .expect("upload");
    // The second node's follower also looks every 5 s on its own: only the first node's
    // announcement wakes it sooner.
    let woken = tokio::time::timeout(Duration::from_secs(4), waiting)
        .await
        .expect("woken by the first node's announcement")
        .expect("task")
        .expect("inbox");
    assert_eq!(woken.items.len(), 1);
    assert_eq!(woken.items[0].note.id, note.id);
    second.stop().await;
    first.stop().await;
}
