//! The one-pass pipeline against ffmpeg doing the same work as a user would: three commands per
//! file (the Opus rendition, the MP3 rendition, the loudness measurement).
//!
//! Both sides run the same jobs through the same pool: one worker thread per core, each taking
//! the next job from a shared list. Our job is one file through every step; ffmpeg's jobs are
//! its three commands, each one process on one core, so it gets the same parallelism. Two
//! workloads: the long corpus files, and a batch of 100 short notes (the short corpus files
//! repeated). Each is timed twice per side, alternating, and the better run counts.
//!
//! `HARK_CORPUS=/work/corpus cargo bench -p hark-audio --bench pipeline`

use hark_audio::process_file;
use hark_testkit::manifest;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs `jobs` on `workers` threads, each taking the next job in turn; returns the wall time.
fn pool<J: Sync>(jobs: &[J], workers: usize, run: impl Fn(usize, &J) + Sync) -> Duration {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    run(i, job);
                }
            });
        }
    });
    start.elapsed()
}

fn ours(files: &[PathBuf], workers: usize, out: &Path) -> Duration {
    pool(files, workers, |i, file| {
        let dir = out.join(format!("ours-{i}"));
        std::fs::create_dir_all(&dir).expect("output dir");
        let processed = process_file(file, &dir).expect("processing");
        assert_eq!(processed.renditions.len(), 2);
    })
}

/// ffmpeg's three commands for every file, as separate jobs.
fn ffmpeg(files: &[PathBuf], workers: usize, out: &Path) -> Duration {
    let jobs: Vec<(usize, &PathBuf)> = files
        .iter()
        .flat_map(|f| (0..3).map(move |step| (step, f)))
        .collect();
    pool(&jobs, workers, |i, (step, file)| {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-y", "-i"]).arg(file);
        match step {
            0 => cmd
                .args(["-c:a", "libopus", "-b:a", "24k", "-ac", "1", "-ar", "48000"])
                .arg(out.join(format!("ffmpeg-{i}.ogg"))),
            1 => cmd
                .args(["-c:a", "libmp3lame", "-b:a", "64k", "-ac", "1"])
                .arg(out.join(format!("ffmpeg-{i}.mp3"))),
            _ => cmd.args(["-af", "ebur128=peak=true", "-f", "null", "-"]),
        };
        let status = cmd.status().expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg step {step} on {}", file.display());
    })
}

fn compare(name: &str, files: &[PathBuf], workers: usize) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let seconds: f64 = files
        .iter()
        .map(|f| hark_audio::probe_file(f).map_or(0.0, |i| i.duration_seconds))
        .sum();
    // A warm-up of each, so neither side pays for a cold page cache.
    ours(&files[..1], 1, scratch.path());
    ffmpeg(&files[..1], 1, scratch.path());
    let (mut best_ours, mut best_ffmpeg) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        best_ours = best_ours.min(ours(files, workers, scratch.path()));
        best_ffmpeg = best_ffmpeg.min(ffmpeg(files, workers, scratch.path()));
    }
    println!(
        "{name:<28} {:>4} files {seconds:>8.1} s audio | one pass {:>8.3} s | ffmpeg x3 {:>8.3} s | \
         {:.2}x faster",
        files.len(),
        best_ours.as_secs_f64(),
        best_ffmpeg.as_secs_f64(),
        best_ffmpeg.as_secs_f64() / best_ours.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and then nothing is timed.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let entries = manifest();
    let long: Vec<PathBuf> = entries
        .iter()
        .filter(|e| e.file.starts_with("long_"))
        .map(|e| e.path())
        .collect();
    let short: Vec<PathBuf> = entries
        .iter()
        .filter(|e| !e.file.starts_with("long_"))
        .map(|e| e.path())
        .cycle()
        .take(100)
        .collect();
    println!("{workers} workers on each side (one job per core at a time)");
    compare("long files (~114 s each)", &long, workers);
    compare("100 short notes (~4.6 s each)", &short, workers);
}
