//! Checking a model directory before it is installed or loaded.

use hark_speech::{Layout, SpeechError, inspect};
use std::path::Path;

fn copy_model(to: &Path, files: &[&str]) {
    let from = hark_testkit::speech_model_dir();
    for file in files {
        std::fs::copy(from.join(file), to.join(file)).expect("copy a model file");
    }
}

#[test]
fn inspect_names_the_model() {
    let info = inspect(hark_testkit::speech_model_dir()).expect("a valid model");
    assert_eq!(info.name, "whisper-tiny.en");
    assert_eq!(info.layout, Layout::Ct2);
    assert!(!info.multilingual);
}

#[test]
fn inspect_refuses_a_directory_without_a_tokenizer() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_model(dir.path(), &["config.json", "model.bin"]);
    match inspect(dir.path()) {
        Err(SpeechError::Missing { path }) => assert!(path.ends_with("tokenizer.json"), "{path:?}"),
        other => panic!("expected tokenizer.json missing, got {other:?}"),
    }
}

#[test]
fn inspect_refuses_a_directory_without_weights_or_config() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_model(dir.path(), &["config.json", "tokenizer.json"]);
    let error = inspect(dir.path()).expect_err("no weights");
    assert!(
        error.is_model_error() && error.to_string().contains("model.bin"),
        "{error}"
    );

    std::fs::remove_file(dir.path().join("config.json")).expect("remove config.json");
    match inspect(dir.path()) {
        Err(SpeechError::Missing { path }) => assert!(path.ends_with("config.json"), "{path:?}"),
        other => panic!("expected config.json missing, got {other:?}"),
    }
}

#[test]
fn inspect_refuses_truncated_weights() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_model(dir.path(), &["config.json", "tokenizer.json"]);
    let weights = std::fs::read(hark_testkit::speech_model_dir().join("model.bin")).expect("read");
    std::fs::write(dir.path().join("model.bin"), &weights[..weights.len() / 2]).expect("write");
    match inspect(dir.path()) {
        Err(SpeechError::Invalid { path, reason }) => {
            assert!(path.ends_with("model.bin"), "{path:?}");
            assert!(reason.contains("truncated"), "{reason}");
        }
        other => panic!("expected invalid weights, got {other:?}"),
    }
}

#[test]
fn inspect_refuses_a_tokenizer_of_another_model() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_model(dir.path(), &["config.json", "model.bin"]);
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": {}}").expect("write");
    let error = inspect(dir.path()).expect_err("a broken tokenizer");
    assert!(
        matches!(&error, SpeechError::Invalid { path, .. } if path.ends_with("tokenizer.json")),
        "{error}"
    );
}
