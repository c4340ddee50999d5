//! Whisper's vocabulary: text tokens from `tokenizer.json`, the special tokens that steer the
//! decoder, and the 1501 timestamp tokens that follow them (0.00 s to 30.00 s in 20 ms steps).

use std::path::Path;
use tokenizers::Tokenizer;

/// Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Seconds per timestamp token.
pub(crate) const TIME_PRECISION: f64 = 0.02;

pub(crate) struct Tokens {
    tokenizer: Tokenizer,
    pub eot: u32,
    pub sot: u32,
    pub transcribe: u32,
    pub translate: u32,
    pub sot_prev: u32,
    pub sot_lm: Option<u32>,
    pub no_speech: Option<u32>,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    /// Language codes and their tokens, in the vocabulary's order.
    pub languages: Vec<(String, u32)>,
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Self, String> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| e.to_string())?;
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| format!("has no {token} token"))
        };
        let sot = id("<|startoftranscript|>")?;
        let translate = id("<|translate|>")?;
        let no_timestamps = id("<|notimestamps|>")?;
        let languages = (sot + 1..translate)
            .filter_map(|token| {
                let text = tokenizer.id_to_token(token)?;
                let code = text.strip_prefix("<|")?.strip_suffix("|>")?;
                Some((code.to_owned(), token))
            })
            .collect();
        Ok(Self {
            eot: id("<|endoftext|>")?,
            sot,
            transcribe: id("<|transcribe|>")?,
            translate,
            sot_prev: id("<|startofprev|>")?,
            sot_lm: id("<|startoflm|>").ok(),
            no_speech: id("<|nospeech|>").or_else(|_| id("<|nocaptions|>")).ok(),
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
            languages,
            tokenizer,
        })
    }

    pub fn language(&self, code: &str) -> Option<u32> {
        self.languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|&(_, token)| token)
    }

    /// The tokens of plain text, without any special token.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenizer
            .encode(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// The text of the text tokens among `tokens`.
    pub fn decode(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens.iter().copied().filter(|&t| t < self.eot).collect();
        self.tokenizer.decode(&text, false).unwrap_or_default()
    }

    pub fn is_timestamp(&self, token: u32) -> bool {
        token >= self.timestamp_begin
    }

    /// Seconds into the window that a timestamp token stands for.
    pub fn seconds(&self, timestamp: u32) -> f64 {
        f64::from(timestamp - self.timestamp_begin) * TIME_PRECISION
    }

    /// Splits text tokens into words as OpenAI's tokenizer does: a word starts at a leading
    /// space or a punctuation mark; for languages written without spaces, every character that
    /// decodes whole is a word. Returns each word's text and tokens.
    pub fn split_words(&self, tokens: &[u32], spaced: bool) -> Vec<(String, Vec<u32>)> {
        let pieces = self.split_on_unicode(tokens);
        if !spaced {
            return pieces;
        }
        let mut words: Vec<(String, Vec<u32>)> = Vec::new();
        for (piece, piece_tokens) in pieces {
            let special = piece_tokens[0] >= self.eot;
            // As Python's `piece.strip() in string.punctuation`, which an empty string passes.
            let starts_word = piece.starts_with(' ') || PUNCTUATION.contains(piece.trim());
            match words.last_mut() {
                Some((word, word_tokens)) if !special && !starts_word => {
                    word.push_str(&piece);
                    word_tokens.extend(piece_tokens);
                }
                _ => words.push((piece, piece_tokens)),
            }
        }
        words
    }

    /// Groups tokens so that each group decodes to whole characters (a character may span
    /// tokens when its UTF-8 bytes do).
    fn split_on_unicode(&self, tokens: &[u32]) -> Vec<(String, Vec<u32>)> {
        let mut pieces = Vec::new();
        let mut current = Vec::new();
        for &token in tokens {
            current.push(token);
            let text = self.tokenizer.decode(&current, false).unwrap_or_default();
            if !text.contains('\u{fffd}') {
                pieces.push((text, std::mem::take(&mut current)));
            }
        }
        if !current.is_empty() {
            let text = self.tokenizer.decode(&current, false).unwrap_or_default();
            pieces.push((text, current));
        }
        pieces
    }
}
