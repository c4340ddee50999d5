//! Variants the corpus lacks but clients send: browser-style WebM (no Duration), RF64,
//! tagged MP3s, fragmented MP4, and formats we must name when refusing them. Made from a corpus
//! file with ffmpeg; skipped when ffmpeg is missing.

use hark_audio::{Format, ProbeError, probe_file};
use hark_testkit::corpus_file;
use lofty::config::WriteOptions;
use lofty::tag::{ItemKey, Tag, TagExt, TagType};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Source speech: 4.875125 s of 16 kHz mono.
const SOURCE: &str = "t1_pcm16_16k.wav";
const SOURCE_SECONDS: f64 = 4.875125;

/// Runs ffmpeg on the source speech; `None` if ffmpeg is unavailable or refuses.
fn ffmpeg(dir: &Path, name: &str, args: &[&str], piped: bool) -> Option<PathBuf> {
    let out = dir.join(name);
    let src = corpus_file(SOURCE);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(&src)
        .args(args);
    if piped {
        // Writing to a pipe is what a browser does: no seeking back to fill in sizes/durations.
        cmd.arg("-");
        let output = cmd.output().ok()?;
        output.status.success().then_some(())?;
        std::fs::write(&out, output.stdout).ok()?;
    } else {
        cmd.arg(&out);
        cmd.status().ok()?.success().then_some(())?;
    }
    Some(out)
}

/// ffprobe's container duration, the other acceptable answer.
fn ffprobe_seconds(path: &Path) -> Option<f64> {
    let args = [
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
    ];
    let out = Command::new("ffprobe").args(args).arg(path).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn has_ffmpeg() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn accepted_variants() {
    if !has_ffmpeg() {
        eprintln!("ffmpeg not found; skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // (name, ffmpeg args, piped, format, codec)
    let cases: [(&str, &[&str], bool, Format, &str); 6] = [
        (
            "browser.webm",
            &["-ar", "48000", "-c:a", "libopus", "-f", "webm"],
            true,
            Format::Webm,
            "opus",
        ),
        (
            "rf64.wav",
            &["-c:a", "pcm_s16le", "-rf64", "always"],
            false,
            Format::Wav,
            "pcm_s16le",
        ),
        (
            "piped.wav",
            &["-c:a", "pcm_s16le", "-f", "wav"],
            true,
            Format::Wav,
            "pcm_s16le",
        ),
        (
            "mulaw.wav",
            &["-c:a", "pcm_mulaw"],
            false,
            Format::Wav,
            "pcm_mulaw",
        ),
        ("flac.ogg", &["-c:a", "flac"], false, Format::Ogg, "flac"),
        (
            "frag.m4a",
            &["-c:a", "aac", "-movflags", "frag_keyframe+empty_moov"],
            false,
            Format::Mp4,
            "aac",
        ),
    ];
    let mut failures = Vec::new();
    for (name, args, piped, format, codec) in cases {
        let Some(path) = ffmpeg(dir.path(), name, args, piped) else {
            eprintln!("ffmpeg could not make {name}; skipped");
            continue;
        };
        match probe_file(&path) {
            Ok(info) => {
                println!("{name}: {:.6} s", info.duration_seconds);
                // Within 20 ms of the true length or of ffprobe's (fragmented MP4 has no edit
                // list, so priming counts there, as it does for ffprobe).
                let d = info.duration_seconds;
                let near = |x: f64| (d - x).abs() <= 0.020;
                let ok_len = near(SOURCE_SECONDS) || ffprobe_seconds(&path).is_some_and(near);
                if info.format != format || info.codec != codec || !ok_len {
                    failures.push(format!("{name}: {info:?}"));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn refused_variants_are_named() {
    if !has_ffmpeg() {
        eprintln!("ffmpeg not found; skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "vorbis.webm",
            &["-c:a", "libvorbis"],
            "WebM/Matroska with codec vorbis",
        ),
        ("speex.ogg", &["-c:a", "speex"], "Ogg with codec speex"),
        ("audio.mp2", &["-c:a", "mp2"], "MPEG audio layer II"),
        ("raw.aac", &["-c:a", "aac", "-f", "adts"], "ADTS"),
    ];
    for (name, args, want) in cases {
        let Some(path) = ffmpeg(dir.path(), name, args, false) else {
            eprintln!("ffmpeg could not make {name}; skipped");
            continue;
        };
        match probe_file(&path) {
            Err(ProbeError::Unsupported { detected }) => {
                assert!(
                    detected.contains(want),
                    "{name}: {detected:?} lacks {want:?}"
                );
            }
            other => panic!("{name}: expected Unsupported, got {other:?}"),
        }
    }
}

/// A big ID3v2 tag (cover art, lyrics) pushes the first MP3 frame far from the start; the tags
/// must be read and the audio found behind them.
#[test]
fn tagged_mp3_with_large_id3v2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tagged.mp3");
    std::fs::copy(corpus_file("t5_cbr64.mp3"), &path).expect("copy");
    let before = probe_file(&path).expect("probe untagged");
    let mut tag = Tag::new(TagType::Id3v2);
    tag.insert_text(ItemKey::TrackTitle, "Delivery".into());
    tag.insert_text(ItemKey::TrackArtist, "Driver".into());
    tag.insert_text(ItemKey::AlbumTitle, "Voice notes".into());
    tag.insert_text(ItemKey::RecordingDate, "2024-05-01".into());
    tag.insert_text(ItemKey::Genre, "Speech".into());
    tag.insert_text(ItemKey::Comment, "x".repeat(100_000));
    tag.save_to_path(&path, WriteOptions::default())
        .expect("write tag");
    let after = probe_file(&path).expect("probe tagged");
    assert_eq!(after.tags.title.as_deref(), Some("Delivery"));
    assert_eq!(after.tags.artist.as_deref(), Some("Driver"));
    assert_eq!(after.tags.album.as_deref(), Some("Voice notes"));
    assert_eq!(after.tags.date.as_deref(), Some("2024-05-01"));
    assert_eq!(after.tags.genre.as_deref(), Some("Speech"));
    assert_eq!(after.tags.comment.map(|c| c.len()), Some(100_000));
    assert_eq!((after.format, after.codec.as_str()), (Format::Mp3, "mp3"));
    assert!((after.duration_seconds - before.duration_seconds).abs() < 1e-9);
    assert!(
        after.bitrate > before.bitrate,
        "the tag counts towards the file's bitrate"
    );
}
