//! Hark's transcription against faster-whisper (CTranslate2, int8 and float32) on the same
//! audio and the same Whisper tiny.en weights, both greedy with word timestamps on two threads:
//! real-time factors (seconds of work per second of audio), their ratio, and word error rates.
//! Two workloads of espeak-ng speech: five short notes (5 to 15 s) and one 10-minute note.
//!
//! `cargo bench -p hark-speech --bench speech` (faster-whisper is installed from PyPI into
//! target/bench-venv on first run; needs python3 with venv, espeak-ng and sox).

use hark_speech::{Model, TranscribeOptions};
use hark_testkit::speech::{SAMPLE_RATE, silence, spoken, word_error_rate};
use hark_testkit::{pcm16_wav, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const THREADS: usize = 2;

const SHORT_NOTES: [&str; 5] = [
    "Hello, this is your driver. I am outside the building with your package.",
    "Please leave the parcel at the front door if nobody answers the bell.",
    "The meeting has been moved to Thursday afternoon. Please tell the others and bring the \
     report from last week.",
    "I will be about ten minutes late because of heavy traffic on the bridge.",
    "Can you call me back when you have a moment? It is about the invoice we sent on Monday, \
     which still shows the old address.",
];

const LONG_NOTE_SENTENCES: [&str; 12] = [
    "The first delivery arrives early on Monday morning.",
    "Remember to water the tomatoes in the greenhouse.",
    "My brother is flying to Canada next week.",
    "The library closes at six in the evening.",
    "Please bring a warm jacket because it will be cold.",
    "Our neighbours painted their fence bright green.",
    "The children built a castle of sand on the beach.",
    "Do not forget the umbrella when you go out.",
    "A small bakery opened around the corner.",
    "The train to the airport leaves every hour.",
    "We should plant more roses along the path.",
    "The old bridge was repaired last summer.",
];

struct Note {
    text: String,
    audio: Vec<f32>,
    wav: PathBuf,
}

impl Note {
    fn seconds(&self) -> f64 {
        self.audio.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

fn note(dir: &Path, name: &str, text: String, audio: Vec<f32>) -> Note {
    let pcm: Vec<i16> = audio
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)
        .collect();
    let wav = dir.join(format!("{name}.wav"));
    std::fs::write(&wav, pcm16_wav(SAMPLE_RATE, &pcm)).expect("write a WAV");
    Note { text, audio, wav }
}

/// The 10-minute note: the sentences over and over, with a pause after each.
fn long_note(dir: &Path) -> Note {
    let mut text = Vec::new();
    let mut audio = Vec::new();
    let sentences: Vec<(&str, Vec<f32>)> = LONG_NOTE_SENTENCES
        .iter()
        .map(|s| (*s, spoken(s)))
        .collect();
    'fill: loop {
        for (sentence, speech) in &sentences {
            if audio.len() + speech.len() > 600 * SAMPLE_RATE as usize {
                break 'fill;
            }
            text.push(*sentence);
            audio.extend(speech);
            audio.extend(silence(0.8));
        }
    }
    note(dir, "long", text.join(" "), audio)
}

/// One transcription through Hark: seconds taken and the text.
fn hark(model: &Model, note: &Note) -> (f64, String) {
    let start = Instant::now();
    let mut transcriber = model.transcriber(TranscribeOptions::default());
    // As a decoder hands audio over: a second at a time.
    for piece in note.audio.chunks(SAMPLE_RATE as usize) {
        transcriber.push(piece).expect("transcribing");
    }
    let transcript = transcriber.finish().expect("transcribing");
    let text: Vec<String> = transcript.segments.into_iter().map(|s| s.text).collect();
    (start.elapsed().as_secs_f64(), text.join(" "))
}

/// The Python of a virtual environment with faster-whisper, made on first use.
fn faster_whisper_python() -> PathBuf {
    let venv = workspace_root().join("target/bench-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import faster_whisper"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("faster-whisper")
            .status()
            .expect("pip runs");
        assert!(status.success(), "pip install faster-whisper failed");
    }
    python
}

/// Every note through faster-whisper at `compute_type`: seconds and text per note.
fn faster_whisper(
    python: &Path,
    model_dir: &Path,
    compute_type: &str,
    notes: &[&Note],
) -> Vec<(f64, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/run_faster_whisper.py");
    let output = Command::new(python)
        .arg(script)
        .arg(model_dir)
        .arg(compute_type)
        .args(notes.iter().map(|n| &n.wav))
        .output()
        .expect("run_faster_whisper.py runs");
    assert!(
        output.status.success(),
        "run_faster_whisper.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let result: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (
                result["seconds"].as_f64().expect("seconds"),
                result["text"].as_str().expect("text").to_owned(),
            )
        })
        .collect()
}

/// Real-time factor and word error rate of a workload's results.
fn score(notes: &[&Note], results: &[(f64, String)]) -> (f64, f64) {
    let seconds: f64 = notes.iter().map(|n| n.seconds()).sum();
    let work: f64 = results.iter().map(|(s, _)| s).sum();
    let reference: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
    let hypothesis: Vec<&str> = results.iter().map(|(_, t)| t.as_str()).collect();
    (
        work / seconds,
        word_error_rate(&reference.join(" "), &hypothesis.join(" ")),
    )
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: nothing to time then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = workspace_root().join("target/bench-speech");
    std::fs::create_dir_all(&dir).expect("create target/bench-speech");
    let model_dir = hark_testkit::speech_model_dir();
    let short: Vec<Note> = SHORT_NOTES
        .iter()
        .enumerate()
        .map(|(i, text)| {
            note(
                &dir,
                &format!("short-{i}"),
                (*text).to_owned(),
                spoken(text),
            )
        })
        .collect();
    let long = long_note(&dir);
    let workloads: [(&str, Vec<&Note>); 2] = [
        ("5 short notes", short.iter().collect()),
        ("10-minute note", vec![&long]),
    ];

    let model = Model::load(model_dir, THREADS).expect("the model loads");
    hark(&model, &short[0]); // warm-up
    let python = faster_whisper_python();
    println!(
        "model {}, {THREADS} threads, greedy, word timestamps",
        model.name()
    );
    println!(
        "{:<16} {:>7} {:>9} {:>12} {:>11} {:>8} {:>10} {:>9}",
        "workload",
        "audio s",
        "Hark RTF",
        "fw int8 RTF",
        "fw f32 RTF",
        "int8/Hark",
        "Hark WER",
        "fw int8 WER"
    );
    for (name, notes) in &workloads {
        let ours: Vec<_> = notes.iter().map(|n| hark(&model, n)).collect();
        let int8 = faster_whisper(&python, model_dir, "int8", notes);
        let f32 = faster_whisper(&python, model_dir, "float32", notes);
        let (ours_rtf, ours_wer) = score(notes, &ours);
        let (int8_rtf, int8_wer) = score(notes, &int8);
        let (f32_rtf, f32_wer) = score(notes, &f32);
        let seconds: f64 = notes.iter().map(|n| n.seconds()).sum();
        println!(
            "{name:<16} {seconds:>7.1} {ours_rtf:>9.4} {int8_rtf:>12.4} {f32_rtf:>11.4} {:>8.2}x {:>9.1}% {:>9.1}%   (fw f32 WER {:.1}%)",
            int8_rtf / ours_rtf,
            ours_wer * 100.0,
            int8_wer * 100.0,
            f32_wer * 100.0,
        );
    }
}
