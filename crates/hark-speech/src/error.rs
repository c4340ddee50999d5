use std::path::PathBuf;

/// Why a model could not be used or a transcription did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// A file the model needs is not there.
    #[error("model file {} is missing", path.display())]
    Missing { path: PathBuf },
    /// A model file is there but cannot be used.
    #[error("model file {} is invalid: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// The language asked for is not one the model transcribes.
    #[error("language {language:?} is not supported by {model}")]
    UnsupportedLanguage { language: String, model: String },
    /// The caller's cancel flag was raised.
    #[error("transcription cancelled")]
    Cancelled,
    /// The network failed while running.
    #[error("inference failed: {0}")]
    Inference(#[from] candle_core::Error),
}

impl SpeechError {
    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Self::Invalid {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Whether the model directory lacks a file or holds an unusable one.
    pub fn is_model_error(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::Invalid { .. })
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }
}
