//! The settings a model directory's `config.json` gives (and, for the Hugging Face layout,
//! `generation_config.json`): attention heads, the heads that align words, suppressed tokens.

use crate::SpeechError;
use serde::Deserialize;
use std::path::Path;

/// The fields Hark reads, under either layout's names.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    alignment_heads: Option<Vec<(usize, usize)>>,
    #[serde(alias = "suppress_tokens")]
    suppress_ids: Option<Vec<i64>>,
    #[serde(alias = "begin_suppress_tokens")]
    suppress_ids_begin: Option<Vec<i64>>,
    encoder_attention_heads: Option<usize>,
    decoder_attention_heads: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct Settings {
    /// (decoder layer, head) pairs whose cross-attention follows the audio closely.
    pub alignment_heads: Option<Vec<(usize, usize)>>,
    /// Tokens never to sample.
    pub suppress: Vec<u32>,
    /// Tokens not to sample first.
    pub suppress_begin: Option<Vec<u32>>,
    /// (encoder, decoder) attention heads, where stated.
    pub heads: Option<(usize, usize)>,
}

pub(crate) fn read(dir: &Path) -> Result<Settings, SpeechError> {
    let config = parse(&dir.join("config.json"))?.ok_or_else(|| SpeechError::Missing {
        path: dir.join("config.json"),
    })?;
    let generation = parse(&dir.join("generation_config.json"))?.unwrap_or_default();
    let ids = |ids: Option<Vec<i64>>| {
        ids.map(|ids| {
            ids.into_iter()
                .filter_map(|id| u32::try_from(id).ok())
                .collect::<Vec<_>>()
        })
    };
    Ok(Settings {
        alignment_heads: config.alignment_heads.or(generation.alignment_heads),
        suppress: ids(config.suppress_ids.or(generation.suppress_ids)).unwrap_or_default(),
        suppress_begin: ids(config.suppress_ids_begin.or(generation.suppress_ids_begin)),
        heads: config
            .encoder_attention_heads
            .zip(config.decoder_attention_heads),
    })
}

/// The file's fields, or `None` when it does not exist.
fn parse(path: &Path) -> Result<Option<ConfigFile>, SpeechError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SpeechError::invalid(path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| SpeechError::invalid(path, e))
}
