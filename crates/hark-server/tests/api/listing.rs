//! Listing: filters, sorts, validation, and cursor pagination that neither skips nor repeats.

use std::collections::HashSet;

use hark_api::ListNotesQuery;
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
    let client = user.client.clone();
    let list = move |q: ListNotesQuery| {
        let client = client.clone();
        async move { client.list_notes(&q).await }
    };

    assert_eq!(
        names(&list(Default::default()).await.expect("list")),
        ["alphabet.mp3", "gamma.flac", "beta.ogg", "Alpha.wav"]
    );
    assert_eq!(
        names(
            &list(ListNotesQuery {
                sort: Some("created_at".into()),
                ..Default::default()
            })
            .await
            .expect("list")
        ),
        ["Alpha.wav", "beta.ogg", "gamma.flac", "alphabet.mp3"]
    );
    assert_eq!(
        names(
            &list(ListNotesQuery {
                max_duration: Some(60.0),
                sort: Some("-duration".into()),
                ..Default::default()
            })
            .await
            .expect("list")
        )
        .len(),
        3
    );
    let long = list(ListNotesQuery {
        min_duration: Some(60.0),
        ..Default::default()
    })
    .await
    .expect("list");
    assert_eq!(names(&long), ["beta.ogg"]);
    let by_duration = list(ListNotesQuery {
        sort: Some("duration".into()),
        ..Default::default()
    })
    .await
    .expect("list");
    assert!(
        by_duration
            .items
            .windows(2)
            .all(|w| w[0].duration_seconds <= w[1].duration_seconds)
    );
    assert_eq!(
        names(
            &list(ListNotesQuery {
                name: Some("ALPHA".into()),
                sort: Some("name".into()),
                ..Default::default()
            })
            .await
            .expect("list")
        ),
        ["Alpha.wav", "alphabet.mp3"]
    );
    assert_eq!(
        names(
            &list(ListNotesQuery {
                name: Some("%".into()),
                ..Default::default()
            })
            .await
            .expect("list")
        )
        .len(),
        0,
        "LIKE wildcards are literal"
    );
    assert_eq!(
        names(
            &list(ListNotesQuery {
                format: Some("flac".into()),
                ..Default::default()
            })
            .await
            .expect("list")
        ),
        ["gamma.flac"]
    );
    assert_eq!(
        list(ListNotesQuery {
            status: Some("pending".into()),
            ..Default::default()
        })
        .await
        .expect("list")
        .items
        .len(),
        4
    );
    assert_eq!(
        list(ListNotesQuery {
            status: Some("ready".into()),
            ..Default::default()
        })
        .await
        .expect("list")
        .items
        .len(),
        0
    );
    assert_eq!(
        list(ListNotesQuery {
            sender: Some(user.email.clone()),
            ..Default::default()
        })
        .await
        .expect("list")
        .items
        .len(),
        4
    );
    assert_eq!(
        list(ListNotesQuery {
            sender: Some("nobody@example.com".into()),
            ..Default::default()
        })
        .await
        .expect("list")
        .items
        .len(),
        0
    );
    let all = list(Default::default()).await.expect("list");
    let middle = &all.items[1].created_at;
    let after = list(ListNotesQuery {
        created_after: Some(middle.clone()),
        ..Default::default()
    })
    .await
    .expect("list");
    assert_eq!(names(&after), ["alphabet.mp3"]);
    let before = list(ListNotesQuery {
        created_before: Some("2000-01-01T00:00:00Z".into()),
        ..Default::default()
    })
    .await
    .expect("list");
    assert!(before.items.is_empty());
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
    for sort in ["-created_at", "created_at", "name", "-duration"] {
        let mut seen = Vec::new();
        let mut query = ListNotesQuery {
            limit: Some(5),
            sort: Some(sort.into()),
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
