//! 10,000 inbox long-polls waiting at once on the real `hark serve` (its own process, on its
//! embedded defaults), then one upload to a channel whose members they are: how long after the
//! upload's 201 each waiter has its answer (p50, p99, max), and the server's peak resident
//! memory. The waiters are spread over 100 users and several 127.0.0.x source addresses, each
//! a plain keep-alive socket, so the client's cost per answer stays small beside the server's.
//!
//! `cargo bench -p hark --bench longpoll` (raise `ulimit -n` above 2 x the waiters first).
//! `HARK_BENCH_WAITERS` sets the number of waiters (default 10000).

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use hark_api::{InboxPage, InboxQuery};
use hark_client::{Client, UploadOptions};
use std::io::BufRead;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HARK: &str = env!("CARGO_BIN_EXE_hark");
const USERS: usize = 100;
const SOURCE_ADDRESSES: u8 = 4;
const PASSWORD: &str = "bench password 1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and then nothing is timed.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let waiters: usize = std::env::var("HARK_BENCH_WAITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let (mut server, base) = serve(dir.path())?;
    let outcome = run(&base, server.id(), waiters).await;
    let _ = server.kill();
    let _ = server.wait();
    outcome
}

async fn run(base: &str, pid: u32, waiters: usize) -> anyhow::Result<()> {
    let anonymous = Client::new(base);
    let (sender, _) = signed_in(&anonymous, "sender@example.com").await?;
    sender.create_channel("bench").await?;
    let mut tokens = Vec::with_capacity(USERS);
    let mut first = None;
    for n in 0..USERS {
        let email = format!("member{n}@example.com");
        let (member, token) = signed_in(&anonymous, &email).await?;
        sender.add_member("bench", &email).await?;
        tokens.push(token);
        first.get_or_insert(member);
    }
    let start = first
        .context("members")?
        .inbox(&InboxQuery::default())
        .await?
        .cursor;
    let before = memory_kb(pid, "VmRSS:")?;

    // Each waiter is a plain socket with one request written on it: the client's own cost per
    // answer (a read, a scan for the end of the body) stays small beside the server's.
    let address: std::net::SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .context("the server's address")?;
    let path = format!("/api/v1/inbox?since={start}&wait=60");
    let mut tasks = Vec::with_capacity(waiters);
    for n in 0..waiters {
        let source = Ipv4Addr::new(127, 0, 0, 1 + (n % SOURCE_ADDRESSES as usize) as u8);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\r\n",
            tokens[n % tokens.len()]
        );
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::new(IpAddr::V4(source), 0))?;
        let mut stream = socket.connect(address).await?;
        stream.write_all(request.as_bytes()).await?;
        tasks.push(tokio::spawn(async move {
            let mut response = Vec::with_capacity(4096);
            let (head_end, length) = loop {
                if stream.read_buf(&mut response).await? == 0 {
                    anyhow::bail!("the server closed the connection before answering");
                }
                if let Some(head) = response_head(&response)? {
                    break head;
                }
            };
            while response.len() < head_end + length {
                if stream.read_buf(&mut response).await? == 0 {
                    anyhow::bail!("the server closed the connection mid-answer");
                }
            }
            // Checked once every waiter has its answer: the client shares the server's cores.
            // The connection stays open until then too, as a client's would for its next
            // long-poll.
            Ok::<_, anyhow::Error>((Instant::now(), response, head_end, stream))
        }));
    }
    // Until every request is waiting at the server (none may answer before the note).
    tokio::time::sleep(Duration::from_secs(3) + Duration::from_micros(500 * waiters as u64)).await;
    anyhow::ensure!(
        tasks.iter().all(|t| !t.is_finished()),
        "a long-poll answered before anything was sent"
    );
    let waiting = memory_kb(pid, "VmRSS:")?;

    let options = UploadOptions {
        channel: Some("bench".into()),
        ..Default::default()
    };
    let cpu_before = (cpu_ms(pid)?, cpu_ms(std::process::id())?);
    sender.upload_bytes(wav(), &options).await?;
    let sent = Instant::now();
    let mut latencies = Vec::with_capacity(waiters);
    let mut connections = Vec::with_capacity(waiters);
    let mut answers = Vec::with_capacity(waiters);
    for task in tasks {
        let (answered, response, head_end, connection) = task.await??;
        connections.push(connection);
        latencies.push(answered.saturating_duration_since(sent).as_secs_f64() * 1000.0);
        answers.push((response, head_end));
    }
    let cpu = (
        cpu_ms(pid)? - cpu_before.0,
        cpu_ms(std::process::id())? - cpu_before.1,
    );
    for (response, head_end) in answers {
        let head = String::from_utf8_lossy(&response[..head_end]);
        anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "answered {head}");
        let items = serde_json::from_slice::<InboxPage>(&response[head_end..])?
            .items
            .len();
        anyhow::ensure!(items == 1, "a waiter got {items} notes, not the one sent");
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let peak = memory_kb(pid, "VmHWM:")?;
    println!("{waiters} long-polls over {USERS} users, one upload to a channel of all of them");
    println!(
        "answered after the upload's 201: first {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.0),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    println!(
        "CPU from the upload to the last answer: server {:.0} ms ({:.1} µs an answer), \
         client {:.0} ms",
        cpu.0,
        cpu.0 * 1000.0 / waiters as f64,
        cpu.1
    );
    println!(
        "server memory: {:.0} MB before the waiters, {:.0} MB with them waiting, peak {:.0} MB",
        before / 1024.0,
        waiting / 1024.0,
        peak / 1024.0
    );
    Ok(())
}

/// `hark serve` on a free port with a fresh data directory; its base URL.
fn serve(dir: &std::path::Path) -> anyhow::Result<(std::process::Child, String)> {
    let mut child = std::process::Command::new(HARK)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HARK_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .env(
            "HARK_JOBS__IN_PROCESS",
            std::env::var("BENCH_JOBS").unwrap_or("true".into()),
        )
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting hark serve")?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    loop {
        let line = lines.next().context("hark serve exited early")??;
        if let Some(url) = line.split("listening on ").nth(1) {
            // Keep draining, so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Ok((child, url.trim().to_owned()));
        }
    }
}

/// A new user, signed in: a client with their token, and the token.
async fn signed_in(anonymous: &Client, email: &str) -> anyhow::Result<(Client, String)> {
    anonymous.register(email, PASSWORD).await?;
    let token = anonymous.sign_in(email, PASSWORD).await?.access_token;
    Ok((Client::new(anonymous.base()).with_token(&token), token))
}

/// Where an HTTP/1.1 response's head ends and the length of its body, once the head is in.
fn response_head(response: &[u8]) -> anyhow::Result<Option<(usize, usize)>> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&response[..end])?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .context("a Content-Length")?;
    Ok(Some((end + 4, length)))
}

/// The CPU time a process's threads have had so far, in ms (`/proc/<pid>/task/*/schedstat`).
fn cpu_ms(pid: u32) -> anyhow::Result<f64> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread that ends meanwhile has no file left to read.
        if let Ok(stat) = std::fs::read_to_string(task?.path().join("schedstat")) {
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .context("a schedstat")?;
        }
    }
    Ok(nanos as f64 / 1e6)
}

/// A line of /proc/<pid>/status, in kB.
fn memory_kb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} of {pid}"))
}

/// One second of a 440 Hz tone, 16 kHz mono 16-bit WAV: the voice note sent.
fn wav() -> Vec<u8> {
    let rate: u32 = 16_000;
    let samples: Vec<i16> = (0..rate)
        .map(|n| {
            let t = f64::from(n) / f64::from(rate);
            (8000.0 * (440.0 * std::f64::consts::TAU * t).sin()) as i16
        })
        .collect();
    hark_testkit::pcm16_wav(rate, &samples)
}
