//! `hark notifier` end to end, as real processes on PostgreSQL and RabbitMQ: `hark serve`
//! publishes every event to the broker and leaves webhooks and push messages to two `hark
//! notifier` processes on machines of their own (empty data directories, the server's VAPID
//! key copied into their configuration), which split the events between them and deliver each
//! to the webhook, and to the browser, exactly once.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::Database;
use hark_api::NoteStatus;
use hark_client::{Client, UploadOptions};
use hark_testkit::push::Browser;
use sqlx::Connection;

const HARK: &str = env!("CARGO_BIN_EXE_hark");
const RABBITMQ: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const UPLOADS: usize = 8;
/// How long the test waits for what must happen before calling it a hang. Only a guard
/// against a test that never ends: nothing here asserts on speed.
const PATIENCE: Duration = Duration::from_secs(120);

/// A `hark` process, killed if the test ends without stopping it.
struct Running(Child);

impl Running {
    /// Asks the process to stop (SIGTERM) and waits for it; whether it exited cleanly.
    fn terminate(&mut self) -> bool {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(signalled.success());
        self.0.wait().expect("reap").success()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A notifier and what it logged, one JSON object a line.
struct Notifier {
    process: Running,
    logs: Arc<Mutex<Vec<serde_json::Value>>>,
    reader: std::thread::JoinHandle<()>,
    /// Its own data directory: nothing of the server's is in it.
    _data_dir: tempfile::TempDir,
}

impl Notifier {
    /// The ids of the events it made the deliveries and messages of, once its logs are
    /// complete.
    fn handled(self) -> HashSet<String> {
        drop(self.process);
        self.reader.join().expect("log reader");
        let logs = self.logs.lock().expect("logs");
        logs.iter()
            .filter(|line| {
                line["fields"]["message"]
                    == "made the webhook deliveries and push messages of an event"
            })
            .filter_map(|line| line["fields"]["event_id"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The processes of one deployment: a data directory, a database and a broker namespace.
struct Deployment {
    data_dir: std::path::PathBuf,
    database_url: String,
    namespace: String,
}

impl Deployment {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(HARK);
        command
            .args(args)
            .env("HARK_DATA_DIR", &self.data_dir)
            .env("HARK_DATABASE_URL", &self.database_url)
            .env("HARK_BROKER__URL", RABBITMQ)
            .env("HARK_BROKER__NAMESPACE", &self.namespace)
            .env("HARK_WEBHOOKS__IN_PROCESS", "false")
            .env("HARK_PUSH__IN_PROCESS", "false")
            // The receivers listen on 127.0.0.1.
            .env("HARK_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
            .env("RUST_LOG", "warn")
            .env_remove("HARK_TOKEN")
            .stdin(Stdio::null());
        command
    }

    /// `hark serve` on a free port; returns it with its base URL.
    fn serve(&self) -> (Running, String) {
        let mut child = self
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hark serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let server = Running(child);
        let base = loop {
            let line = lines
                .next()
                .expect("hark serve exited early")
                .expect("read stderr");
            if let Some(url) = line.split("listening on ").nth(1) {
                break url.trim().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (server, base)
    }

    /// `hark notifier` on a machine of its own, signing push messages with `vapid_key`, logging
    /// as JSON; returns once it consumes events.
    fn notifier(&self, vapid_key: &str) -> Notifier {
        let data_dir = tempfile::tempdir().expect("the notifier's data dir");
        let mut child = self
            .command(&["notifier"])
            .env("HARK_DATA_DIR", data_dir.path())
            .env("HARK_PUSH__VAPID_PRIVATE_KEY", vapid_key)
            .env("HARK_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,hark_server::broker=debug")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hark notifier");
        let stderr = child.stderr.take().expect("stderr");
        let process = Running(child);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (consuming, started) = mpsc::channel();
        let reader = std::thread::spawn({
            let logs = logs.clone();
            move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                        continue;
                    };
                    if entry["fields"]["message"] == "consuming events" {
                        let _ = consuming.send(());
                    }
                    logs.lock().expect("logs").push(entry);
                }
            }
        });
        started
            .recv_timeout(PATIENCE)
            .expect("the notifier joined the consumer group");
        Notifier {
            process,
            logs,
            reader,
            _data_dir: data_dir,
        }
    }
}

/// What a receiver got: each request's headers and body.
type Requests = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook endpoint or push service on 127.0.0.1 that answers 201 and records every request.
async fn receiver() -> (String, Requests) {
    async fn record(
        State(received): State<Requests>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        received.lock().expect("lock").push((headers, body));
        StatusCode::CREATED
    }
    let received = Requests::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let router = axum::Router::new()
        .fallback(record)
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

/// Polls `check` every 100 ms until it gives a value.
async fn wait_for<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Removes the queue and exchange the namespace declared on RabbitMQ.
async fn remove_namespace(namespace: &str) {
    let connection = lapin::Connection::connect(RABBITMQ, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .queue_delete(format!("{namespace}.notifier").into(), Default::default())
        .await
        .expect("delete the group's queue");
    channel
        .exchange_delete(namespace.into(), Default::default())
        .await
        .expect("delete the exchange");
    let _ = connection.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notifiers_split_the_events_and_deliver_each_webhook_and_push_message_once() {
    let database = Database::create("notifier").await;
    let data = tempfile::tempdir().expect("data dir");
    let deployment = Deployment {
        data_dir: data.path().to_owned(),
        database_url: database.url(),
        namespace: format!(
            "hark-test-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default()
        ),
    };
    let namespace = deployment.namespace.clone();
    let scenario = tokio::spawn(async move {
        deliver_through_two_notifiers(&deployment, &database).await;
        database
    });
    let outcome = scenario.await;
    remove_namespace(&namespace).await;
    match outcome {
        Ok(database) => database.drop().await,
        Err(failure) => std::panic::resume_unwind(failure.into_panic()),
    }
}

/// How many times each key came, of those `key` finds in the requests.
fn counts(
    requests: &Requests,
    key: impl Fn(&HeaderMap, &Bytes) -> String,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (headers, body) in requests.lock().expect("lock").iter() {
        *counts.entry(key(headers, body)).or_default() += 1;
    }
    counts
}

/// Polls the count `sql` answers until it is `wanted`.
async fn wait_for_count(db: &mut sqlx::PgConnection, what: &str, sql: &str, wanted: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *db)
            .await
            .expect("count");
        if count == wanted as i64 {
            return;
        }
        assert!(Instant::now() < deadline, "{count} of {wanted} {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A user of the deployment: a client signed in as them, their token and id.
struct User {
    client: Client,
    token: String,
    id: String,
}

/// Adds a user with `hark user add` and signs them in.
async fn add_user(deployment: &Deployment, base: &str, email: &str) -> User {
    let added = deployment
        .command(&["user", "add", email, "--password", "correct horse battery"])
        .output()
        .expect("hark user add");
    assert!(added.status.success(), "{added:?}");
    let token = Client::new(base)
        .sign_in(email, "correct horse battery")
        .await
        .expect("sign in")
        .access_token;
    let client = Client::new(base).with_token(&token);
    let id = client.me().await.expect("me").id;
    User { client, token, id }
}

async fn deliver_through_two_notifiers(deployment: &Deployment, database: &Database) {
    let (mut server, base) = deployment.serve();
    // Copied from the server's data directory into the notifiers' configuration.
    let vapid_key = std::fs::read_to_string(deployment.data_dir.join("vapid.key"))
        .expect("the server made its VAPID key");
    // A new consumer group gets the events published after it joined.
    let notifiers = [
        deployment.notifier(&vapid_key),
        deployment.notifier(&vapid_key),
    ];
    let ann = add_user(deployment, &base, "ann@example.com").await;
    let bob = add_user(deployment, &base, "bob@example.com").await;
    let (hook, hooked) = receiver().await;
    let created = reqwest::Client::new()
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&ann.token)
        .json(&serde_json::json!({"url": hook, "events": ["note.created", "note.ready"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(created.status(), 201);
    // Bob's browser subscribes, through a push service, with the key the server publishes.
    let published: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/push/key"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("the key");
    let public_key = published["public_key"].as_str().expect("a public key");
    let (push_service, pushed) = receiver().await;
    let browser = Browser::new();
    let subscribed = reqwest::Client::new()
        .post(format!("{base}/api/v1/push/subscriptions"))
        .bearer_auth(&bob.token)
        .header("content-type", "application/json")
        .body(browser.subscription_json(&push_service))
        .send()
        .await
        .expect("send");
    assert_eq!(subscribed.status(), 201);

    let wav = std::fs::read(hark_testkit::corpus_file("t1_pcm16_16k.wav")).expect("corpus");
    let mut notes = Vec::new();
    for n in 0..UPLOADS {
        let options = UploadOptions {
            name: Some(format!("memo-{n}.wav")),
            to: vec!["bob@example.com".into()],
            ..UploadOptions::default()
        };
        notes.push(
            ann.client
                .upload_bytes(wav.clone(), &options)
                .await
                .expect("upload")
                .id,
        );
    }
    for note in &notes {
        wait_for("the note processed", || async {
            let status = ann.client.note(note).await.expect("note").status;
            assert_ne!(status, NoteStatus::Failed);
            (status == NoteStatus::Ready).then_some(())
        })
        .await;
    }

    let mut db = sqlx::PgConnection::connect(&database.url())
        .await
        .expect("the test database");
    let hook_events: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM events WHERE type IN ('note.created', 'note.ready') ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .expect("events");
    assert_eq!(hook_events.len(), 2 * UPLOADS);
    let push_events: Vec<String> = sqlx::query_scalar(
        "SELECT e.id FROM events e JOIN event_audience a ON a.seq = e.seq \
         WHERE a.user_id = $1 AND e.type IN ('note.received', 'note.ready', 'note.listened') \
         ORDER BY e.seq",
    )
    .bind(&bob.id)
    .fetch_all(&mut db)
    .await
    .expect("events");
    assert!(push_events.len() >= UPLOADS, "a note.received each");
    // Once every delivery and message is recorded as delivered, no attempt is left to come.
    let delivered = "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'";
    wait_for_count(
        &mut db,
        "deliveries delivered",
        delivered,
        hook_events.len(),
    )
    .await;
    let delivered = "SELECT COUNT(*) FROM push_messages WHERE status = 'delivered'";
    wait_for_count(
        &mut db,
        "push messages delivered",
        delivered,
        push_events.len(),
    )
    .await;

    let hooked = counts(&hooked, |headers, _| {
        let id = headers.get("webhook-id").and_then(|id| id.to_str().ok());
        id.unwrap_or_default().to_owned()
    });
    let pushed = counts(&pushed, |headers, body| {
        let authorization = headers.get("authorization").and_then(|a| a.to_str().ok());
        let k = authorization.and_then(|a| a.split(", k=").nth(1));
        assert_eq!(
            k,
            Some(public_key),
            "signed with the key bob subscribed with"
        );
        let event: serde_json::Value =
            serde_json::from_slice(&browser.read(body)).expect("the event's JSON");
        event["id"].as_str().expect("an event id").to_owned()
    });
    for (what, received, wanted) in [
        ("webhook", &hooked, &hook_events),
        ("browser", &pushed, &push_events),
    ] {
        let wanted: HashSet<&String> = wanted.iter().collect();
        assert_eq!(
            received.keys().collect::<HashSet<_>>(),
            wanted,
            "every event reached the {what}"
        );
        let twice: Vec<_> = received.iter().filter(|(_, count)| **count > 1).collect();
        assert!(twice.is_empty(), "{what}: more than once: {twice:?}");
    }

    // `hark serve` left webhooks and push alone: its dispatchers never moved.
    for dispatcher in ["webhooks", "push"] {
        let dispatched: i64 =
            sqlx::query_scalar("SELECT seq FROM consumer_positions WHERE name = $1")
                .bind(dispatcher)
                .fetch_one(&mut db)
                .await
                .expect("the dispatcher's position");
        assert_eq!(dispatched, 0, "{dispatcher}");
    }

    // Both notifiers stop cleanly when asked, and each handled some of the events.
    let mut handled = Vec::new();
    for mut notifier in notifiers {
        assert!(notifier.process.terminate(), "the notifier exits cleanly");
        handled.push(notifier.handled());
    }
    for (n, events) in handled.iter().enumerate() {
        assert!(!events.is_empty(), "notifier {n} handled no event");
    }
    let all: HashSet<String> = handled.into_iter().flatten().collect();
    let wanted: HashSet<String> = hook_events.into_iter().chain(push_events).collect();
    assert!(wanted.is_subset(&all), "an event no notifier handled");
    assert!(server.terminate(), "the server exits cleanly");
}

#[test]
fn a_notifier_without_a_broker_is_refused_with_what_to_set() {
    let data = tempfile::tempdir().expect("data dir");
    let refused = Command::new(HARK)
        .arg("notifier")
        .env("HARK_DATA_DIR", data.path())
        .env(
            "HARK_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/none",
        )
        .env_remove("HARK_BROKER__URL")
        .stdin(Stdio::null())
        .output()
        .expect("run hark notifier");
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("no broker is configured") && message.contains("HARK_BROKER__URL"),
        "{message}"
    );

    let unknown = Command::new(HARK)
        .arg("notifier")
        .env("HARK_DATA_DIR", data.path())
        .env("HARK_BROKER__URL", "redis://127.0.0.1:6379")
        .stdin(Stdio::null())
        .output()
        .expect("run hark notifier");
    assert!(!unknown.status.success());
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        message.contains("broker.url")
            && message.contains("amqp://")
            && message.contains("nats://"),
        "{message}"
    );
}

#[test]
fn a_notifier_left_push_without_the_servers_key_is_refused_with_what_to_set() {
    let data = tempfile::tempdir().expect("data dir");
    let shared = tempfile::tempdir().expect("a database elsewhere");
    let refused = Command::new(HARK)
        .arg("notifier")
        .env("HARK_DATA_DIR", data.path())
        .env(
            "HARK_DATABASE_URL",
            format!("sqlite://{}/hark.db", shared.path().display()),
        )
        .env("HARK_BROKER__URL", RABBITMQ)
        .env("HARK_PUSH__IN_PROCESS", "false")
        .env_remove("HARK_PUSH__VAPID_PRIVATE_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run hark notifier");
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("no VAPID key")
            && message.contains("HARK_PUSH__VAPID_PRIVATE_KEY")
            && message.contains("vapid.key"),
        "{message}"
    );
    assert!(
        !data.path().join("vapid.key").exists(),
        "a notifier makes no key of its own"
    );
}
