//! Latency of `GET /api/v1/notes` over HTTP, per filter and sort, with many notes: the real
//! server on SQLite and on PostgreSQL (a throwaway database), the notes written straight into
//! the database that the server's own migrations made.
//!
//! `cargo bench -p hark-server --bench lists`
//! `HARK_BENCH_NOTES` sets how many notes (default 1,000,000); `HARK_BENCH_BACKENDS` which
//! backends (default `sqlite,postgres`); `HARK_BENCH_POSTGRES_URL` the PostgreSQL server
//! (default `postgres://postgres@127.0.0.1:5432`, trust auth).
//!
//! `HARK_BENCH_KEEP=<dir>` keeps the seeded data for the next run, which then only times: the
//! SQLite database and blobs under `<dir>`, the PostgreSQL database as `hark_bench_lists_kept`.
//! A kept data set of another size is made anew. The server's migrations still run on it, so
//! a new migration is measured without seeding again.

#[path = "lists/seed.rs"]
mod seed;

use std::str::FromStr;
use std::time::{Duration, Instant};

use hark_server::{App, Config, Overrides};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqliteSynchronous};

/// Each query is timed over this many sequential requests, or for this long at most.
const REQUESTS: usize = 200;
const MAX_TIME_PER_QUERY: Duration = Duration::from_secs(5);
/// Items a cursor skips before the timed deep-page requests (fewer with few notes).
const DEEP_PAGE_OFFSET: usize = 5_000;
const PAGE: usize = 500;

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// One listing to time: a label and the query string, or a query whose cursor comes from
/// walking `DEEP_PAGE_OFFSET` items first.
struct Case {
    label: String,
    query: String,
    deep: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = env_or("HARK_BENCH_NOTES", "1000000")
        .replace('_', "")
        .parse()?;
    let backends: Vec<Backend> = env_or("HARK_BENCH_BACKENDS", "sqlite,postgres")
        .split(',')
        .filter_map(|b| match b.trim() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" => Some(Backend::Postgres),
            _ => None,
        })
        .collect();
    let started = Instant::now();
    let notes = seed::notes(total);
    let own = notes.iter().filter(|n| n.owner == 0).count();
    let received = seed::received(total);
    println!(
        "{total} notes over {} users, made in {:.1} s; listing as the first user ({own} own, \
         {received} received), default limit 50; p50 / p99 of up to {REQUESTS} sequential \
         requests; client and server share this machine",
        seed::SHARES.len(),
        started.elapsed().as_secs_f64()
    );
    let cases = cases();
    let mut columns = Vec::new();
    for backend in backends {
        columns.push((backend, run(backend, &notes, &cases).await?));
    }
    println!();
    print!("{:<52}", "query (ms)");
    for (backend, _) in &columns {
        print!(" {:>17}", format!("{} p50 / p99", backend.name()));
    }
    println!();
    for (i, case) in cases.iter().enumerate() {
        print!("{:<52}", case.label);
        for (_, timings) in &columns {
            let (p50, p99) = timings[i];
            print!(" {:>17}", format!("{p50:.2} / {p99:.2}"));
        }
        println!();
    }
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn rfc3339(micros: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(micros / 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Each filter alone and with other sorts, at selective and common values.
const QUERIES: [&str; 34] = [
    "",
    "sort=created_at",
    "sort=duration",
    "sort=-duration",
    "sort=name",
    "sort=-name",
    "max_duration=30",
    "max_duration=2",
    "min_duration=600",
    "min_duration=6000",
    "min_duration=10&max_duration=20",
    "max_duration=30&sort=-duration",
    "min_duration=600&sort=name",
    "name=memo",
    "name=zürich",
    "name=call-with-søren",
    "name=xyzzy",
    "name=a",
    "name=ß",
    "name=mü",
    "name=q",
    "name=memo&sort=-duration",
    "name=brûlée&sort=name",
    "name=xyzzy&sort=name",
    "status=failed",
    "status=ready",
    "status=pending&sort=duration",
    "format=flac",
    "format=webm",
    "format=flac&sort=name",
    "sender=bench1@example.com",
    "sender=bench0@example.com",
    "channel=team",
    "format=m4a&max_duration=30&status=ready",
];

fn cases() -> Vec<Case> {
    let at =
        |fraction: f64| rfc3339(seed::START_MICROS + (seed::SPAN_MICROS as f64 * fraction) as i64);
    let plain = |label: &str, query: String| Case {
        label: label.to_owned(),
        query,
        deep: false,
    };
    let mut cases: Vec<Case> = QUERIES
        .iter()
        .map(|q| {
            plain(
                if q.is_empty() {
                    "(default: -created_at)"
                } else {
                    q
                },
                (*q).to_owned(),
            )
        })
        .collect();
    cases.extend([
        plain(
            "created_after=(the last month)",
            format!("created_after={}", at(35.0 / 36.0)),
        ),
        plain(
            "created_before=(the first month)",
            format!("created_before={}", at(1.0 / 36.0)),
        ),
        plain(
            "created_after..created_before (a week)",
            format!(
                "created_after={}&created_before={}",
                at(0.5),
                at(0.5 + 1.0 / 156.0)
            ),
        ),
        plain(
            "created_before=(half-way)&sort=-duration",
            format!("created_before={}&sort=-duration", at(0.5)),
        ),
        plain("limit=500", "limit=500".to_owned()),
    ]);
    for query in [
        "sort=-created_at",
        "sort=name",
        "sort=duration",
        "max_duration=30",
    ] {
        cases.push(Case {
            label: format!("{query}, a page deep"),
            query: query.into(),
            deep: true,
        });
    }
    cases
}

/// Starts a server on `backend`, fills it and times every case; p50 and p99 in ms per case.
async fn run(
    backend: Backend,
    notes: &[seed::SeedNote],
    cases: &[Case],
) -> anyhow::Result<Vec<(f64, f64)>> {
    let pg_server = env_or(
        "HARK_BENCH_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432",
    );
    let kept = std::env::var_os("HARK_BENCH_KEEP").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir()?;
    let dir = match &kept {
        Some(kept) => kept.join(backend.name()),
        None => temp.path().to_owned(),
    };
    // A marker written once the data set is complete: its note count.
    let marker = dir.join("seeded");
    let seeded = std::fs::read_to_string(&marker).ok() == Some(notes.len().to_string());
    if kept.is_some() && !seeded {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir)?;
    // The names are fixed or made of digits: nothing from outside reaches the statements.
    let pg_database = match kept {
        Some(_) => "hark_bench_lists_kept".to_owned(),
        None => format!("hark_bench_lists_{}", std::process::id()),
    };
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}/hark.db", dir.display()),
        Backend::Postgres => {
            if !seeded {
                let mut admin =
                    sqlx::PgConnection::connect(&format!("{pg_server}/postgres")).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {pg_database} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE DATABASE {pg_database}"
                )))
                .execute(&mut admin)
                .await?;
            }
            format!("{pg_server}/{pg_database}")
        }
    };
    let marker = kept.is_some().then_some(marker.as_path());
    let outcome = fill_and_time(backend, &dir, &database_url, notes, seeded, marker, cases).await;
    if kept.is_none() && backend == Backend::Postgres {
        let mut admin = sqlx::PgConnection::connect(&format!("{pg_server}/postgres")).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {pg_database} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
    }
    outcome
}

async fn fill_and_time(
    backend: Backend,
    dir: &std::path::Path,
    database_url: &str,
    notes: &[seed::SeedNote],
    seeded: bool,
    marker: Option<&std::path::Path>,
    cases: &[Case],
) -> anyhow::Result<Vec<(f64, f64)>> {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.join("hark")),
        database_url: Some(database_url.to_owned()),
    };
    let mut config = Config::load(None, overrides)?;
    config.auth.jwt_secret = "bench".to_owned().into();
    let app = App::build(config.clone()).await?;
    let base = format!("http://{}", app.addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let client = hark_client::Client::new(&base);
    if !seeded {
        let mut owners = Vec::new();
        for n in 0..seed::SHARES.len() {
            owners.push(client.register(&bench_user(n), "bench password").await?.id);
        }
        seed(backend, &config, dir, database_url, notes, &owners).await?;
        if let Some(marker) = marker {
            std::fs::write(marker, notes.len().to_string())?;
        }
    }
    let token = client
        .sign_in(&bench_user(0), "bench password")
        .await?
        .access_token;

    let http = reqwest::Client::new();
    let mut timings = Vec::new();
    for case in cases {
        let query = if case.deep {
            let cursor = cursor_after(&http, &base, &token, &case.query, notes.len()).await?;
            format!("{}&cursor={cursor}", case.query)
        } else {
            case.query.clone()
        };
        let url = format!("{base}/api/v1/notes?{query}");
        let timing = time_requests(&http, &url, &token).await?;
        println!("  {:<60} {:>8.2} {:>8.2}", case.label, timing.0, timing.1);
        timings.push(timing);
    }
    let _ = stop.send(());
    server.await??;
    Ok(timings)
}

fn bench_user(n: usize) -> String {
    format!("bench{n}@example.com")
}

/// Writes the data set straight into the database, and the blobs into the server's store.
async fn seed(
    backend: Backend,
    config: &Config,
    dir: &std::path::Path,
    database_url: &str,
    notes: &[seed::SeedNote],
    owners: &[String],
) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = hark_server::blob::open(config)?;
    let blobs = seed::store_blobs(store.as_ref(), dir).await?;
    match backend {
        Backend::Sqlite => {
            // The bench's own connection may skip fsyncs: it only loads the data set.
            let options = SqliteConnectOptions::from_str(database_url)?
                .synchronous(SqliteSynchronous::Off)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePool::connect_with(options).await?;
            seed::insert(&pool, notes, owners, &blobs).await?;
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(database_url).await?;
            seed::insert(&pool, notes, owners, &blobs).await?;
            // What autovacuum does after a bulk load: statistics and the visibility map.
            sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
            pool.close().await;
        }
    }
    println!(
        "{}: loaded in {:.1} s",
        backend.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The cursor after the first `DEEP_PAGE_OFFSET` items of a listing, or a few pages of it.
async fn cursor_after(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    notes: usize,
) -> anyhow::Result<String> {
    let mut cursor = String::new();
    for _ in 0..(DEEP_PAGE_OFFSET.min(notes / 40) / PAGE).max(1) {
        let page: hark_api::NoteList = http
            .get(format!("{base}/api/v1/notes?{query}&limit={PAGE}{cursor}"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let next = page
            .next_cursor
            .ok_or_else(|| anyhow::anyhow!("{query}: too few items to page through"))?;
        cursor = format!("&cursor={next}");
    }
    Ok(cursor.trim_start_matches("&cursor=").to_owned())
}

/// p50 and p99 in ms of sequential requests, after a warm-up.
async fn time_requests(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(f64, f64)> {
    let fetch = || async {
        let response = http.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await?;
        anyhow::Ok(())
    };
    for _ in 0..3 {
        fetch().await?;
    }
    let started = Instant::now();
    let mut samples = Vec::with_capacity(REQUESTS);
    while samples.len() < REQUESTS && (samples.len() < 10 || started.elapsed() < MAX_TIME_PER_QUERY)
    {
        let request = Instant::now();
        fetch().await?;
        samples.push(request.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}
