//! Speech to text for Hark: OpenAI's Whisper on the CPU, offline, in pure Rust (candle).
//!
//! A [`Model`] is loaded once from a directory in CTranslate2 layout (`model.bin`, as
//! faster-whisper uses) or Hugging Face layout (`model.safetensors`), with its `config.json`
//! and `tokenizer.json`, and shared. Each recording gets a [`Transcriber`]: audio is pushed as
//! it is decoded and transcribed 30 s at a time, so a long note never sits in memory whole.
//! The [`Transcript`] has segments and words with times and confidences; word times come from
//! the cross-attention of the model's alignment heads, as in OpenAI's reference.
//!
//! ```no_run
//! # fn main() -> Result<(), hark_speech::SpeechError> {
//! let model = hark_speech::Model::load(std::path::Path::new("models/whisper"), 2)?;
//! let mut transcriber = model.transcriber(Default::default());
//! transcriber.push(&vec![0.0; 16_000])?;
//! let transcript = transcriber.finish()?;
//! # Ok(()) }
//! ```

mod bias;
mod config;
mod decode;
mod error;
mod gelu;
mod loudness;
mod mel;
mod model;
mod network;
mod rows;
mod softmax;
mod timing;
mod tokens;
mod transcribe;
mod weights;

pub use error::SpeechError;
pub use model::{Model, ModelInfo, inspect};
pub use transcribe::{Segment, TranscribeOptions, Transcriber, Transcript, Word};
pub use weights::Layout;
