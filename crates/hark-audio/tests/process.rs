//! The one-pass processing against ffmpeg as oracle: every corpus file decodes to its manifest
//! length, its renditions last as long and decode cleanly, its loudness agrees with ffmpeg's
//! ebur128 filter, its waveform has the right shape; damaged files are refused with a reason.

use hark_audio::process::{MonoSink, OpusFile};
use hark_audio::{DamagedAudio, PcmSink, ProcessError, WaveformSink, decode_into, process_file};
use hark_testkit::{Entry, manifest};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The decode matches ffmpeg's within what probing promises: max(20 ms, 0.2 %).
fn decode_close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 0.020f64.max(want * 0.002)
}

/// A rendition matches the original within max(30 ms, 0.3 %).
fn rendition_close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 0.030f64.max(want * 0.003)
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("ffmpeg/ffprobe runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// ffprobe's duration and start time of a file's container.
fn ffprobe(path: &Path) -> (f64, f64) {
    let (ok, stdout, stderr) = run(Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration,start_time"])
        .args(["-of", "default=nw=1"])
        .arg(path));
    assert!(ok, "ffprobe {}: {stderr}", path.display());
    let field = |name: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (field("duration="), field("start_time="))
}

/// What ffmpeg says while decoding the whole file (nothing for a clean file).
fn ffmpeg_decode_errors(path: &Path) -> String {
    let (_, _, stderr) = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]));
    stderr
}

/// ffmpeg's `ebur128=peak=true`: integrated loudness (LUFS) and true peak (dBFS); `None` for
/// -inf or -70 (its floor for silence).
fn ffmpeg_ebur128(path: &Path) -> (Option<f64>, Option<f64>) {
    let (ok, _, stderr) = run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:a:0",
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ]));
    assert!(ok, "ffmpeg ebur128 {}: {stderr}", path.display());
    let summary = stderr.rsplit("Summary:").next().unwrap_or_default();
    let value = |label: &str| -> Option<f64> {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(label))?;
        let v: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        (v.is_finite() && v > -70.0).then_some(v)
    };
    (value("I:"), value("Peak:"))
}

/// ffmpeg's `volumedetect` max_volume, in dB (one decimal).
fn ffmpeg_max_volume(path: &Path) -> Option<f64> {
    let (_, _, stderr) = run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"]));
    let line = stderr.lines().find(|l| l.contains("max_volume:"))?;
    line.split("max_volume:")
        .nth(1)?
        .trim()
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Everything wrong with one file's pass, as lines, and a row for the table.
fn check(entry: &Entry, scratch: &Path) -> (String, Vec<String>) {
    let dir = scratch.join(&entry.file);
    std::fs::create_dir_all(&dir).expect("rendition dir");
    let path = entry.path();
    let processed = match process_file(&path, &dir) {
        Ok(p) => p,
        Err(e) => return ("failed".into(), vec![format!("processing failed: {e}")]),
    };
    let mut wrong = Vec::new();
    let s = &processed.summary;
    let seconds = s.duration_seconds;
    if !decode_close(seconds, entry.decoded_seconds) {
        wrong.push(format!(
            "decoded {seconds:.6} s, ffmpeg decodes {:.6} s",
            entry.decoded_seconds
        ));
    }
    if (s.sample_rate, s.channels) != (entry.sample_rate, entry.channels) {
        wrong.push(format!(
            "{} Hz x {}, expected {} Hz x {}",
            s.sample_rate, s.channels, entry.sample_rate, entry.channels
        ));
    }
    if s.codec != entry.codec {
        wrong.push(format!("codec {}, expected {}", s.codec, entry.codec));
    }

    // Renditions: as long as the original (the decode, which matches ffmpeg's), and clean.
    let mut row = format!("{:<25} {seconds:>10.6}", entry.file);
    for r in &processed.renditions {
        let (duration, start) = ffprobe(&r.path);
        // ffprobe counts an MP3's encoder delay (its start time) in its duration.
        let presented = duration - start;
        let _ = write!(row, " {:>5} {presented:>10.6}", r.name);
        if !rendition_close(presented, seconds) || !rendition_close(r.duration_seconds, seconds) {
            wrong.push(format!(
                "{} rendition lasts {presented:.6} s by ffprobe ({duration:.6} from {start:.6}), \
                 {:.6} s by us; the original {seconds:.6} s",
                r.name, r.duration_seconds
            ));
        }
        let size = std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
        if size != r.size_bytes || size == 0 {
            wrong.push(format!(
                "{} size {} but the file has {size}",
                r.name, r.size_bytes
            ));
        }
        let errors = ffmpeg_decode_errors(&r.path);
        if !errors.is_empty() {
            wrong.push(format!(
                "ffmpeg decoding the {} rendition: {errors}",
                r.name
            ));
        }
    }
    let names: Vec<&str> = processed.renditions.iter().map(|r| r.name).collect();
    if names != ["opus", "mp3"] {
        wrong.push(format!("renditions {names:?}"));
    }

    // Loudness against ffmpeg's ebur128 filter on the original.
    let (lufs, peak) = ffmpeg_ebur128(&path);
    let ours = processed.loudness;
    let _ = write!(
        row,
        "  I {:>7.2} / {:>7.2}  TP {:>6.2} / {:>6.2}",
        ours.integrated_lufs.unwrap_or(f64::NAN),
        lufs.unwrap_or(f64::NAN),
        ours.true_peak_dbtp.unwrap_or(f64::NAN),
        peak.unwrap_or(f64::NAN)
    );
    match (ours.integrated_lufs, lufs) {
        (Some(a), Some(b)) if (a - b).abs() <= 0.5 => {}
        (None, None) => {}
        (a, b) => wrong.push(format!("integrated loudness {a:?} LUFS, ffmpeg {b:?}")),
    }
    match (ours.true_peak_dbtp, peak) {
        (Some(a), Some(b)) if (a - b).abs() <= 0.5 => {}
        (a, b) => wrong.push(format!("true peak {a:?} dBTP, ffmpeg {b:?}")),
    }

    // Waveform: 20 columns a second, 0..1, the loudest 1, the real peak as ffmpeg measures it.
    let waveform = &processed.waveform;
    let peaks = waveform.peaks();
    let columns = (s.frames * 20).div_ceil(u64::from(s.sample_rate)) as usize;
    if peaks.len() != columns || waveform.min.len() != columns {
        wrong.push(format!(
            "{} waveform columns, expected {columns}",
            peaks.len()
        ));
    }
    if peaks.iter().any(|p| !(0.0..=1.0).contains(p)) {
        wrong.push("waveform peaks outside 0..1".into());
    }
    let loudest = peaks.iter().fold(0f32, |a, &b| a.max(b));
    if (loudest - 1.0).abs() > 1e-6 {
        wrong.push(format!("loudest waveform peak {loudest}, expected 1"));
    }
    let bars = waveform.bars();
    if bars.len() != 100 || bars.iter().fold(0f32, |a, &b| a.max(b)) != loudest {
        wrong.push(format!(
            "{} bars, not topped by the loudest peak",
            bars.len()
        ));
    }
    let real_max = 20.0 * f64::from(waveform.peak_amplitude()).log10();
    if let Some(max_volume) = ffmpeg_max_volume(&path)
        && (real_max - max_volume).abs() > 0.5
    {
        wrong.push(format!(
            "waveform peak {real_max:.2} dBFS, ffmpeg's max_volume {max_volume} dB"
        ));
    }
    let json = waveform.audiowaveform();
    if json.length() != columns {
        wrong.push(format!("audiowaveform length {}", json.length()));
    }
    (row, wrong)
}

#[test]
fn every_corpus_file_goes_through_every_step() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let entries = manifest();
    let mut table = String::new();
    let mut failures = String::new();
    // Two at a time: the ffmpeg oracles are the slow part.
    let results: Vec<(String, Vec<String>)> = std::thread::scope(|scope| {
        let halves: Vec<_> = [0, 1]
            .map(|half| {
                let (entries, scratch) = (&entries, scratch.path());
                scope.spawn(move || {
                    entries
                        .iter()
                        .skip(half)
                        .step_by(2)
                        .map(|e| (e.file.clone(), check(e, scratch)))
                        .collect::<Vec<_>>()
                })
            })
            .into_iter()
            .collect();
        let mut all: Vec<_> = halves
            .into_iter()
            .flat_map(|h| h.join().expect("checker thread"))
            .collect();
        all.sort();
        all.into_iter().map(|(_, result)| result).collect()
    });
    for (entry, (row, wrong)) in entries.iter().zip(&results) {
        let _ = writeln!(table, "{row}");
        for w in wrong {
            let _ = writeln!(failures, "{}: {w}", entry.file);
        }
    }
    println!(
        "file                       decoded    rendition durations (ffprobe)   loudness ours / ffmpeg\n{table}"
    );
    assert!(failures.is_empty(), "mismatches:\n{failures}\n{table}");
}

/// A pseudo-random byte sequence that repeats from run to run.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Decodes into a waveform only; the error if any.
fn decode_error(path: &Path) -> Result<(), ProcessError> {
    let mut waveform = WaveformSink::new();
    let sinks: &mut [&mut dyn PcmSink] = &mut [&mut waveform];
    decode_into(path, sinks).map(|_| ())
}

fn expect_damaged(path: &Path, what: &str, duration: f64) -> Result<DamagedAudio, String> {
    match decode_error(path) {
        Err(ProcessError::Damaged(damage)) => {
            let text = damage.to_string();
            if damage.reason.len() < 10 || !text.contains("at about") {
                return Err(format!("{what}: unclear reason {text:?}"));
            }
            if !(0.0..=duration).contains(&damage.at_seconds) {
                return Err(format!(
                    "{what}: at {} s of {duration} s",
                    damage.at_seconds
                ));
            }
            Ok(damage)
        }
        other => Err(format!("{what}: expected DamagedAudio, got {other:?}")),
    }
}

#[test]
fn damaged_files_are_refused_with_a_reason_and_a_place() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut failures = String::new();
    let mut report = String::new();
    for entry in manifest() {
        let bytes = entry.bytes();
        let half = bytes.len() / 2;
        let cut = scratch.path().join(format!("half_{}", entry.file));
        std::fs::write(&cut, &bytes[..half]).expect("write");
        match expect_damaged(&cut, "cut at half", entry.decoded_seconds) {
            Ok(d) => {
                let _ = writeln!(report, "{:<25} cut in half: {d}", entry.file);
                // Most of the first half decoded before the cut was found.
                if d.at_seconds < entry.decoded_seconds * 0.2 && !entry.file.ends_with(".m4a") {
                    let _ = writeln!(failures, "{}: cut found only at {d}", entry.file);
                }
            }
            Err(e) => {
                let _ = writeln!(failures, "{}: {e}", entry.file);
            }
        }
        // A valid start followed by garbage. PCM WAV is the exception: any bytes are samples.
        if entry.codec.starts_with("pcm_") {
            continue;
        }
        let keep = 4096.min(half);
        let mut garbled = bytes[..keep].to_vec();
        garbled.extend(noise(bytes.len() - keep, 0x9E37_79B9_7F4A_7C15));
        let path = scratch.path().join(format!("garbage_{}", entry.file));
        std::fs::write(&path, &garbled).expect("write");
        match expect_damaged(&path, "header and garbage", entry.decoded_seconds) {
            Ok(d) => {
                let _ = writeln!(report, "{:<25} garbage:     {d}", entry.file);
            }
            Err(e) => {
                let _ = writeln!(failures, "{}: {e}", entry.file);
            }
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{failures}\n{report}");
}

/// A mono 16-bit WAV of `samples`.
fn wav(path: &Path, rate: u32, samples: &[i16]) -> PathBuf {
    std::fs::write(path, hark_testkit::pcm16_wav(rate, samples)).expect("write wav");
    path.to_path_buf()
}

#[test]
fn mono_sink_resamples_to_its_rate_and_opus_file_keeps_the_length() {
    let scratch = tempfile::tempdir().expect("tempdir");
    // 2.5 s of a 440 Hz tone at 44.1 kHz.
    let tone: Vec<i16> = (0..110_250)
        .map(|i| (12_000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / 44_100.0).sin()) as i16)
        .collect();
    let path = wav(&scratch.path().join("tone.wav"), 44_100, &tone);
    let (mut at_16k, mut at_48k) = (Vec::new(), Vec::new());
    {
        let mut speech = MonoSink::new(16_000, |block: &[f32]| {
            at_16k.extend_from_slice(block);
            Ok(())
        });
        let mut opus = MonoSink::new(OpusFile::SAMPLE_RATE, |block: &[f32]| {
            at_48k.extend_from_slice(block);
            Ok(())
        });
        decode_into(&path, &mut [&mut speech, &mut opus]).expect("the tone decodes");
    }
    assert_eq!(at_16k.len(), 40_000);
    assert_eq!(at_48k.len(), 120_000);
    // The tone survives resampling: its level away from the edges is the input's.
    let rms = |s: &[f32]| (s.iter().map(|v| v * v).sum::<f32>() / s.len() as f32).sqrt();
    let want = 12_000.0 / 32_768.0 / std::f32::consts::SQRT_2;
    assert!((rms(&at_16k[4_000..36_000]) - want).abs() < 0.01);

    let out = scratch.path().join("tone.ogg");
    let mut file = OpusFile::create(&out, 44_100).expect("create");
    for block in at_48k.chunks(1_000) {
        file.push(block).expect("push");
    }
    let rendition = file.finish().expect("finish");
    assert!(
        (rendition.duration_seconds - 2.5).abs() < 1e-9,
        "{rendition:?}"
    );
    // ffprobe's Ogg duration counts the Opus pre-skip (6.5 ms here) as audio.
    let (duration, _) = ffprobe(&out);
    assert!((duration - 2.5).abs() < 0.01, "ffprobe says {duration}");
    assert_eq!(ffmpeg_decode_errors(&out), "");
}

#[test]
fn silence_has_no_loudness_and_a_flat_waveform() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = wav(&scratch.path().join("silence.wav"), 16_000, &[0; 48_000]);
    let processed = process_file(&path, scratch.path()).expect("silence processes");
    assert_eq!(processed.loudness.integrated_lufs, None);
    assert_eq!(processed.loudness.true_peak_dbtp, None);
    assert_eq!(processed.waveform.peaks(), vec![0.0; 60]);
    for r in &processed.renditions {
        assert!((r.duration_seconds - 3.0).abs() < 1e-9, "{r:?}");
        assert_eq!(ffmpeg_decode_errors(&r.path), "", "{}", r.name);
    }
    // Too short to gate (under 400 ms): no integrated loudness, but a peak.
    let tone: Vec<i16> = (0..3_200)
        .map(|i| (8_000.0 * (i as f64 * 0.3).sin()) as i16)
        .collect();
    let path = wav(&scratch.path().join("short.wav"), 16_000, &tone);
    let processed = process_file(&path, scratch.path()).expect("short tone processes");
    assert_eq!(processed.loudness.integrated_lufs, None);
    assert!(processed.loudness.true_peak_dbtp.is_some());
}

#[test]
fn anything_but_audio_is_damaged_at_zero() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let path = scratch.path().join("text.mp3");
    std::fs::write(&path, "just some text, not audio at all\n").expect("write");
    let damage = expect_damaged(&path, "text", 0.0).expect("text is refused");
    assert!(damage.reason.contains("text"), "{damage}");
    let missing = decode_error(&scratch.path().join("missing.wav"));
    assert!(matches!(missing, Err(ProcessError::Io(_))), "{missing:?}");
}

/// Both renditions of every corpus file decode in a browser (Chromium's Web Audio) to the
/// original's length: what a listener's player gets. The page fetches each rendition from a
/// small server here and reports what it decoded back to it.
#[test]
fn renditions_play_in_a_browser() {
    use std::io::{BufRead, BufReader, Read as _, Write as _};
    use std::sync::mpsc;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(String, &'static str, Vec<u8>, f64)> = Vec::new();
    for entry in manifest() {
        let dir = scratch.path().join(&entry.file);
        std::fs::create_dir_all(&dir).expect("rendition dir");
        let processed = process_file(&entry.path(), &dir).expect("processing");
        for r in &processed.renditions {
            let bytes = std::fs::read(&r.path).expect("rendition");
            let label = format!("{} {}", entry.file, r.name);
            files.push((label, r.mime, bytes, processed.summary.duration_seconds));
        }
    }
    // Web Audio decodes without an audio device; one file after the other, each result sent
    // back as /result/<index>/<seconds or error>.
    let page = format!(
        r#"<!doctype html><script>
(async () => {{
  for (let i = 0; i < {count}; i++) {{
    let result;
    try {{
      const bytes = await (await fetch("/file/" + i)).arrayBuffer();
      const context = new OfflineAudioContext(1, 48000, 48000);
      result = (await context.decodeAudioData(bytes)).duration;
    }} catch (e) {{ result = "error " + e; }}
    await fetch("/result/" + i + "/" + encodeURIComponent(result));
  }}
}})();
</script>"#,
        count = files.len()
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = listener.local_addr().expect("address");
    let (results, received) = mpsc::channel::<(usize, String)>();
    let served: Vec<(&'static str, Vec<u8>)> = files
        .iter()
        .map(|(_, mime, bytes, _)| (*mime, bytes.clone()))
        .collect();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // The rest of the head is not needed.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let (mime, body): (&str, Vec<u8>) = match parts[..] {
                ["file", i] => {
                    let (mime, bytes) = &served[i.parse::<usize>().unwrap_or(usize::MAX)];
                    (mime, bytes.clone())
                }
                ["result", i, value] => {
                    let _ = results.send((i.parse().unwrap_or(usize::MAX), value.to_owned()));
                    ("text/plain", Vec::new())
                }
                _ => ("text/html", page.clone().into_bytes()),
            };
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
            let _ = stream.read(&mut [0; 1]);
        }
    });
    let profile = scratch.path().join("chromium-profile");
    let mut browser = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{address}/"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium runs");
    let mut decoded = vec![None; files.len()];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while decoded.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok((i, value)) if i < decoded.len() => decoded[i] = Some(value),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = browser.kill();
    let _ = browser.wait();
    let mut wrong = Vec::new();
    for ((label, _, _, seconds), result) in files.iter().zip(&decoded) {
        match result.as_deref().map(|r| (r, r.parse::<f64>())) {
            Some((_, Ok(d))) if rendition_close(d, *seconds) => {}
            other => wrong.push(format!("{label}: {other:?}, expected {seconds:.3} s")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
