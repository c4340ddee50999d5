//! Reading a Whisper model's weights from either layout into one set of names (CTranslate2's),
//! and telling the network's dimensions from their shapes.

mod ct2;
mod safetensors;

use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How a model directory stores its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// CTranslate2, as faster-whisper uses: `model.bin`.
    Ct2,
    /// Hugging Face: `model.safetensors`.
    SafeTensors,
}

impl Layout {
    pub fn weights_file(self) -> &'static str {
        match self {
            Self::Ct2 => "model.bin",
            Self::SafeTensors => "model.safetensors",
        }
    }

    /// The layout of the weights in `dir`, from which file is there.
    pub(crate) fn detect(dir: &Path) -> Option<Self> {
        [Self::Ct2, Self::SafeTensors]
            .into_iter()
            .find(|layout| dir.join(layout.weights_file()).is_file())
    }
}

/// What is wrong with a weights file; the caller names the file.
#[derive(Debug)]
pub(crate) struct WeightError(pub String);

impl WeightError {
    fn io(error: std::io::Error) -> Self {
        Self(error.to_string())
    }
}

/// The weights' shapes under the network's names, and the file's integer settings.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub shapes: BTreeMap<String, Vec<usize>>,
    pub settings: HashMap<String, i64>,
}

/// Reads the table of the weights file without its data.
pub(crate) fn table(layout: Layout, path: &Path) -> Result<Table, WeightError> {
    match layout {
        Layout::Ct2 => ct2::table(path),
        Layout::SafeTensors => safetensors::table(path),
    }
}

/// Reads every weight as float32 under the network's names.
pub(crate) fn load(layout: Layout, path: &Path) -> Result<HashMap<String, Tensor>, WeightError> {
    match layout {
        Layout::Ct2 => ct2::load(path),
        Layout::SafeTensors => safetensors::load(path),
    }
}

/// The sizes of a Whisper network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub n_mels: usize,
    pub d_model: usize,
    pub audio_ctx: usize,
    pub audio_heads: usize,
    pub audio_layers: usize,
    pub text_ctx: usize,
    pub text_heads: usize,
    pub text_layers: usize,
    pub vocab: usize,
}

/// Whisper's attention heads are 64 wide in every published size.
const HEAD_WIDTH: usize = 64;

impl Dims {
    /// The dimensions the weights' shapes imply. `heads` gives the head counts (encoder,
    /// decoder) where the configuration states them; CTranslate2 files store them as settings.
    pub fn infer(table: &Table, heads: Option<(usize, usize)>) -> Result<Self, WeightError> {
        let shape = |name: &str| {
            table
                .shapes
                .get(name)
                .ok_or_else(|| WeightError(format!("no tensor {name}")))
        };
        let dim = |name: &str, axis: usize| -> Result<usize, WeightError> {
            shape(name)?
                .get(axis)
                .copied()
                .ok_or_else(|| WeightError(format!("{name} has too few dimensions")))
        };
        let layers = |stack: &str| {
            (0..)
                .take_while(|i| {
                    table
                        .shapes
                        .contains_key(&format!("{stack}/layer_{i}/ffn/linear_0/weight"))
                })
                .count()
        };
        let d_model = dim("encoder/conv1/weight", 0)?;
        let setting = |name: &str| {
            table
                .settings
                .get(name)
                .and_then(|&n| usize::try_from(n).ok())
        };
        let (audio_heads, text_heads) = heads.unwrap_or_else(|| {
            (
                setting("encoder/num_heads").unwrap_or(d_model / HEAD_WIDTH),
                setting("decoder/num_heads").unwrap_or(d_model / HEAD_WIDTH),
            )
        });
        let dims = Self {
            n_mels: dim("encoder/conv1/weight", 1)?,
            d_model,
            audio_ctx: dim("encoder/position_encodings/encodings", 0)?,
            audio_heads,
            audio_layers: layers("encoder"),
            text_ctx: dim("decoder/position_encodings/encodings", 0)?,
            text_heads,
            text_layers: layers("decoder"),
            vocab: dim("decoder/embeddings/weight", 0)?,
        };
        if dims.audio_layers == 0 || dims.text_layers == 0 {
            return Err(WeightError("no encoder or decoder layers".into()));
        }
        if audio_heads == 0 || text_heads == 0 || d_model % audio_heads + d_model % text_heads != 0
        {
            return Err(WeightError(format!(
                "{audio_heads}/{text_heads} heads do not divide width {d_model}"
            )));
        }
        Ok(dims)
    }

    /// Every weight the network loads, with its shape.
    pub fn expected(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.d_model;
        let mut expected = vec![
            ("encoder/conv1/weight".to_owned(), vec![d, self.n_mels, 3]),
            ("encoder/conv1/bias".to_owned(), vec![d]),
            ("encoder/conv2/weight".to_owned(), vec![d, d, 3]),
            ("encoder/conv2/bias".to_owned(), vec![d]),
            (
                "encoder/position_encodings/encodings".to_owned(),
                vec![self.audio_ctx, d],
            ),
            ("decoder/embeddings/weight".to_owned(), vec![self.vocab, d]),
            (
                "decoder/position_encodings/encodings".to_owned(),
                vec![self.text_ctx, d],
            ),
        ];
        let mut linear = |name: String, rows: usize, cols: usize| {
            expected.push((format!("{name}/weight"), vec![rows, cols]));
            expected.push((format!("{name}/bias"), vec![rows]));
        };
        for (stack, layers) in [
            ("encoder", self.audio_layers),
            ("decoder", self.text_layers),
        ] {
            for i in 0..layers {
                let layer = format!("{stack}/layer_{i}");
                linear(format!("{layer}/self_attention/linear_0"), 3 * d, d);
                linear(format!("{layer}/self_attention/linear_1"), d, d);
                linear(format!("{layer}/ffn/linear_0"), 4 * d, d);
                linear(format!("{layer}/ffn/linear_1"), d, 4 * d);
                if stack == "decoder" {
                    linear(format!("{layer}/attention/linear_0"), d, d);
                    linear(format!("{layer}/attention/linear_1"), 2 * d, d);
                    linear(format!("{layer}/attention/linear_2"), d, d);
                }
            }
        }
        for (stack, layers) in [
            ("encoder", self.audio_layers),
            ("decoder", self.text_layers),
        ] {
            let mut norms = vec![format!("{stack}/layer_norm")];
            for i in 0..layers {
                norms.push(format!("{stack}/layer_{i}/self_attention/layer_norm"));
                norms.push(format!("{stack}/layer_{i}/ffn/layer_norm"));
                if stack == "decoder" {
                    norms.push(format!("{stack}/layer_{i}/attention/layer_norm"));
                }
            }
            for norm in norms {
                expected.push((format!("{norm}/gamma"), vec![d]));
                expected.push((format!("{norm}/beta"), vec![d]));
            }
        }
        expected
    }

    /// Checks that the table has every weight the network loads, in its shape.
    pub fn check(&self, table: &Table) -> Result<(), WeightError> {
        for (name, shape) in self.expected() {
            match table.shapes.get(&name) {
                None => return Err(WeightError(format!("no tensor {name}"))),
                Some(found) if *found != shape => {
                    return Err(WeightError(format!(
                        "{name} has shape {found:?}, expected {shape:?}"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Models trained on many languages have a larger vocabulary (language tokens).
    pub fn multilingual(&self) -> bool {
        self.vocab >= 51865
    }

    /// The published name these dimensions match, such as `whisper-tiny.en`.
    pub fn name(&self) -> String {
        let size = match (self.d_model, self.text_layers) {
            (384, _) => "tiny".to_owned(),
            (512, _) => "base".to_owned(),
            (768, _) => "small".to_owned(),
            (1024, _) => "medium".to_owned(),
            (1280, 4) => "large-v3-turbo".to_owned(),
            (1280, _) if self.n_mels == 128 => "large-v3".to_owned(),
            (1280, _) => "large".to_owned(),
            (d, layers) => format!("{d}x{layers}"),
        };
        let suffix = if self.multilingual() { "" } else { ".en" };
        format!("whisper-{size}{suffix}")
    }
}

/// The weights file of `dir` in `layout`.
pub(crate) fn weights_path(dir: &Path, layout: Layout) -> PathBuf {
    dir.join(layout.weights_file())
}
