//! Throughput of the real server on SQLite, next to peers a user would pick, in the same run:
//! - uploads per second of a 100 KB Ogg Opus note, each body unique (a number stamped into a
//!   comment tag, so deduplication cannot answer from a blob already stored), 16 concurrent
//!   clients, against a minimal peer that writes the same bytes to a temp file, fsyncs and
//!   renames it;
//! - GET requests per second of the stored note, whole and a 64 KiB range, 64 connections
//!   driven by wrk, Hark checking the bearer token and the caller's access to the note, against
//!   nginx serving the same file from disk.
//!
//! `cargo bench -p hark-server --bench throughput` (needs ffmpeg; installs Debian's wrk and
//! nginx-light when missing and running as root). `HARK_BENCH_SECONDS` sets each phase's length
//! (default 10); `HARK_BENCH_PHASES` picks phases from `uploads,downloads,memory,lists` (all).

mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use hark_server::{App, Config, Overrides};
use tokio::io::AsyncWriteExt;

use load::unique::Stampable;
use load::wrk;

/// Digits in the note's comment tag that each upload replaces with its own number.
const PLACEHOLDER: &str = "000000000000";
const RANGE_64K: &str = "Range: bytes=0-65535";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("HARK_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let phases = std::env::var("HARK_BENCH_PHASES")
        .unwrap_or_else(|_| "uploads,downloads,memory,lists".into());
    let runs = |phase: &str| phases.split(',').any(|p| p.trim() == phase);
    let phase = Duration::from_secs(seconds);
    let dir = tempfile::tempdir()?;
    let note = Stampable::new(opus_note(dir.path())?, PLACEHOLDER)?;
    let original = note.stamped(0);
    println!(
        "note: Ogg Opus, {} bytes; each phase runs {seconds} s; clients and servers share this machine",
        original.len()
    );

    let (hark, token) = start_hark(dir.path()).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;

    if runs("uploads") {
        let peer = start_peer(dir.path().join("peer")).await?;
        let note = Arc::new(note);
        let counter = Arc::new(AtomicU64::new(1));
        let hark_url = format!("{hark}/api/v1/notes?name=bench.ogg");
        let peer_url = format!("{peer}/upload");
        // Alternating halves: both servers see the same background load and disk state.
        let (mut uploads, mut peer_uploads) = (0.0, 0.0);
        for _ in 0..2 {
            let (url, auth) = (hark_url.clone(), token.clone());
            let (body, next) = (note.clone(), counter.clone());
            uploads += load(16, phase / 2, &client, StatusCode::CREATED, move |c| {
                let body = body.stamped(next.fetch_add(1, Ordering::Relaxed));
                c.post(&url).bearer_auth(&auth).body(body)
            })
            .await
                / 2.0;
            let (url, body, next) = (peer_url.clone(), note.clone(), counter.clone());
            peer_uploads += load(16, phase / 2, &client, StatusCode::CREATED, move |c| {
                let body = body.stamped(next.fetch_add(1, Ordering::Relaxed));
                c.post(&url).body(body)
            })
            .await
                / 2.0;
        }
        println!();
        println!("{:<52} {:>10} {:>10} {:>7}", "", "hark", "peer", "ratio");
        println!(
            "{:<52} {uploads:>10.1} {peer_uploads:>10.1} {:>6.2}x",
            "uploads/s, 100 KB Ogg Opus, unique, 16 clients",
            uploads / peer_uploads
        );
        let committed = group_commits(&client, &hark).await?;
        println!(
            "  hark's group commits: {:.1} notes a batch; per batch {:.2} ms in all, of which {:.2} ms flushing blobs alongside the statements",
            committed.notes_per_batch, committed.transaction_ms, committed.flush_ms
        );
    }

    if runs("downloads") {
        downloads(&hark, &token, &client, original, seconds, dir.path()).await?;
    }

    if runs("memory") {
        let (peak_mb, big_mb) =
            peak_memory_of_big_uploads(dir.path(), &hark, &token, &client).await?;
        println!();
        println!(
            "peak resident memory of this process (server + client) during 50 concurrent {big_mb:.0} MB uploads: {peak_mb:.0} MB"
        );
    }

    if runs("lists") {
        let listing = list_latencies(dir.path(), &hark, &token, &client).await?;
        println!();
        println!("list latency with 100,000 notes (mean of 50 sequential requests, limit 50):");
        for (query, ms) in listing {
            println!("  {query:<56} {ms:>8.2} ms");
        }
    }
    Ok(())
}

/// GETs of the stored note, whole and a 64 KiB range, from Hark and from nginx serving the same
/// bytes from disk, both driven by wrk with 64 connections.
async fn downloads(
    hark: &str,
    token: &str,
    client: &reqwest::Client,
    note: Bytes,
    seconds: u64,
    scratch: &std::path::Path,
) -> anyhow::Result<()> {
    let stored: serde_json::Value = client
        .post(format!("{hark}/api/v1/notes?name=bench.ogg"))
        .bearer_auth(token)
        .body(note.clone())
        .send()
        .await?
        .json()
        .await?;
    let id = stored["id"].as_str().unwrap_or_default();
    let hark_url = format!("{hark}/api/v1/notes/{id}/audio");
    let nginx = load::nginx::Nginx::start("note.ogg", &note)?;
    let nginx_url = format!("{}/note.ogg", nginx.base);
    let bearer = format!("Authorization: Bearer {token}");
    for (url, headers) in [(&hark_url, vec![bearer.clone()]), (&nginx_url, vec![])] {
        let mut request = client.get(url.as_str());
        for header in &headers {
            let (name, value) = header.split_once(": ").unwrap_or_default();
            request = request.header(name, value);
        }
        let body = request.send().await?.error_for_status()?.bytes().await?;
        anyhow::ensure!(body == note, "{url} does not serve the note's bytes");
    }
    let scratch = scratch.to_owned();
    let measure = move |url: String, headers: Vec<String>| {
        let scratch = scratch.clone();
        tokio::task::spawn_blocking(move || wrk::run(&url, &headers, 64, seconds, &scratch))
    };
    let full = measure(hark_url.clone(), vec![bearer.clone()]).await??;
    let nginx_full = measure(nginx_url.clone(), vec![]).await??;
    let range = measure(hark_url, vec![bearer, RANGE_64K.into()]).await??;
    let nginx_range = measure(nginx_url, vec![RANGE_64K.into()]).await??;
    drop(nginx);
    println!();
    println!(
        "{:<30} {:>10} {:>10} {:>7}   {:>17} {:>17}",
        "GET, 64 connections (wrk)",
        "hark/s",
        "nginx/s",
        "ratio",
        "hark p50/p99 ms",
        "nginx p50/p99 ms"
    );
    for (what, hark, nginx) in [
        ("whole note (100 KB)", full, nginx_full),
        ("64 KiB Range", range, nginx_range),
    ] {
        println!(
            "{what:<30} {:>10.0} {:>10.0} {:>6.2}x   {:>8.2}/{:<8.2} {:>8.2}/{:<8.2}",
            hark.requests_per_second,
            nginx.requests_per_second,
            hark.requests_per_second / nginx.requests_per_second,
            hark.p50_ms,
            hark.p99_ms,
            nginx.p50_ms,
            nginx.p99_ms
        );
    }
    Ok(())
}

/// Uploads a WAV just under the 50 MiB cap from 50 clients at once and reports the peak
/// resident memory (VmHWM, reset first), in MB, with the file's size in MB. Bodies stream to
/// disk, so the peak stays far below 50 x the file.
async fn peak_memory_of_big_uploads(
    dir: &std::path::Path,
    hark: &str,
    token: &str,
    client: &reqwest::Client,
) -> anyhow::Result<(f64, f64)> {
    let path = dir.join("big.wav");
    tone(
        &path,
        "sine=frequency=300:duration=1600:sample_rate=16000",
        &["-ac", "1", "-c:a", "pcm_s16le"],
    )?;
    let body = Bytes::from(std::fs::read(&path)?);
    std::fs::write("/proc/self/clear_refs", "5")?;
    let uploads: Vec<_> = (0..50)
        .map(|n| {
            client
                .post(format!("{hark}/api/v1/notes?name=big-{n}.wav"))
                .bearer_auth(token)
                .body(body.clone())
                .send()
        })
        .collect();
    for response in futures_util::future::join_all(uploads).await {
        anyhow::ensure!(
            response?.status() == StatusCode::CREATED,
            "a big upload failed"
        );
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    Ok((peak_kb / 1024.0, body.len() as f64 / 1e6))
}

/// Adds 100,000 notes straight into the database, then times filtered lists over HTTP.
async fn list_latencies(
    dir: &std::path::Path,
    hark: &str,
    token: &str,
    client: &reqwest::Client,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let me: serde_json::Value = client
        .get(format!("{hark}/api/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let owner = me["id"].as_str().unwrap_or_default().to_owned();
    let url = format!("sqlite://{}", dir.join("hark/hark.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::query(
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 100000) \
         INSERT INTO notes (id, owner_id, name, name_folded, format, codec, mime, duration_seconds, sample_rate, channels, \
         bitrate, size_bytes, sha256, status, tags, created_at) \
         SELECT printf('00000000-0000-7000-8000-%012d', n), $1, 'note-' || n || '.ogg', 'note-' || n || '.ogg', 'ogg', 'opus', 'audio/ogg', \
         (n % 600) + 0.5, 48000, 1, 24000, 100000, $2, 'pending', '{}', $3 + n FROM seq",
    )
    .bind(&owner)
    .bind("0".repeat(64))
    .bind(1_600_000_000_000_000i64)
    .execute(&pool)
    .await?;
    let queries = [
        "limit=50",
        "max_duration=30",
        "max_duration=300&sort=-duration",
        "sort=name",
        "format=ogg&status=pending&created_after=2020-09-13T12:26:40Z",
        "name=note-9999",
    ];
    let mut results = Vec::new();
    for query in queries {
        let started = Instant::now();
        for _ in 0..50 {
            let response = client
                .get(format!("{hark}/api/v1/notes?{query}"))
                .bearer_auth(token)
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == StatusCode::OK,
                "{query}: {}",
                response.status()
            );
            response.bytes().await?;
        }
        results.push((query, started.elapsed().as_secs_f64() * 1000.0 / 50.0));
    }
    Ok(results)
}

/// Encodes ffmpeg's `sine` source with these codec arguments into `path`.
fn tone(path: &std::path::Path, sine: &str, codec: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            sine,
        ])
        .args(codec)
        .arg(path)
        .status()?;
    anyhow::ensure!(status.success(), "ffmpeg failed");
    Ok(())
}

/// About 100 KB of Ogg Opus at 24 kbit/s: 22 s of a tone, with `PLACEHOLDER` as its comment.
fn opus_note(dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join("note.ogg");
    tone(
        &path,
        "sine=frequency=440:duration=22",
        &[
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
            "-metadata",
            &format!("comment={PLACEHOLDER}"),
        ],
    )?;
    Ok(std::fs::read(path)?)
}

async fn start_hark(dir: &std::path::Path) -> anyhow::Result<(String, String)> {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.join("hark")),
        database_url: None,
    };
    let mut config = Config::load(None, overrides)?;
    config.auth.jwt_secret = "bench".to_owned().into();
    let app = App::build(config).await?;
    let base = format!("http://{}", app.addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = hark_client::Client::new(&base);
    client
        .register("bench@example.com", "bench password")
        .await?;
    let token = client
        .sign_in("bench@example.com", "bench password")
        .await?
        .access_token;
    Ok((base, token))
}

/// The upload peer: plain axum that writes the body to a temporary file, fsyncs it and renames
/// it into place.
async fn start_peer(dir: std::path::PathBuf) -> anyhow::Result<String> {
    std::fs::create_dir_all(&dir)?;
    let app = Router::new()
        .route(
            "/upload",
            post(move |body: Bytes| {
                let dir = dir.clone();
                async move {
                    let name = uuid::Uuid::now_v7().to_string();
                    let temp = dir.join(format!("{name}.tmp"));
                    let store = async {
                        let mut out = tokio::fs::File::create(&temp).await?;
                        out.write_all(&body).await?;
                        out.sync_all().await?;
                        tokio::fs::rename(&temp, dir.join(name)).await
                    };
                    store
                        .await
                        .map(|()| StatusCode::CREATED)
                        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
                }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// What the server's group committer did, from its metrics: the committer is serial, so its
/// time per batch bounds the upload rate at `notes_per_batch / (flush + transaction)`.
struct GroupCommits {
    notes_per_batch: f64,
    flush_ms: f64,
    transaction_ms: f64,
}

async fn group_commits(client: &reqwest::Client, hark: &str) -> anyhow::Result<GroupCommits> {
    let text = client
        .get(format!("{hark}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = |name: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .with_context(|| format!("{name} in /metrics"))
    };
    let batches = value("hark_commit_batch_notes_count")?.max(1.0);
    Ok(GroupCommits {
        notes_per_batch: value("hark_commit_batch_notes_sum")? / batches,
        flush_ms: value("hark_commit_flush_seconds_sum")? * 1000.0 / batches,
        transaction_ms: value("hark_commit_transaction_seconds_sum")? * 1000.0 / batches,
    })
}

/// Runs `workers` loops sending requests for `phase`; returns successful requests per second.
async fn load<F>(
    workers: usize,
    phase: Duration,
    client: &reqwest::Client,
    expect: StatusCode,
    request: F,
) -> f64
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, request, done, failed) = (
                client.clone(),
                request.clone(),
                done.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                while started.elapsed() < phase {
                    match request(&client).send().await {
                        Ok(r) if r.status() == expect => {
                            let _ = r.bytes().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let failures = failed.load(Ordering::Relaxed);
    if failures > 0 {
        eprintln!("warning: {failures} requests failed");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
