//! Spawning the real server for a test, with its own data directory and database.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hark_client::Client;
use hark_server::maintenance::Maintenance;
use hark_server::pipeline::Pipeline;
use hark_server::{App, Config, Overrides};
use sqlx::Connection;

/// The signing secret test servers use, so tests can forge expired and tampered tokens.
pub const JWT_SECRET: &str = "test-secret-for-the-integration-suite";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn(Backend)` as one test per backend.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::helpers::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::helpers::Backend::Postgres).await })*
        }
    };
}

pub struct TestApp {
    pub base: String,
    /// A client with no credentials.
    pub anonymous: Client,
    pub http: reqwest::Client,
    /// Kept so the directory lives as long as the app.
    pub _data_dir: tempfile::TempDir,
    pub maintenance: Maintenance,
    /// Runs passes on demand (with `jobs.in_process = false`, nothing else does).
    pub pipeline: Pipeline,
    pub config: Config,
    pg_database: Option<String>,
    server: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
}

/// A signed-in user of a test app.
pub struct TestUser {
    base: String,
    http: reqwest::Client,
    pub id: String,
    pub email: String,
    pub token: String,
    pub client: Client,
}

/// A fresh, empty database of `backend`: its URL, the PostgreSQL database to drop afterwards,
/// and the directory a SQLite file lives in.
pub async fn test_database(backend: Backend) -> (String, Option<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}/hark.db", dir.path().display());
            (url, None, dir)
        }
        Backend::Postgres => {
            let name = create_pg_database().await;
            (format!("{}/{name}", pg_server_url()), Some(name), dir)
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (database_url, pg_database) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}/hark.db", data_dir.path().display()),
            None,
        ),
        Backend::Postgres => {
            let name = create_pg_database().await;
            (format!("{}/{name}", pg_server_url()), Some(name))
        }
    };
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.path().to_owned()),
        database_url: Some(database_url),
    };
    let mut config = Config::load(None, overrides).expect("config");
    config.auth.jwt_secret = JWT_SECRET.to_owned().into();
    config.shutdown_grace_seconds = 1;
    configure(&mut config);
    let app = App::build(config.clone()).await.expect("app builds");
    let base = format!("http://{}", app.addr());
    let maintenance = app.maintenance().clone();
    let pipeline = app.pipeline().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        anonymous: Client::new(&base),
        base,
        http: reqwest::Client::new(),
        _data_dir: data_dir,
        maintenance,
        pipeline,
        config,
        pg_database,
        server: Some((stop, server)),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers a user and signs them in.
    pub async fn user(&self, email: &str) -> TestUser {
        let password = "correct horse battery";
        let user = self
            .anonymous
            .register(email, password)
            .await
            .expect("register");
        let token = self
            .anonymous
            .sign_in(email, password)
            .await
            .expect("sign in")
            .access_token;
        TestUser {
            base: self.base.clone(),
            http: self.http.clone(),
            id: user.id,
            email: user.email,
            client: Client::new(&self.base).with_token(&token),
            token,
        }
    }

    /// Every file in the blob store.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        files_under(&self.config.storage.blob_dir)
    }

    /// Every file in the upload spool.
    pub fn tmp_files(&self) -> Vec<PathBuf> {
        files_under(&self.config.tmp_dir())
    }

    /// Stops the server gracefully (the data directory and database stay).
    pub async fn shut_down(&mut self) {
        if let Some((stop, server)) = self.server.take() {
            let _ = stop.send(());
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    /// Stops the server and starts another on the same data directory and database, on a
    /// new port (`base` follows it; clients made before point at the old one).
    pub async fn restart(&mut self) {
        self.shut_down().await;
        let app = App::build(self.config.clone()).await.expect("app restarts");
        self.base = format!("http://{}", app.addr());
        self.anonymous = Client::new(&self.base);
        self.maintenance = app.maintenance().clone();
        self.pipeline = app.pipeline().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        self.server = Some((stop, server));
    }

    /// Drops the PostgreSQL database (the temp dir goes with `self`).
    pub async fn stop(self) {
        if let Some(name) = &self.pg_database {
            drop_pg_database(name).await;
        }
    }
}

impl TestUser {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// A raw request with this user's bearer token, for what the typed client cannot send.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, path)
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path))
        } else {
            found.push(path)
        }
    }
    found
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            hark_server::app::init_tracing("text");
        }
    });
}

fn pg_server_url() -> String {
    std::env::var("HARK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn pg_admin() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&format!("{}/postgres", pg_server_url()))
        .await
        .expect("PostgreSQL is reachable")
}

/// Creates `hark_test_<unix seconds>_<random>`, first dropping databases that crashed runs
/// left behind more than an hour ago.
async fn create_pg_database() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut admin = pg_admin().await;
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'hark\\_test\\_%'",
            )
            .fetch_all(&mut pg_admin().await)
            .await
            .unwrap_or_default();
            for name in stale {
                let created: u64 = name
                    .split('_')
                    .nth(2)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if created + 3600 < now {
                    drop_pg_database(&name).await;
                }
            }
        })
        .await;
    let name = format!("hark_test_{now}_{}", uuid::Uuid::new_v4().simple());
    // The name is made here of digits and hex: nothing from outside reaches the statement.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    name
}

pub async fn drop_pg_database(name: &str) {
    let mut admin = pg_admin().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}

/// The corpus of real audio files (hark-testkit makes it when missing).
pub fn corpus() -> PathBuf {
    hark_testkit::corpus_dir().to_path_buf()
}

pub use hark_testkit::manifest;

/// A small good file for tests that only need some audio.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join(name)).expect("corpus file")
}

pub fn sample_wav() -> Vec<u8> {
    sample("t1_pcm16_16k.wav")
}

/// Asserts that a response is a problem with this status and code; returns its detail.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: hark_api::Problem = response.json().await.expect("problem body");
    assert_eq!(problem.status, status);
    assert_eq!(
        serde_json::to_value(problem.code).expect("code"),
        serde_json::json!(code),
        "{}",
        problem.detail
    );
    problem.detail
}

/// A claim's results with every step it holds done and nothing made.
pub fn every_step_done(claim: &hark_server::domain::Claim) -> hark_server::domain::Finish {
    use hark_server::domain::{Finish, StepOutcome};
    Finish {
        outcomes: claim
            .steps
            .iter()
            .map(|(step, _)| (*step, StepOutcome::Done))
            .collect(),
        ..Finish::default()
    }
}
