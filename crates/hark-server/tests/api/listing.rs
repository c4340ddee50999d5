//! Listing: filters, sorts, validation, and cursor pagination that neither skips nor repeats.

use std::collections::HashSet;

use hark_api::{ListNotesQuery, SendRequest, Sort};
use hark_client::UploadOptions;

use sqlx::Connection;

use crate::helpers::{
    Backend, TestApp, TestUser, assert_problem, sample, spawn_app, spawn_app_with,
};

/// Uploads named corpus files; returns the notes in upload order.
async fn upload_all(user: &TestUser, files: &[(&str, &str)]) -> Vec<hark_api::Note> {
    let mut notes = Vec::new();
    for (file, name) in files {
        let options = UploadOptions {
            name: Some((*name).into()),
            ..Default::default()
        };
        notes.push(
            user.client
                .upload_bytes(sample(file), &options)
                .await
                .expect("upload"),
        );
    }
    notes
}

/// The first page of the user's list for a query string.
async fn listed(user: &TestUser, query: String) -> Vec<hark_api::Note> {
    let list: hark_api::NoteList = user
        .get(&format!("/api/v1/notes?{query}"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("list");
    list.items
}

fn names(list: &hark_api::NoteList) -> Vec<&str> {
    list.items.iter().map(|n| n.name.as_str()).collect()
}

/// Processing is off: the notes stay `pending`, which the status filters rely on.
async fn filters_and_sorts_select_and_order_notes(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let user = app.user("ann@example.com").await;
    upload_all(
        &user,
        &[
            ("t1_pcm16_16k.wav", "Alpha.wav"),
            ("long_opus.ogg", "beta.ogg"),
            ("t4.flac", "gamma.flac"),
            ("t5_cbr64.mp3", "alphabet.mp3"),
        ],
    )
    .await;
    let list = |query: String| listed(&user, query);
    let sender = format!("sender={}", user.email);
    let cases: [(&str, &[&str]); 10] = [
        ("", &["alphabet.mp3", "gamma.flac", "beta.ogg", "Alpha.wav"]),
        (
            "sort=created_at",
            &["Alpha.wav", "beta.ogg", "gamma.flac", "alphabet.mp3"],
        ),
        ("min_duration=60", &["beta.ogg"]),
        ("name=ALPHA&sort=name", &["Alpha.wav", "alphabet.mp3"]),
        ("name=%25", &[]),
        ("format=flac", &["gamma.flac"]),
        ("status=ready", &[]),
        ("sender=nobody@example.com", &[]),
        ("created_before=2000-01-01T00:00:00Z", &[]),
        (
            "max_duration=60&sort=-duration&status=pending",
            &["Alpha.wav", "gamma.flac", "alphabet.mp3"],
        ),
    ];
    for (query, expected) in cases {
        let got: Vec<String> = list(query.to_owned())
            .await
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(got, expected, "{query}");
    }
    assert_eq!(list("status=pending".into()).await.len(), 4);
    assert_eq!(list(sender).await.len(), 4);
    let by_duration = list("sort=duration".into()).await;
    assert!(
        by_duration
            .windows(2)
            .all(|w| w[0].duration_seconds <= w[1].duration_seconds)
    );
    let middle = list(String::new()).await[1].created_at.clone();
    let after = list(format!("created_after={}", middle.replace('+', "%2B"))).await;
    assert_eq!(
        after.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["alphabet.mp3"]
    );
    app.stop().await;
}

async fn bad_list_parameters_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    for query in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "sort=size",
        "status=done",
        "format=aiff",
        "max_duration=-1",
        "max_duration=abc",
        "created_after=yesterday",
        "cursor=not-a-cursor",
    ] {
        let response = user
            .get(&format!("/api/v1/notes?{query}"))
            .send()
            .await
            .expect("send");
        assert_problem(response, 400, "validation").await;
    }
    app.stop().await;
}

async fn pagination_neither_skips_nor_repeats_while_notes_arrive(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let wav = sample("t1_pcm16_16k.wav");
    for n in 0..12 {
        let options = UploadOptions {
            name: Some(format!("n{n:02}.wav")),
            ..Default::default()
        };
        user.client
            .upload_bytes(wav.clone(), &options)
            .await
            .expect("upload");
    }
    for sort in [
        Sort::CreatedAtDesc,
        Sort::CreatedAt,
        Sort::Name,
        Sort::DurationDesc,
    ] {
        let mut seen = Vec::new();
        let mut query = ListNotesQuery {
            limit: Some(5),
            sort: Some(sort),
            ..Default::default()
        };
        let existing: HashSet<String> = user
            .client
            .list_notes(&ListNotesQuery {
                limit: Some(500),
                ..Default::default()
            })
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|n| n.id)
            .collect();
        loop {
            let page = user.client.list_notes(&query).await.expect("page");
            seen.extend(page.items.iter().map(|n| n.id.clone()));
            // A new note arrives between pages.
            let options = UploadOptions {
                name: Some(format!("late-{sort}-{}.wav", seen.len())),
                ..Default::default()
            };
            user.client
                .upload_bytes(wav.clone(), &options)
                .await
                .expect("upload");
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: an item was repeated");
        assert!(
            existing.iter().all(|id| unique.contains(id)),
            "{sort}: an item that existed before was skipped"
        );
    }
    app.stop().await;
}

async fn a_cursor_cannot_be_reused_with_another_sort(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    upload_all(
        &user,
        &[("t1_pcm16_16k.wav", "a.wav"), ("t4.flac", "b.flac")],
    )
    .await;
    let page = user
        .client
        .list_notes(&ListNotesQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("list");
    let cursor = page.next_cursor.expect("more");
    let response = user
        .get(&format!("/api/v1/notes?sort=name&cursor={cursor}"))
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "validation").await;
    app.stop().await;
}

async fn name_filters_fold_unicode_and_refuse_control_characters(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    upload_all(
        &user,
        &[
            ("t1_pcm16_16k.wav", "Émile à Zürich.wav"),
            ("t4.flac", "emile.flac"),
        ],
    )
    .await;
    let found = user
        .client
        .list_notes(&ListNotesQuery {
            name: Some("ÉMILE À".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(names(&found), ["Émile à Zürich.wav"]);
    for query in [
        "name=a%00b",
        "channel=%00",
        "sort=name&cursor=eyJzIjoibmFtZSIsImsiOiJcdTAwMDAiLCJpIjoiMDFhMjA5MDMtMTBiZC03MmUwLWI1YzctMzk0MGIyNzJjMTFiIn0",
    ] {
        let response = user
            .get(&format!("/api/v1/notes?{query}"))
            .send()
            .await
            .expect("send");
        assert_problem(response, 400, "validation").await;
    }
    let response = user.get("/info?name=%00").send().await.expect("send");
    assert_problem(response, 400, "validation").await;
    app.stop().await;
}

/// Every page of a listing, following `next_cursor`; the names in order.
async fn all_pages(user: &TestUser, query: ListNotesQuery) -> Vec<String> {
    let mut query = ListNotesQuery {
        limit: Some(1),
        ..query
    };
    let mut names = Vec::new();
    loop {
        let page = user.client.list_notes(&query).await.expect("page");
        names.extend(page.items.into_iter().map(|n| n.name));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return names,
        }
    }
}

/// Runs a statement straight on the app's database, for changes no route makes.
async fn execute(app: &TestApp, backend: Backend, sql: String) {
    let url = secrecy::ExposeSecret::expose_secret(&app.config.database_url);
    let statement = sqlx::AssertSqlSafe(sql);
    match backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(url).await.expect("db");
            sqlx::query(statement)
                .execute(&mut db)
                .await
                .expect("statement");
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(url).await.expect("db");
            sqlx::query(statement)
                .execute(&mut db)
                .await
                .expect("statement");
        }
    }
}

async fn name_substrings_of_any_length_match_in_every_order_and_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let uploaded = [
        "Émile à Zürich.wav",
        "Straße 5.ogg",
        "memo \"quoted\" 100%.wav",
        "memo_2.flac",
        "Alpha memo.mp3",
        "zz.wav",
        "Call-with-Søren.ogg",
        // Holds each trigram of a chain across "call-with-søren", but not the substring.
        "cal l-w ith -sø ren.wav",
    ];
    let files = [
        "t1_pcm16_16k.wav",
        "long_opus.ogg",
        "t4.flac",
        "t5_cbr64.mp3",
    ];
    let pairs: Vec<(&str, &str)> = uploaded
        .iter()
        .enumerate()
        .map(|(i, name)| (files[i % files.len()], *name))
        .collect();
    upload_all(&user, &pairs).await;
    let substrings = [
        "zür",
        "ZÜRICH",
        "é",
        "ße",
        "\"quoted\"",
        "100%",
        "o_2",
        "mem",
        "MEMO",
        "z",
        "zz",
        "xyz",
        "%",
        "_",
        "a z",
        "call-with-søren",
    ];
    for substring in substrings {
        let folded = substring.to_lowercase();
        let matching: Vec<String> = uploaded
            .iter()
            .filter(|name| name.to_lowercase().contains(&folded))
            .map(|name| (*name).to_owned())
            .collect();
        let mut by_name = matching.clone();
        by_name.sort();
        let newest_first: Vec<String> = matching.iter().rev().cloned().collect();
        for (sort, expected) in [
            ("created_at", &matching),
            ("-created_at", &newest_first),
            ("name", &by_name),
        ] {
            let query = ListNotesQuery {
                name: Some(substring.into()),
                sort: Some(sort.parse().expect("a sort")),
                ..Default::default()
            };
            let one_page: Vec<String> = user
                .client
                .list_notes(&query)
                .await
                .expect("list")
                .items
                .into_iter()
                .map(|n| n.name)
                .collect();
            assert_eq!(&one_page, expected, "name={substring} sort={sort}");
            assert_eq!(
                &all_pages(&user, query).await,
                expected,
                "name={substring} sort={sort}, a page at a time"
            );
        }
    }
    app.stop().await;
}

async fn notes_of_the_same_microsecond_page_by_id_in_a_name_search(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let at: i64 = 1_700_000_000_000_000;
    // Inserted out of id order, all in one microsecond, between two others.
    let notes = [
        ("0190a000-0000-7000-8000-000000000003", "tie c.wav", at),
        ("0190a000-0000-7000-8000-000000000001", "tie a.wav", at),
        ("0190a000-0000-7000-8000-000000000005", "tie e.wav", at),
        ("0190a000-0000-7000-8000-000000000002", "tie b.wav", at),
        ("0190a000-0000-7000-8000-000000000004", "tie d.wav", at),
        (
            "0190a000-0000-7000-8000-000000000009",
            "tie late.wav",
            at + 1,
        ),
        (
            "0190a000-0000-7000-8000-000000000000",
            "tie early.wav",
            at - 1,
        ),
    ];
    for (id, name, created_at) in notes {
        execute(
            &app,
            backend,
            format!(
                "INSERT INTO notes (id, owner_id, name, name_folded, format, codec, mime, \
                 duration_seconds, sample_rate, channels, bitrate, size_bytes, sha256, status, \
                 tags, created_at) VALUES ('{id}', '{owner}', '{name}', '{name}', 'wav', \
                 'pcm_s16le', 'audio/wav', 1.0, 16000, 1, 256000, 32000, '{sha}', 'ready', '{{}}', \
                 {created_at})",
                owner = user.id,
                sha = "0".repeat(64),
            ),
        )
        .await;
    }
    let oldest_first = [
        "tie early.wav",
        "tie a.wav",
        "tie b.wav",
        "tie c.wav",
        "tie d.wav",
        "tie e.wav",
        "tie late.wav",
    ];
    let newest_first: Vec<&str> = oldest_first.iter().rev().copied().collect();
    for (sort, expected) in [
        ("created_at", oldest_first.to_vec()),
        ("-created_at", newest_first),
    ] {
        for limit in [1, 2, 3] {
            let mut query = ListNotesQuery {
                name: Some("tie".into()),
                sort: Some(sort.parse().expect("a sort")),
                limit: Some(limit),
                ..Default::default()
            };
            let mut names = Vec::new();
            loop {
                let page = user.client.list_notes(&query).await.expect("page");
                names.extend(page.items.into_iter().map(|n| n.name));
                match page.next_cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
            assert_eq!(names, expected, "sort={sort} limit={limit}");
        }
    }
    app.stop().await;
}

async fn a_deleted_or_renamed_note_leaves_the_name_search(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let notes = upload_all(
        &user,
        &[
            ("t1_pcm16_16k.wav", "old name.wav"),
            ("t4.flac", "doomed.flac"),
        ],
    )
    .await;
    let find = |name: &str| {
        all_pages(
            &user,
            ListNotesQuery {
                name: Some(name.into()),
                ..Default::default()
            },
        )
    };
    user.client.delete_note(&notes[1].id).await.expect("delete");
    assert!(find("doomed").await.is_empty());
    execute(
        &app,
        backend,
        format!(
            "UPDATE notes SET name = 'Nouveau Nom.wav', name_folded = 'nouveau nom.wav' \
             WHERE id = '{}'",
            notes[0].id
        ),
    )
    .await;
    assert!(find("old name").await.is_empty());
    assert_eq!(find("NOUVEAU").await, ["Nouveau Nom.wav"]);
    // The deleted note's name is free for a new one.
    upload_all(&user, &[("t4.flac", "doomed.flac")]).await;
    assert_eq!(find("doomed").await, ["doomed.flac"]);
    app.stop().await;
}

async fn received_notes_merge_into_every_order_and_follow_a_rename(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut visible = Vec::new();
    for (user, file, name) in [
        (&ann, "t1_pcm16_16k.wav", "ann b.wav"),
        (&bob, "long_opus.ogg", "bob a.ogg"),
        (&ann, "t4.flac", "ann d.flac"),
        (&bob, "t5_cbr64.mp3", "bob c.mp3"),
        (&bob, "t4.flac", "bob unsent.flac"),
    ] {
        let note = upload_all(user, &[(file, name)]).await.remove(0);
        if name != "bob unsent.flac" {
            visible.push(note);
        }
    }
    // The inbox entries are written straight, as a delivery writes them (no channel membership
    // or recipient lookup needed).
    for note in visible.iter().filter(|n| n.name.starts_with("bob")) {
        execute(
            &app,
            backend,
            format!(
                "INSERT INTO inbox_entries (recipient_id, note_id, sender_id, delivered_at) \
                 VALUES ('{}', '{}', '{}', 0)",
                ann.id, note.id, bob.id
            ),
        )
        .await;
    }
    let ordered = |key: fn(&hark_api::Note, &hark_api::Note) -> std::cmp::Ordering| {
        let mut notes = visible.clone();
        notes.sort_by(|a, b| key(a, b).then_with(|| a.id.cmp(&b.id)));
        notes.into_iter().map(|n| n.name).collect::<Vec<_>>()
    };
    let oldest_first: Vec<String> = visible.iter().map(|n| n.name.clone()).collect();
    let by_duration = ordered(|a, b| a.duration_seconds.total_cmp(&b.duration_seconds));
    let expected = [
        ("created_at", oldest_first.clone()),
        ("-created_at", oldest_first.iter().rev().cloned().collect()),
        ("name", ordered(|a, b| a.name.cmp(&b.name))),
        ("duration", by_duration.clone()),
        ("-duration", by_duration.iter().rev().cloned().collect()),
    ];
    for (sort, names) in expected {
        let query = ListNotesQuery {
            sort: Some(sort.parse().expect("a sort")),
            ..Default::default()
        };
        assert_eq!(all_pages(&ann, query).await, names, "sort={sort}");
    }
    let from_bob = ListNotesQuery {
        sender: Some(bob.email.clone()),
        ..Default::default()
    };
    assert_eq!(all_pages(&ann, from_bob).await, ["bob c.mp3", "bob a.ogg"]);
    execute(
        &app,
        backend,
        format!(
            "UPDATE notes SET name = 'aaa.mp3', name_folded = 'aaa.mp3' WHERE id = '{}'",
            visible[3].id
        ),
    )
    .await;
    let by_name = ListNotesQuery {
        sort: Some(hark_api::Sort::Name),
        ..Default::default()
    };
    assert_eq!(
        all_pages(&ann, by_name).await,
        ["aaa.mp3", "ann b.wav", "ann d.flac", "bob a.ogg"]
    );
    app.stop().await;
}

async fn a_channel_keeps_the_notes_delivered_in_it_sent_or_received(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut notes = Vec::new();
    for (user, file, name) in [
        (&ann, "t1_pcm16_16k.wav", "ann team.wav"),
        (&ann, "t4.flac", "ann direct.flac"),
        (&bob, "long_opus.ogg", "bob team.ogg"),
        (&bob, "t5_cbr64.mp3", "bob direct.mp3"),
        (&bob, "t4.flac", "bob other.flac"),
    ] {
        notes.push(upload_all(user, &[(file, name)]).await.remove(0));
    }
    // The inbox entries are written straight, as a delivery writes them (no channel membership
    // or recipient lookup needed).
    for (note, from, to, channel) in [
        (&notes[0], &ann, &bob, "'team'"),
        (&notes[1], &ann, &bob, "NULL"),
        (&notes[2], &bob, &ann, "'team'"),
        (&notes[3], &bob, &ann, "NULL"),
        (&notes[4], &bob, &ann, "'other'"),
    ] {
        execute(
            &app,
            backend,
            format!(
                "INSERT INTO inbox_entries (recipient_id, note_id, sender_id, channel, \
                 delivered_at) VALUES ('{}', '{}', '{}', {channel}, 0)",
                to.id, note.id, from.id
            ),
        )
        .await;
    }
    for sort in ["created_at", "-created_at", "name", "duration", "-duration"] {
        for user in [&ann, &bob] {
            let query = ListNotesQuery {
                channel: Some("team".into()),
                sort: Some(sort.parse().expect("a sort")),
                ..Default::default()
            };
            let mut names = all_pages(user, query).await;
            names.sort();
            assert_eq!(names, ["ann team.wav", "bob team.ogg"], "sort={sort}");
        }
    }
    let nowhere = ListNotesQuery {
        channel: Some("nowhere".into()),
        ..Default::default()
    };
    assert!(all_pages(&ann, nowhere).await.is_empty());
    app.stop().await;
}

/// A received note is filtered on the copies of its columns in the recipient's inbox entry:
/// every filter finds it as it finds the recipient's own notes, and a status that changes after
/// the delivery is followed.
async fn received_notes_pass_every_filter_and_follow_their_status(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut notes = upload_all(&ann, &[("t1_pcm16_16k.wav", "own brûlée.wav")]).await;
    for note in upload_all(
        &bob,
        &[
            ("t4.flac", "Crème Brûlée.flac"),
            ("t5_cbr64.mp3", "plain.mp3"),
        ],
    )
    .await
    {
        let to_ann = SendRequest {
            to: vec![ann.email.clone()],
            channel: None,
        };
        bob.client.send_note(&note.id, &to_ann).await.expect("send");
        notes.push(note);
    }
    let list = async |query: String| {
        let mut names: Vec<String> = listed(&ann, query)
            .await
            .into_iter()
            .map(|n| n.name)
            .collect();
        names.sort();
        names
    };
    let named = |pick: &dyn Fn(&hark_api::Note) -> bool| {
        let mut names: Vec<String> = notes
            .iter()
            .filter(|n| pick(n))
            .map(|n| n.name.clone())
            .collect();
        names.sort();
        names
    };
    // Bounds between the three durations, so no comparison is decided by a rounding.
    let mut durations: Vec<f64> = notes.iter().map(|n| n.duration_seconds).collect();
    durations.sort_by(f64::total_cmp);
    assert!(durations[0] < durations[1] && durations[1] < durations[2]);
    let (shorter, longer) = (
        (durations[0] + durations[1]) / 2.0,
        (durations[1] + durations[2]) / 2.0,
    );
    let bob_sent = format!("sender={}", bob.email);
    let cases: [(String, Vec<String>); 10] = [
        ("name=BRÛLÉE".into(), named(&|n| n.name.contains("rûlée"))),
        ("name=rû".into(), named(&|n| n.name.contains("rû"))),
        ("format=flac".into(), named(&|n| n.format == "flac")),
        ("format=mp3".into(), named(&|n| n.format == "mp3")),
        (bob_sent, named(&|n| n.owner_id == bob.id)),
        (
            format!("min_duration={longer}"),
            named(&|n| n.duration_seconds > longer),
        ),
        (
            format!("max_duration={shorter}"),
            named(&|n| n.duration_seconds < shorter),
        ),
        ("status=pending".into(), named(&|_| true)),
        ("status=ready".into(), Vec::new()),
        // Nothing is transcribed yet: words match no note, in either branch.
        ("q=brûlée".into(), Vec::new()),
    ];
    for (query, expected) in cases {
        let none_yet = ["status=ready", "q=brûlée"].contains(&query.as_str());
        assert!(!expected.is_empty() || none_yet, "{query}");
        assert_eq!(list(query.clone()).await, expected, "{query}");
    }
    while app.pipeline.run_once().await.expect("pass") {}
    assert_eq!(list("status=ready".into()).await, named(&|_| true));
    assert!(list("status=pending".into()).await.is_empty());
    app.stop().await;
}

backend_tests!(
    name_filters_fold_unicode_and_refuse_control_characters,
    filters_and_sorts_select_and_order_notes,
    bad_list_parameters_are_400,
    pagination_neither_skips_nor_repeats_while_notes_arrive,
    a_cursor_cannot_be_reused_with_another_sort,
    name_substrings_of_any_length_match_in_every_order_and_page,
    notes_of_the_same_microsecond_page_by_id_in_a_name_search,
    a_deleted_or_renamed_note_leaves_the_name_search,
    received_notes_merge_into_every_order_and_follow_a_rename,
    a_channel_keeps_the_notes_delivered_in_it_sent_or_received,
    received_notes_pass_every_filter_and_follow_their_status,
);
