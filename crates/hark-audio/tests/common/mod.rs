//! Finds (or makes) the shared audio corpus the tests use as their oracle.
//!
//! The corpus is real audio made by `tests/corpus/make_corpus.sh` (espeak-ng, sox, ffmpeg) with
//! ffprobe's view of every file in `manifest.tsv`. It lives outside the repository because it is
//! generated; `HARK_CORPUS` points elsewhere if wanted.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One good file as ffprobe sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: String,
    pub format_name: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_seconds: f64,
    pub decoded_seconds: f64,
}

/// The corpus directory, generated on first use if missing.
pub fn corpus_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = manifest_dir.join("../..");
        let dir = std::env::var_os("HARK_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target/corpus"));
        if !dir.join("manifest.tsv").is_file() {
            generate(&workspace.join("tests/corpus/make_corpus.sh"), &dir);
        }
        dir
    })
}

/// Runs the generator into a scratch directory and renames it into place, so that an interrupted
/// run never leaves a half-made corpus behind.
fn generate(script: &Path, dir: &Path) {
    assert!(
        script.is_file(),
        "no corpus at {} and no generator at {}",
        dir.display(),
        script.display()
    );
    let scratch = dir.with_extension(format!("tmp{}", std::process::id()));
    let status = Command::new("bash")
        .arg(script)
        .arg(&scratch)
        .status()
        .expect("run make_corpus.sh");
    assert!(status.success(), "make_corpus.sh failed: {status}");
    if std::fs::rename(&scratch, dir).is_err() {
        // Another process made it meanwhile; theirs is as good as ours.
        let _ = std::fs::remove_dir_all(&scratch);
    }
    assert!(
        dir.join("manifest.tsv").is_file(),
        "corpus generation left no manifest"
    );
}

/// The good files listed in the manifest.
pub fn manifest() -> Vec<Entry> {
    let text =
        std::fs::read_to_string(corpus_dir().join("manifest.tsv")).expect("read manifest.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert!(f.len() >= 8, "short manifest line: {line}");
            let num = |i: usize| {
                f[i].parse::<f64>()
                    .unwrap_or_else(|e| panic!("{line}: column {i}: {e}"))
            };
            Entry {
                file: f[0].to_owned(),
                format_name: f[1].to_owned(),
                codec: f[2].to_owned(),
                sample_rate: num(3) as u32,
                channels: num(4) as u16,
                duration_seconds: num(5),
                decoded_seconds: num(7),
            }
        })
        .collect()
}

/// The files in `bad/`, except its README.
pub fn bad_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join("bad"))
        .expect("read bad/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README"))
        .collect();
    files.sort();
    files
}
