//! Listing: filters, sorts, validation, and cursor pagination that neither skips nor repeats.

use std::collections::HashSet;

use hark_api::{ListNotesQuery, Sort};
use hark_client::UploadOptions;

use crate::helpers::{Backend, TestUser, assert_problem, sample, spawn_app};

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

fn names(list: &hark_api::NoteList) -> Vec<&str> {
    list.items.iter().map(|n| n.name.as_str()).collect()
}

async fn filters_and_sorts_select_and_order_notes(backend: Backend) {
    let app = spawn_app(backend).await;
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
    let list = |query: String| {
        let request = user.get(&format!("/api/v1/notes?{query}"));
        async move {
            let list: hark_api::NoteList = request
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("list");
            list.items
        }
    };
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
        "q=parcel",
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

backend_tests!(
    name_filters_fold_unicode_and_refuse_control_characters,
    filters_and_sorts_select_and_order_notes,
    bad_list_parameters_are_400,
    pagination_neither_skips_nor_repeats_while_notes_arrive,
    a_cursor_cannot_be_reused_with_another_sort,
);
