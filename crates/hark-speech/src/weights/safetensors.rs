//! The Hugging Face layout (`model.safetensors`), renamed into the CTranslate2 names the network
//! loads: separate query, key and value projections are fused the way CTranslate2 stores them.

use super::{Table, WeightError};
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

/// Where one fused weight comes from: Hugging Face tensors stacked by rows, or zero rows (the key
/// projections have no bias).
enum Source {
    Tensor(String),
    Zeros(usize),
}

/// The shapes in the file's header, under the network's names.
pub(super) fn table(path: &Path) -> Result<Table, WeightError> {
    let header = header(path)?;
    let shapes: HashMap<String, Vec<usize>> = header
        .into_iter()
        .map(|(name, shape)| (strip_prefix(&name).to_owned(), shape))
        .collect();
    let mut table = Table::default();
    for (name, sources) in plan(&shapes)? {
        let mut shape: Option<Vec<usize>> = None;
        for source in &sources {
            let part = match source {
                Source::Tensor(hf) => shapes[hf].clone(),
                Source::Zeros(rows) => vec![*rows],
            };
            shape = Some(match shape {
                None => part,
                Some(mut sum) => {
                    sum[0] += part[0];
                    sum
                }
            });
        }
        table.shapes.insert(name, shape.unwrap_or_default());
    }
    Ok(table)
}

/// Every weight as a float32 tensor under the network's names.
pub(super) fn load(path: &Path) -> Result<HashMap<String, Tensor>, WeightError> {
    let raw = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| WeightError(e.to_string()))?;
    let raw: HashMap<String, Tensor> = raw
        .into_iter()
        .map(|(name, tensor)| (strip_prefix(&name).to_owned(), tensor))
        .collect();
    let shapes = raw
        .iter()
        .map(|(name, t)| (name.clone(), t.dims().to_vec()))
        .collect();
    let mut tensors = HashMap::new();
    for (name, sources) in plan(&shapes)? {
        let parts = sources
            .iter()
            .map(|source| match source {
                Source::Tensor(hf) => raw[hf].to_dtype(DType::F32),
                Source::Zeros(rows) => Tensor::zeros(*rows, DType::F32, &Device::Cpu),
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .and_then(|parts| Tensor::cat(&parts, 0))
            .map_err(|e| WeightError(format!("{name}: {e}")))?;
        tensors.insert(name, parts);
    }
    Ok(tensors)
}

/// Some exports name the tensors `model.encoder...`, others `encoder...`.
fn strip_prefix(name: &str) -> &str {
    name.strip_prefix("model.").unwrap_or(name)
}

/// Which Hugging Face tensors make each of the network's weights. Fails on the first tensor
/// missing from the file.
fn plan(
    shapes: &HashMap<String, Vec<usize>>,
) -> Result<BTreeMap<String, Vec<Source>>, WeightError> {
    let conv1 = "encoder.conv1.weight";
    let d_model = *shapes
        .get(conv1)
        .and_then(|s| s.first())
        .ok_or_else(|| WeightError(format!("no tensor {conv1}")))?;
    let layers = |stack: &str| {
        (0..)
            .take_while(|i| shapes.contains_key(&format!("{stack}.layers.{i}.fc1.weight")))
            .count()
    };
    let mut plan = BTreeMap::new();
    let mut one = |ct2: String, hf: String| {
        plan.insert(ct2, vec![Source::Tensor(hf)]);
    };
    for conv in ["conv1", "conv2"] {
        for p in ["weight", "bias"] {
            one(format!("encoder/{conv}/{p}"), format!("encoder.{conv}.{p}"));
        }
    }
    one(
        "encoder/position_encodings/encodings".into(),
        "encoder.embed_positions.weight".into(),
    );
    one(
        "decoder/position_encodings/encodings".into(),
        "decoder.embed_positions.weight".into(),
    );
    one(
        "decoder/embeddings/weight".into(),
        "decoder.embed_tokens.weight".into(),
    );
    for stack in ["encoder", "decoder"] {
        one(
            format!("{stack}/layer_norm/gamma"),
            format!("{stack}.layer_norm.weight"),
        );
        one(
            format!("{stack}/layer_norm/beta"),
            format!("{stack}.layer_norm.bias"),
        );
        for i in 0..layers(stack) {
            let (ct2, hf) = (format!("{stack}/layer_{i}"), format!("{stack}.layers.{i}"));
            let mut norm = |ct2_norm: &str, hf_norm: &str| {
                one(
                    format!("{ct2}/{ct2_norm}/gamma"),
                    format!("{hf}.{hf_norm}.weight"),
                );
                one(
                    format!("{ct2}/{ct2_norm}/beta"),
                    format!("{hf}.{hf_norm}.bias"),
                );
            };
            norm("self_attention/layer_norm", "self_attn_layer_norm");
            norm("ffn/layer_norm", "final_layer_norm");
            if stack == "decoder" {
                norm("attention/layer_norm", "encoder_attn_layer_norm");
            }
            let mut linear = |ct2_linear: &str, hf_linear: &str| {
                for p in ["weight", "bias"] {
                    one(
                        format!("{ct2}/{ct2_linear}/{p}"),
                        format!("{hf}.{hf_linear}.{p}"),
                    );
                }
            };
            linear("ffn/linear_0", "fc1");
            linear("ffn/linear_1", "fc2");
            linear("self_attention/linear_1", "self_attn.out_proj");
            if stack == "decoder" {
                linear("attention/linear_0", "encoder_attn.q_proj");
                linear("attention/linear_2", "encoder_attn.out_proj");
            }
        }
    }
    for stack in ["encoder", "decoder"] {
        for i in 0..layers(stack) {
            let (ct2, hf) = (format!("{stack}/layer_{i}"), format!("{stack}.layers.{i}"));
            let fused = |projections: &[&str], attn: &str| {
                let weights = projections
                    .iter()
                    .map(|p| Source::Tensor(format!("{hf}.{attn}.{p}_proj.weight")))
                    .collect();
                let biases = projections
                    .iter()
                    .map(|p| match *p {
                        "k" => Source::Zeros(d_model),
                        _ => Source::Tensor(format!("{hf}.{attn}.{p}_proj.bias")),
                    })
                    .collect();
                (weights, biases)
            };
            let (w, b) = fused(&["q", "k", "v"], "self_attn");
            plan.insert(format!("{ct2}/self_attention/linear_0/weight"), w);
            plan.insert(format!("{ct2}/self_attention/linear_0/bias"), b);
            if stack == "decoder" {
                let (w, b) = fused(&["k", "v"], "encoder_attn");
                plan.insert(format!("{ct2}/attention/linear_1/weight"), w);
                plan.insert(format!("{ct2}/attention/linear_1/bias"), b);
            }
        }
    }
    for sources in plan.values() {
        for source in sources {
            if let Source::Tensor(hf) = source
                && !shapes.contains_key(hf)
            {
                return Err(WeightError(format!("no tensor {hf}")));
            }
        }
    }
    Ok(plan)
}

/// The tensor table at the head of a safetensors file: an 8-byte length, then JSON. Checks that
/// every tensor's bytes lie inside the file.
fn header(path: &Path) -> Result<HashMap<String, Vec<usize>>, WeightError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        dtype: String,
        shape: Vec<usize>,
        data_offsets: (u64, u64),
    }
    let mut file = std::fs::File::open(path).map_err(WeightError::io)?;
    let file_len = file.metadata().map_err(WeightError::io)?.len();
    let mut len = [0; 8];
    file.read_exact(&mut len).map_err(WeightError::io)?;
    let len = u64::from_le_bytes(len);
    if len > file_len.saturating_sub(8) {
        return Err(WeightError(
            "the header runs past the end of the file".into(),
        ));
    }
    let mut json = vec![0; len as usize];
    file.read_exact(&mut json).map_err(WeightError::io)?;
    let mut entries: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|e| WeightError(format!("header: {e}")))?;
    entries.remove("__metadata__");
    let data_len = file_len - 8 - len;
    let mut shapes = HashMap::with_capacity(entries.len());
    for (name, value) in entries {
        let entry: Entry =
            serde_json::from_value(value).map_err(|e| WeightError(format!("{name}: {e}")))?;
        let size = match entry.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(WeightError(format!("{name}: unsupported dtype {other}"))),
        };
        let (begin, end) = entry.data_offsets;
        let expected = entry.shape.iter().product::<usize>() as u64 * size;
        if end < begin || end - begin != expected {
            return Err(WeightError(format!("{name}: offsets do not fit its shape")));
        }
        if end > data_len {
            return Err(WeightError(format!(
                "{name}: data runs past the end of the file (truncated?)"
            )));
        }
        shapes.insert(name, entry.shape);
    }
    Ok(shapes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::IndexOp;

    /// The Hugging Face name of a CTranslate2 weight, or of its row blocks when it is fused
    /// (`None` for the key biases, which Hugging Face does not store).
    fn hugging_face_names(ct2: &str) -> Vec<Option<String>> {
        let (stack, rest) = ct2.split_once('/').expect("a stack");
        let name = match rest.split_once('/') {
            Some((layer, rest))
                if layer
                    .strip_prefix("layer_")
                    .is_some_and(|i| i.parse::<usize>().is_ok()) =>
            {
                let i = &layer["layer_".len()..];
                let (module, param) = rest.rsplit_once('/').expect("a parameter");
                let param = match param {
                    "gamma" => "weight",
                    "beta" => "bias",
                    other => other,
                };
                let fused = |attn: &str, parts: &[&str]| -> Vec<Option<String>> {
                    parts
                        .iter()
                        .map(|p| {
                            (param == "weight" || *p != "k")
                                .then(|| format!("{stack}.layers.{i}.{attn}.{p}_proj.{param}"))
                        })
                        .collect()
                };
                let hf = match module {
                    "self_attention/linear_0" => return fused("self_attn", &["q", "k", "v"]),
                    "attention/linear_1" => return fused("encoder_attn", &["k", "v"]),
                    "self_attention/linear_1" => "self_attn.out_proj",
                    "self_attention/layer_norm" => "self_attn_layer_norm",
                    "attention/linear_0" => "encoder_attn.q_proj",
                    "attention/linear_2" => "encoder_attn.out_proj",
                    "attention/layer_norm" => "encoder_attn_layer_norm",
                    "ffn/linear_0" => "fc1",
                    "ffn/linear_1" => "fc2",
                    "ffn/layer_norm" => "final_layer_norm",
                    other => panic!("unknown module {other}"),
                };
                format!("{stack}.layers.{i}.{hf}.{param}")
            }
            _ => match rest {
                "embeddings/weight" => format!("{stack}.embed_tokens.weight"),
                "position_encodings/encodings" => format!("{stack}.embed_positions.weight"),
                "layer_norm/gamma" => format!("{stack}.layer_norm.weight"),
                "layer_norm/beta" => format!("{stack}.layer_norm.bias"),
                conv => format!("{stack}.{}", conv.replace('/', ".")),
            },
        };
        vec![Some(name)]
    }

    #[test]
    fn a_hugging_face_export_loads_as_the_same_weights() {
        let ct2 = super::super::ct2::load(&hark_testkit::speech_model_dir().join("model.bin"))
            .expect("the CTranslate2 weights");
        let mut exported = HashMap::new();
        for (name, tensor) in &ct2 {
            let names = hugging_face_names(name);
            let rows = tensor.dim(0).expect("rows") / names.len();
            for (i, hf) in names.into_iter().enumerate() {
                if let Some(hf) = hf {
                    let part = tensor.i(i * rows..(i + 1) * rows).expect("a block of rows");
                    let part = part.to_dtype(DType::F16).expect("half precision");
                    exported.insert(format!("model.{hf}"), part);
                }
            }
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&exported, &path).expect("saved");

        let table = table(&path).expect("the header reads");
        let loaded = load(&path).expect("the weights load");
        assert_eq!(loaded.len(), ct2.len());
        for (name, tensor) in &ct2 {
            assert_eq!(table.shapes[name], tensor.dims(), "{name}");
            let difference = (&loaded[name] - tensor)
                .and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>())
                .expect("comparable");
            // The key biases are zero in both; everything else was stored as it came.
            assert_eq!(difference, 0.0, "{name}");
        }
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.safetensors");
        let tensors = HashMap::from([(
            "encoder.conv1.weight".to_owned(),
            Tensor::zeros((4, 2, 3), DType::F32, &Device::Cpu).expect("zeros"),
        )]);
        candle_core::safetensors::save(&tensors, &path).expect("saved");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 8]).expect("written");
        let error = header(&path).expect_err("truncated");
        assert!(error.0.contains("truncated"), "{}", error.0);
    }
}
