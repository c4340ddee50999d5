//! The corpus as oracle: every good file must probe as ffprobe sees it, every bad one must be
//! refused with a sensible description, and no prefix of a good file may panic.

use hark_audio::{Format, ProbeError, probe_file};
use hark_testkit::{Entry, bad_files, manifest};
use std::fmt::Write as _;

fn expected_format(format_name: &str) -> Option<Format> {
    Some(match format_name {
        "wav" => Format::Wav,
        "mp3" => Format::Mp3,
        "ogg" => Format::Ogg,
        "flac" => Format::Flac,
        "mov,mp4,m4a,3gp,3g2,mj2" => Format::Mp4,
        "matroska,webm" => Format::Webm,
        _ => return None,
    })
}

/// The tolerance the server promises: max(20 ms, 0.2 %).
fn close(probed: f64, oracle: f64) -> bool {
    (probed - oracle).abs() <= 0.020f64.max(oracle * 0.002)
}

/// Everything wrong with one file's probe, or nothing.
fn check(entry: &Entry) -> (String, Vec<String>) {
    let path = entry.path();
    let info = match probe_file(&path) {
        Ok(info) => info,
        Err(e) => return ("error".into(), vec![format!("probe failed: {e}")]),
    };
    let mut wrong = Vec::new();
    if Some(info.format) != expected_format(&entry.format_name) {
        wrong.push(format!(
            "format {:?}, ffprobe says {}",
            info.format, entry.format_name
        ));
    }
    if info.codec != entry.codec {
        wrong.push(format!("codec {}, expected {}", info.codec, entry.codec));
    }
    if info.sample_rate != entry.sample_rate {
        wrong.push(format!(
            "sample rate {}, expected {}",
            info.sample_rate, entry.sample_rate
        ));
    }
    if info.channels != entry.channels {
        wrong.push(format!(
            "channels {}, expected {}",
            info.channels, entry.channels
        ));
    }
    let d = info.duration_seconds;
    if !close(d, entry.duration_seconds) && !close(d, entry.decoded_seconds) {
        wrong.push(format!(
            "duration {d:.6}, expected {:.6} (container) or {:.6} (decoded)",
            entry.duration_seconds, entry.decoded_seconds
        ));
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let bitrate = (size as f64 * 8.0 / d).round() as u64;
    if info.bitrate != bitrate {
        wrong.push(format!("bitrate {}, expected {bitrate}", info.bitrate));
    }
    (format!("{d:.6}"), wrong)
}

#[test]
fn good_files_match_ffprobe() {
    let entries = manifest();
    assert!(
        entries.len() >= 18,
        "manifest lists only {} files",
        entries.len()
    );
    let mut table = String::from("file                      probed      ffprobe     decoded\n");
    let mut failures = String::new();
    for entry in &entries {
        let (probed, wrong) = check(entry);
        let _ = writeln!(
            table,
            "{:<25} {probed:>11} {:>11.6} {:>11.6}",
            entry.file, entry.duration_seconds, entry.decoded_seconds
        );
        for w in wrong {
            let _ = writeln!(failures, "{}: {w}", entry.file);
        }
    }
    println!("{table}");
    assert!(
        failures.is_empty(),
        "corpus mismatches:\n{failures}\n{table}"
    );
}

/// What the refusal of each known bad file must mention.
fn expected_detected(name: &str) -> Option<&'static str> {
    Some(match name {
        "text.wav" => "text",
        "empty.wav" => "empty",
        "header_only.wav" => "WAV header with no samples",
        "truncated_head.mp3" => "truncated MP3",
        "random.mp3" => "unrecognised data",
        "png_named.mp3" => "PNG image",
        _ => return None,
    })
}

#[test]
fn bad_files_are_refused_with_a_reason() {
    let mut failures = String::new();
    for path in bad_files() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        match probe_file(&path) {
            Err(ProbeError::Unsupported { detected }) => {
                println!("{name}: {detected}");
                if let Some(want) = expected_detected(&name)
                    && !detected.contains(want)
                {
                    let _ = writeln!(failures, "{name}: detected {detected:?}, expected {want:?}");
                }
            }
            other => {
                let _ = writeln!(failures, "{name}: expected Unsupported, got {other:?}");
            }
        }
    }
    assert!(failures.is_empty(), "bad files:\n{failures}");
}

#[test]
fn truncated_files_never_panic() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut failures = String::new();
    for entry in manifest() {
        let bytes = entry.bytes();
        let len = bytes.len();
        for cut in [0, 1, 10, 100, 1000, 5000, len / 2, len.saturating_sub(1)] {
            let cut = cut.min(len);
            let path = scratch.path().join(format!("{cut}_{}", entry.file));
            std::fs::write(&path, &bytes[..cut]).expect("write prefix");
            match probe_file(&path) {
                Ok(_) | Err(ProbeError::Unsupported { .. }) => {}
                Err(e) => {
                    let _ = writeln!(failures, "{} cut at {cut}: {e:?}", entry.file);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// Damaged headers: a few bytes overwritten near the start or the end (where MP4 keeps its
/// `moov`) of every good file, at positions from a fixed pseudo-random sequence so that failures
/// reproduce.
#[test]
fn corrupted_headers_never_panic() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("corrupt");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // HARK_FUZZ_ROUNDS raises the count for a longer local run.
    let rounds: u32 = std::env::var("HARK_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    let mut failures = String::new();
    for entry in manifest() {
        let original = entry.bytes();
        for round in 0..rounds {
            let mut bytes = original.clone();
            let span = bytes.len().min(4096) as u64;
            for _ in 0..=(round % 3) {
                let back = (next() % span) as usize;
                let at = if next() % 2 == 0 {
                    back
                } else {
                    bytes.len() - 1 - back
                };
                bytes[at] = next() as u8;
            }
            std::fs::write(&path, &bytes).expect("write");
            if let Err(ProbeError::Io(e)) = probe_file(&path) {
                let _ = writeln!(failures, "{} round {round}: {e}", entry.file);
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}
