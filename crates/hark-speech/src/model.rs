//! A Whisper model loaded from a directory, and the cheap check `inspect` makes of one.

use crate::SpeechError;
use crate::config::{self, Settings};
use crate::mel::MelSpectrogram;
use crate::network::Network;
use crate::tokens::Tokens;
use crate::transcribe::{TranscribeOptions, Transcriber};
use crate::weights::{self, Dims, Layout};
use std::path::{Path, PathBuf};

/// Timestamp tokens: 0.00 s to 30.00 s.
const TIMESTAMPS: u32 = 1501;

/// What `inspect` finds in a model directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// The published model these dimensions match, such as `whisper-tiny.en`.
    pub name: String,
    pub layout: Layout,
    /// Whether it transcribes many languages, rather than English only (`.en`).
    pub multilingual: bool,
}

/// A Whisper model ready to transcribe: weights, vocabulary and a pool of `threads` threads
/// that all its inference runs on. Share it in an `Arc`; each transcription borrows it.
pub struct Model {
    pub(crate) info: ModelInfo,
    pub(crate) dims: Dims,
    pub(crate) network: Network,
    pub(crate) tokens: Tokens,
    pub(crate) mel: MelSpectrogram,
    /// (decoder layer, head) pairs whose cross-attention aligns words with the audio.
    pub(crate) alignment_heads: Vec<(usize, usize)>,
    pub(crate) suppress: Vec<u32>,
    pub(crate) suppress_begin: Vec<u32>,
    pool: rayon::ThreadPool,
}

/// What a directory holds once every file has passed its check.
struct Checked {
    layout: Layout,
    weights: PathBuf,
    settings: Settings,
    tokens: Tokens,
    dims: Dims,
}

fn check(dir: &Path) -> Result<Checked, SpeechError> {
    let settings = config::read(dir)?;
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(SpeechError::Missing { path: tokenizer });
    }
    let tokens = Tokens::load(&tokenizer).map_err(|e| SpeechError::invalid(&tokenizer, e))?;
    let layout = Layout::detect(dir).ok_or_else(|| {
        SpeechError::invalid(
            dir,
            "holds neither model.bin (CTranslate2) nor model.safetensors (Hugging Face)",
        )
    })?;
    let weights = weights::weights_path(dir, layout);
    let table =
        weights::table(layout, &weights).map_err(|e| SpeechError::invalid(&weights, e.0))?;
    let dims = Dims::infer(&table, settings.heads)
        .and_then(|dims| dims.check(&table).map(|()| dims))
        .map_err(|e| SpeechError::invalid(&weights, e.0))?;
    if tokens.timestamp_begin + TIMESTAMPS != dims.vocab as u32 {
        return Err(SpeechError::invalid(
            &tokenizer,
            format!(
                "its vocabulary (timestamps from {}) does not match the weights' {} tokens",
                tokens.timestamp_begin, dims.vocab
            ),
        ));
    }
    if let Some(&(layer, head)) = settings
        .alignment_heads
        .iter()
        .flatten()
        .find(|&&(layer, head)| layer >= dims.text_layers || head >= dims.text_heads)
    {
        return Err(SpeechError::invalid(
            dir.join("config.json"),
            format!("alignment head ({layer}, {head}) is not in the decoder"),
        ));
    }
    Ok(Checked {
        layout,
        weights,
        settings,
        tokens,
        dims,
    })
}

/// Checks a model directory without loading its weights: `config.json` and `tokenizer.json`
/// parse, and the weights file's table lists every tensor the network needs, in the right
/// shape, with its data inside the file.
pub fn inspect(dir: &Path) -> Result<ModelInfo, SpeechError> {
    let checked = check(dir)?;
    Ok(ModelInfo {
        name: checked.dims.name(),
        layout: checked.layout,
        multilingual: checked.dims.multilingual(),
    })
}

impl Model {
    /// Loads the model in `dir` (CTranslate2 or Hugging Face layout); inference will use at
    /// most `threads` threads (at least one).
    pub fn load(dir: &Path, threads: usize) -> Result<Self, SpeechError> {
        let checked = check(dir)?;
        let tensors = weights::load(checked.layout, &checked.weights)
            .map_err(|e| SpeechError::invalid(&checked.weights, e.0))?;
        let network = Network::load(tensors, &checked.dims)?;
        let dims = checked.dims;
        let tokens = checked.tokens;
        let settings = checked.settings;
        // OpenAI's default without a list (or with an empty one, which would time no word):
        // every head of the decoder's second half.
        let alignment_heads = settings
            .alignment_heads
            .filter(|heads| !heads.is_empty())
            .unwrap_or_else(|| {
                (dims.text_layers / 2..dims.text_layers)
                    .flat_map(|layer| (0..dims.text_heads).map(move |head| (layer, head)))
                    .collect()
            });
        let mut suppress = settings.suppress;
        // Tokens that steer the decoder are never transcribed text (as OpenAI suppresses them).
        suppress.extend([
            tokens.transcribe,
            tokens.translate,
            tokens.sot,
            tokens.sot_prev,
        ]);
        suppress.extend(tokens.sot_lm);
        suppress.extend(tokens.no_speech);
        let space = tokens.encode(" ");
        let suppress_begin = settings
            .suppress_begin
            .unwrap_or_else(|| space.into_iter().chain([tokens.eot]).collect());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("hark-speech-{i}"))
            .build()
            .map_err(|e| candle_core::Error::Msg(format!("starting inference threads: {e}")))?;
        Ok(Self {
            info: ModelInfo {
                name: dims.name(),
                layout: checked.layout,
                multilingual: dims.multilingual(),
            },
            mel: MelSpectrogram::new(dims.n_mels),
            dims,
            network,
            tokens,
            alignment_heads,
            suppress,
            suppress_begin,
            pool,
        })
    }

    /// The published model this is, such as `whisper-tiny.en`.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// A transcription of one recording, fed with `push` and ended with `finish`.
    pub fn transcriber(&self, options: TranscribeOptions) -> Transcriber<'_> {
        Transcriber::new(self, options)
    }

    /// Runs `work` on the model's threads.
    pub(crate) fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool.install(work)
    }
}
