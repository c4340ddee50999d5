//! `hark worker` end to end on PostgreSQL: a worker killed (SIGKILL) in the middle of a pass
//! leaves its jobs under a lease that runs out, and another worker process finishes them.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Database;
use hark_api::{JobStatus, JobStep, NoteStatus, Rendition};
use hark_client::{Client, UploadOptions};

const HARK: &str = env!("CARGO_BIN_EXE_hark");

/// The `hark` processes of one deployment: a data directory (the blob store) and a database
/// they share, and a temporary directory of the workers' own.
struct Deployment {
    data_dir: PathBuf,
    worker_temp: PathBuf,
    database_url: String,
}

impl Deployment {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(HARK);
        command
            .args(args)
            .env("HARK_DATA_DIR", &self.data_dir)
            .env("HARK_DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .env_remove("HARK_TOKEN")
            .stdin(Stdio::null());
        command
    }

    /// `hark serve` on a free port, leaving processing to `hark worker`; returns its base URL.
    fn serve(&self) -> (Child, String) {
        let mut child = self
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .env("HARK_JOBS__IN_PROCESS", "false")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hark serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
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
        (child, base)
    }

    /// `hark worker` with its jobs' leases lasting `lease_seconds`.
    fn worker(&self, lease_seconds: u32) -> Child {
        self.command(&["worker"])
            .env("HARK_JOBS__LEASE_SECONDS", lease_seconds.to_string())
            .env("TMPDIR", &self.worker_temp)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hark worker")
    }

    /// The scratch directory `hark worker` with this process id works in.
    fn scratch_of(&self, worker: &Child) -> PathBuf {
        self.worker_temp
            .join(format!("hark-worker-{}", worker.id()))
    }
}

/// A 16-bit mono WAV of `seconds` of a voice-like signal (a wandering tone, pulsing like
/// syllables): long enough that its pass takes seconds.
fn long_wav(seconds: u32) -> Vec<u8> {
    const RATE: u32 = 8_000;
    let mut phase = 0.0f64;
    let samples: Vec<i16> = (0..RATE * seconds)
        .map(|n| {
            let t = f64::from(n) / f64::from(RATE);
            let pitch = 180.0 + 60.0 * (t * 0.7).sin() + 25.0 * (t * 3.1).sin();
            phase += std::f64::consts::TAU * pitch / f64::from(RATE);
            let syllables = 0.55 + 0.45 * (t * std::f64::consts::TAU * 4.0).sin();
            let voice = phase.sin() + 0.5 * (2.0 * phase).sin() + 0.25 * (3.0 * phase).sin();
            (voice * syllables * 8_000.0) as i16
        })
        .collect();
    hark_testkit::pcm16_wav(RATE, &samples)
}

/// Polls `check` every 100 ms until it gives a value, for at most `limit`.
async fn wait_for<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn job_dirs(scratch: &Path) -> usize {
    std::fs::read_dir(scratch)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("job-"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_pass_leaves_its_jobs_to_another_worker() {
    let database = Database::create("worker").await;
    let data = tempfile::tempdir().expect("data dir");
    let worker_temp = tempfile::tempdir().expect("worker temp dir");
    let deployment = Deployment {
        data_dir: data.path().to_owned(),
        worker_temp: worker_temp.path().to_owned(),
        database_url: database.url(),
    };
    let added = deployment
        .command(&[
            "user",
            "add",
            "ann@example.com",
            "--password",
            "correct horse battery",
        ])
        .output()
        .expect("hark user add");
    assert!(added.status.success(), "{added:?}");
    let (mut server, base) = deployment.serve();
    let token = Client::new(&base)
        .sign_in("ann@example.com", "correct horse battery")
        .await
        .expect("sign in")
        .access_token;
    let ann = Client::new(&base).with_token(token);
    let options = UploadOptions {
        name: Some("long.wav".into()),
        ..UploadOptions::default()
    };
    let note = ann
        .upload_bytes(long_wav(1200), &options)
        .await
        .expect("upload");
    assert_eq!(note.status, NoteStatus::Pending, "no worker runs yet");

    // The first worker claims the note's jobs, with leases it renews every second or so.
    let mut first = deployment.worker(3);
    let first_scratch = deployment.scratch_of(&first);
    wait_for(
        Duration::from_secs(60),
        "the first worker's claim",
        || async {
            let jobs = ann.jobs(&note.id).await.expect("jobs");
            let transcode = jobs.items.iter().find(|j| j.step == JobStep::Transcode)?;
            (transcode.status == JobStatus::Running).then_some(())
        },
    )
    .await;
    wait_for(
        Duration::from_secs(10),
        "the first worker's pass",
        || async { (job_dirs(&first_scratch) > 0).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill().expect("kill -9 the first worker");
    first.wait().expect("reap");
    let stopped = ann.note(&note.id).await.expect("note");
    assert_eq!(
        stopped.status,
        NoteStatus::Processing,
        "the pass was killed before it ended"
    );
    assert!(first_scratch.exists(), "a killed worker cleans up nothing");

    // The second worker clears what the first left, then takes the jobs once their lease
    // runs out and finishes them.
    let mut second = deployment.worker(60);
    let ready = wait_for(Duration::from_secs(180), "the note ready", || async {
        let note = ann.note(&note.id).await.expect("note");
        assert_ne!(note.status, NoteStatus::Failed, "{note:?}");
        (note.status == NoteStatus::Ready).then_some(note)
    })
    .await;
    assert!(
        !first_scratch.exists(),
        "the killed worker's scratch directory was removed"
    );
    let jobs = ann.jobs(&note.id).await.expect("jobs");
    for job in &jobs.items {
        match job.step {
            JobStep::Transcribe | JobStep::Correct => assert_eq!(job.status, JobStatus::Skipped),
            _ => {
                assert_eq!(job.status, JobStatus::Done, "{job:?}");
                assert_eq!(job.attempts, 2, "run by each worker once: {job:?}");
            }
        }
    }
    assert_eq!(ready.renditions.len(), 2, "{ready:?}");
    for rendition in &ready.renditions {
        let tolerance = (0.03f64).max(ready.duration_seconds * 0.003);
        assert!(
            (rendition.duration_seconds - ready.duration_seconds).abs() <= tolerance,
            "{rendition:?} against {}",
            ready.duration_seconds
        );
    }
    let opus = ann
        .rendition(&note.id, Rendition::Opus)
        .await
        .expect("opus");
    assert!(opus.starts_with(b"OggS"));
    let mp3 = ann.rendition(&note.id, Rendition::Mp3).await.expect("mp3");
    assert!(mp3.len() > 1000);

    // A worker asked to stop finishes and removes its scratch directory.
    let second_scratch = deployment.scratch_of(&second);
    assert!(second_scratch.exists());
    let stopped = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    let status = second.wait().expect("reap");
    assert!(status.success(), "{status:?}");
    assert!(!second_scratch.exists());

    server.kill().expect("stop the server");
    let _ = server.wait();
    database.drop().await;
}
