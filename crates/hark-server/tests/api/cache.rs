//! The shared cache (Redis, the one running on this machine, reached through a proxy a test can
//! cut or stall): inbox and name lookups served from it and kept current by every change,
//! answers from the database while Redis is down or hangs, nothing stale once it is back, and
//! two servers on one database sharing it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hark_api::{InboxPage, InboxQuery, Note, SendRequest};
use hark_client::UploadOptions;
use hark_testkit::proxy::Proxy;
use secrecy::ExposeSecret;

use crate::helpers::{Backend, TestApp, TestUser, sample_wav, spawn_app_with};

fn redis_url() -> String {
    std::env::var("HARK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Keys of this test alone, however many run against the same Redis.
fn key_prefix() -> String {
    format!("hark-test-{}", uuid::Uuid::now_v7().simple())
}

async fn spawn_cached(backend: Backend, redis: &str, prefix: &str) -> TestApp {
    spawn_app_with(backend, |c| {
        c.cache.redis_url = redis.to_owned().into();
        c.cache.key_prefix = prefix.to_owned();
    })
    .await
}

async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("redis url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers")
}

async fn cached_entries(prefix: &str) -> Vec<String> {
    let mut redis = redis(&redis_url()).await;
    redis::cmd("KEYS")
        .arg(format!("{prefix}:entry:*"))
        .query_async(&mut redis)
        .await
        .expect("keys")
}

async fn epoch(prefix: &str) -> Option<String> {
    let mut redis = redis(&redis_url()).await;
    redis::cmd("GET")
        .arg(format!("{prefix}:epoch"))
        .query_async(&mut redis)
        .await
        .expect("get")
}

/// Entries stored in the current epoch.
async fn current_entries(prefix: &str) -> usize {
    let Some(epoch) = epoch(prefix).await else {
        return 0;
    };
    let entries = cached_entries(prefix).await;
    entries
        .iter()
        .filter(|key| key.contains(&format!(":{epoch}:")))
        .count()
}

async fn inbox(user: &TestUser) -> Vec<String> {
    let page: InboxPage = user
        .client
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox");
    page.items.into_iter().map(|item| item.note.id).collect()
}

async fn inbox_page(user: &TestUser) -> InboxPage {
    user.client
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox")
}

/// `/info?name=`: the newest note of that name the user may see, or `None` on a 404.
async fn newest(user: &TestUser, name: &str) -> Option<String> {
    let response = user
        .get(&format!("/info?name={name}"))
        .send()
        .await
        .expect("send");
    match response.status().as_u16() {
        200 => Some(response.json::<Note>().await.expect("note").id),
        404 => None,
        other => panic!("/info answered {other}"),
    }
}

async fn send(from: &TestUser, to: &TestUser, name: &str) -> Note {
    let options = UploadOptions {
        name: Some(name.to_owned()),
        to: vec![to.email.clone()],
        ..UploadOptions::default()
    };
    from.client
        .upload_bytes(sample_wav(), &options)
        .await
        .expect("upload")
}

/// Changes the title behind the server's back: a read that still shows the old title was
/// served from the cache.
async fn retitle_in_database(app: &TestApp, note: &str, title: &str) {
    let repos_url = app.config.database_url.expose_secret().to_owned();
    let sql = "UPDATE notes SET title = $1 WHERE id = $2";
    if repos_url.starts_with("sqlite:") {
        let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&repos_url)
            .await
            .expect("sqlite");
        sqlx::query(sql)
            .bind(title)
            .bind(note)
            .execute(&mut db)
            .await
            .expect("update");
    } else {
        let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&repos_url)
            .await
            .expect("postgres");
        sqlx::query(sql)
            .bind(title)
            .bind(note)
            .execute(&mut db)
            .await
            .expect("update");
    }
}

async fn inbox_and_names_are_served_from_redis_and_kept_current(backend: Backend) {
    let prefix = key_prefix();
    let app = spawn_app_with(backend, |c| {
        c.cache.redis_url = redis_url().into();
        c.cache.key_prefix = prefix.clone();
        c.jobs.in_process = false;
    })
    .await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let first = send(&ann, &bob, "memo.wav").await;
    assert_eq!(inbox(&bob).await, [first.id.as_str()]);
    assert_eq!(newest(&bob, "memo.wav").await, Some(first.id.clone()));
    read_until_cached(&prefix, 2, || async {
        inbox(&bob).await;
        newest(&bob, "memo.wav").await;
    })
    .await;
    // What the cache answers is what the database answered.
    let (stored, hit) = (inbox_page(&bob).await, inbox_page(&bob).await);
    assert_eq!(stored, hit);

    // Served from Redis: a change the server was not told of does not show...
    // (A read that found Redis slow on a busy machine asks the database: one of a few reads
    // suffices.)
    retitle_in_database(&app, &first.id, "changed behind its back").await;
    let mut served_from_redis = false;
    for _ in 0..20 {
        if inbox_page(&bob).await.items[0].note.title == first.title {
            served_from_redis = true;
            break;
        }
    }
    assert!(served_from_redis, "every read went to the database");

    // ...while every change made through it shows at once: a new note,
    let second = send(&ann, &bob, "memo.wav").await;
    assert_eq!(inbox(&bob).await, [second.id.clone(), first.id.clone()]);
    assert_eq!(newest(&bob, "memo.wav").await, Some(second.id.clone()));
    assert_eq!(newest(&ann, "memo.wav").await, Some(second.id.clone()));
    // a listen,
    bob.client.mark_listened(&first.id).await.expect("listened");
    let page = inbox_page(&bob).await;
    assert!(page.items[1].listened_at.is_some());
    assert!(page.items[0].listened_at.is_none());
    // processing (the note's status in every reader's view),
    while app.pipeline.run_once().await.expect("pass") {}
    let page = inbox_page(&bob).await;
    assert!(
        page.items
            .iter()
            .all(|item| item.note.status == hark_api::NoteStatus::Ready),
        "{page:?}"
    );
    // a note sent later,
    let own = ann
        .client
        .upload_bytes(sample_wav(), &UploadOptions::default())
        .await
        .expect("upload");
    ann.client
        .send_note(
            &own.id,
            &SendRequest {
                to: vec![bob.email.clone()],
                channel: None,
            },
        )
        .await
        .expect("send");
    assert_eq!(inbox(&bob).await[0], own.id);
    // and deletions: a deleted note never comes back from the cache.
    ann.client.delete_note(&second.id).await.expect("delete");
    assert_eq!(inbox(&bob).await, [own.id.clone(), first.id.clone()]);
    assert_eq!(newest(&bob, "memo.wav").await, Some(first.id.clone()));
    ann.client.delete_note(&first.id).await.expect("delete");
    assert_eq!(inbox(&bob).await, [own.id.as_str()]);
    assert_eq!(newest(&bob, "memo.wav").await, None);
    assert_eq!(newest(&ann, "memo.wav").await, None);

    assert_eq!(readiness(&app).await["cache"], "ok");
    app.stop().await;
}

async fn reads_fall_back_while_redis_is_away_and_nothing_stale_follows(backend: Backend) {
    let proxy = Proxy::start(&redis_url()).await;
    let prefix = key_prefix();
    let app = spawn_cached(backend, &proxy.url(&redis_url()), &prefix).await;
    let (ann, bob) = (
        app.user("ann@example.com").await,
        app.user("bob@example.com").await,
    );
    let kept = send(&ann, &bob, "kept.wav").await;
    for outage in [Outage::Down, Outage::Hanging] {
        let doomed = send(&ann, &bob, "doomed.wav").await;
        // Cached with the doomed note in it, in both lookups.
        let before = cached_entries(&prefix).await.len();
        assert_eq!(inbox(&bob).await, [doomed.id.clone(), kept.id.clone()]);
        assert_eq!(newest(&bob, "doomed.wav").await, Some(doomed.id.clone()));
        read_until_cached(&prefix, before + 2, || async {
            inbox(&bob).await;
            newest(&bob, "doomed.wav").await;
        })
        .await;

        // Readers keep reading throughout; none may fail, and once the deletion has answered
        // none may see the doomed note again.
        let deleted = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(read_continuously(
                    app.url("/api/v1/inbox"),
                    bob.token.clone(),
                    kept.id.clone(),
                    doomed.id.clone(),
                    deleted.clone(),
                    stop.clone(),
                ))
            })
            .collect();

        let epoch_before = epoch(&prefix).await;
        match outage {
            Outage::Down => proxy.cut(),
            Outage::Hanging => proxy.stall(),
        }
        // The deletion cannot reach Redis; reads still answer, from the database.
        ann.client.delete_note(&doomed.id).await.expect("delete");
        deleted.store(true, Ordering::SeqCst);
        assert_eq!(inbox(&bob).await, [kept.id.as_str()], "{outage:?}");
        assert_eq!(newest(&bob, "doomed.wav").await, None, "{outage:?}");
        assert_eq!(readiness(&app).await["cache"], "unavailable", "{outage:?}");

        // Back: what Redis still holds from before the deletion is never served.
        proxy.restore();
        for _ in 0..40 {
            assert_eq!(inbox(&bob).await, [kept.id.as_str()], "{outage:?}");
            assert_eq!(newest(&bob, "doomed.wav").await, None, "{outage:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let mut reads = 0;
        for reader in readers {
            reads += reader.await.expect("reader");
        }
        assert!(reads > 10, "the readers barely read: {reads}");
        // And the cache is in use again, once a new epoch has begun.
        let mut reads = 0;
        while current_entries(&prefix).await == 0 {
            assert_eq!(inbox(&bob).await, [kept.id.as_str()]);
            reads += 1;
            assert!(reads < 200, "the cache was not used again");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(readiness(&app).await["cache"], "ok");
        assert_ne!(epoch(&prefix).await, epoch_before, "a new epoch");
    }
    app.stop().await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outage {
    Down,
    Hanging,
}

/// Reads the inbox until `stop`, checking every answer; returns how many it read.
async fn read_continuously(
    url: String,
    token: String,
    kept: String,
    doomed: String,
    deleted: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> u32 {
    let http = reqwest::Client::new();
    let mut reads = 0;
    while !stop.load(Ordering::SeqCst) {
        let deleted_before = deleted.load(Ordering::SeqCst);
        let response = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let page: InboxPage = response.json().await.expect("page");
        let ids: Vec<&str> = page
            .items
            .iter()
            .map(|item| item.note.id.as_str())
            .collect();
        assert!(ids.contains(&kept.as_str()), "{ids:?}");
        if deleted_before {
            assert!(
                !ids.contains(&doomed.as_str()),
                "a deleted note came back: {ids:?}"
            );
        }
        reads += 1;
    }
    reads
}

async fn readiness(app: &TestApp) -> serde_json::Value {
    app.http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json")
}

/// Repeats `read` until this test's prefix holds at least `count` entries: stores do not hold
/// up the reads that make them, and a read that found Redis slow on a busy machine stores
/// nothing.
async fn read_until_cached<F: Future<Output = ()>>(
    prefix: &str,
    count: usize,
    read: impl Fn() -> F,
) {
    for _ in 0..200 {
        read().await;
        if cached_entries(prefix).await.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the cache was not used: fewer than {count} entries");
}

backend_tests!(
    inbox_and_names_are_served_from_redis_and_kept_current,
    reads_fall_back_while_redis_is_away_and_nothing_stale_follows,
);

/// Two servers on one PostgreSQL and one Redis: what one changes, the other never serves stale,
/// and a long-poll on one wakes for a note the other accepted (its read of the inbox, cached
/// empty before, is not trusted over the event that woke it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_cache() {
    let prefix = key_prefix();
    let first = spawn_cached(Backend::Postgres, &redis_url(), &prefix).await;
    let shared = first.config.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, |c| {
        c.database_url = shared;
        c.cache.redis_url = redis_url().into();
        c.cache.key_prefix = prefix.clone();
    })
    .await;
    let ann = first.user("ann@example.com").await;
    let bob = first.user("bob@example.com").await;
    let bob_on_second = hark_client::Client::new(&second.base).with_token(&bob.token);
    let read_on_second = || async {
        let page = bob_on_second
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox");
        page.items
            .into_iter()
            .map(|item| item.note.id)
            .collect::<Vec<_>>()
    };
    let before = cached_entries(&prefix).await.len();
    let cursor = bob_on_second
        .inbox(&InboxQuery::default())
        .await
        .expect("inbox")
        .cursor;
    read_until_cached(&prefix, before + 1, || async {
        bob_on_second
            .inbox(&InboxQuery::default())
            .await
            .expect("inbox");
    })
    .await;

    let query = InboxQuery {
        since: Some(cursor),
        wait: Some(30),
        ..Default::default()
    };
    let waiter = hark_client::Client::new(&second.base).with_token(&bob.token);
    let waiting = tokio::spawn(async move { waiter.inbox(&query).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let note = send(&ann, &bob, "memo.wav").await;
    let woken = tokio::time::timeout(Duration::from_secs(4), waiting)
        .await
        .expect("woken")
        .expect("task")
        .expect("inbox");
    assert_eq!(woken.items.len(), 1);
    assert_eq!(read_on_second().await, [note.id.as_str()]);

    ann.client.delete_note(&note.id).await.expect("delete");
    assert_eq!(read_on_second().await, Vec::<String>::new());
    second.stop().await;
    first.stop().await;
}
