//! The Whisper network: an audio encoder and a text decoder with a key/value cache.
//!
//! Written here rather than taken from candle-transformers because transcription needs what
//! its model keeps private or lacks: the decoder's cross-attention scores (word timings come from
//! them), a self-attention cache (each step then costs one token, not the whole sequence), and
//! weights that stay immutable, so one loaded model serves any number of transcriptions at once.
//! Activations are rows of `d_model` (a batch of one).

use crate::gelu::gelu;
use crate::int8::Int8Rows;
use crate::softmax::softmax_last_dim;
use crate::weights::Dims;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm};
use std::collections::HashMap;

/// Whisper's layer norms use PyTorch's default epsilon.
const LAYER_NORM_EPS: f64 = 1e-5;

struct Weights(HashMap<String, Tensor>);

impl Weights {
    fn take(&mut self, name: &str) -> Result<Tensor> {
        self.0
            .remove(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))
    }

    fn linear(&mut self, name: &str) -> Result<Linear> {
        Ok(Linear {
            weight_t: self.take(&format!("{name}/weight"))?.t()?.contiguous()?,
            bias: self.take(&format!("{name}/bias"))?,
        })
    }

    /// A query projection (the first `rows` outputs of `name`) scaled by 1/sqrt(head width),
    /// which attention would otherwise apply to every query.
    fn query_scaled(&mut self, name: &str, rows: usize, head_width: usize) -> Result<Linear> {
        let scale = |t: Tensor| -> Result<Tensor> {
            let factor = (head_width as f64).powf(-0.5);
            let total = t.dim(0)?;
            let scaled = (t.narrow(0, 0, rows)? * factor)?;
            if rows == total {
                Ok(scaled)
            } else {
                Tensor::cat(&[&scaled, &t.narrow(0, rows, total - rows)?], 0)
            }
        };
        Ok(Linear {
            weight_t: scale(self.take(&format!("{name}/weight"))?)?
                .t()?
                .contiguous()?,
            bias: scale(self.take(&format!("{name}/bias"))?)?,
        })
    }

    fn layer_norm(&mut self, name: &str) -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            self.take(&format!("{name}/gamma"))?,
            self.take(&format!("{name}/beta"))?,
            LAYER_NORM_EPS,
        ))
    }

    fn conv(&mut self, name: &str, stride: usize) -> Result<Conv1d> {
        let config = Conv1dConfig {
            padding: 1,
            stride,
            dilation: 1,
            groups: 1,
            cudnn_fwd_algo: None,
        };
        Ok(Conv1d::new(
            self.take(&format!("{name}/weight"))?,
            Some(self.take(&format!("{name}/bias"))?),
            config,
        ))
    }
}

/// A dense layer with its weight stored transposed, (in, out), so rows multiply it directly.
struct Linear {
    weight_t: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight_t)?.broadcast_add(&self.bias)
    }
}

struct FeedForward {
    norm: LayerNorm,
    up: Linear,
    down: Linear,
}

impl FeedForward {
    fn load(w: &mut Weights, layer: &str) -> Result<Self> {
        Ok(Self {
            norm: w.layer_norm(&format!("{layer}/ffn/layer_norm"))?,
            up: w.linear(&format!("{layer}/ffn/linear_0"))?,
            down: w.linear(&format!("{layer}/ffn/linear_1"))?,
        })
    }

    /// `x` plus the block's output.
    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        let h = gelu(&self.up.forward(&self.norm.forward(x)?)?)?;
        x + self.down.forward(&h)?
    }
}

/// Splits rows (t, d) into heads: (heads, t, head_width).
fn heads(x: &Tensor, n_heads: usize) -> Result<Tensor> {
    let (t, d) = x.dims2()?;
    x.reshape((t, n_heads, d / n_heads))?
        .transpose(0, 1)?
        .contiguous()
}

/// Joins heads (heads, t, head_width) back into rows (t, d).
fn unheads(x: &Tensor) -> Result<Tensor> {
    let (n_heads, t, width) = x.dims3()?;
    x.transpose(0, 1)?
        .contiguous()?
        .reshape((t, n_heads * width))
}

/// Dot-product attention over heads; `k_t` is (heads, width, keys) and the queries come
/// scaled by 1/sqrt(width) (folded into their projection). Returns the mixed values and the
/// scores before the softmax.
fn attend(q: &Tensor, k_t: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
    let mut scores = q.matmul(k_t)?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    let weights = softmax_last_dim(&scores)?;
    Ok((weights.matmul(v)?, scores))
}

struct EncoderLayer {
    norm: LayerNorm,
    qkv: Linear,
    out: Linear,
    ffn: FeedForward,
}

pub(crate) struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    norm: LayerNorm,
    n_heads: usize,
}

impl Encoder {
    fn load(w: &mut Weights, dims: &Dims) -> Result<Self> {
        let (d, heads) = (dims.d_model, dims.audio_heads);
        let layers = (0..dims.audio_layers)
            .map(|i| {
                let layer = format!("encoder/layer_{i}");
                Ok(EncoderLayer {
                    norm: w.layer_norm(&format!("{layer}/self_attention/layer_norm"))?,
                    qkv: w.query_scaled(
                        &format!("{layer}/self_attention/linear_0"),
                        d,
                        d / heads,
                    )?,
                    out: w.linear(&format!("{layer}/self_attention/linear_1"))?,
                    ffn: FeedForward::load(w, &layer)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            conv1: w.conv("encoder/conv1", 1)?,
            conv2: w.conv("encoder/conv2", 2)?,
            positions: w.take("encoder/position_encodings/encodings")?,
            layers,
            norm: w.layer_norm("encoder/layer_norm")?,
            n_heads: dims.audio_heads,
        })
    }

    /// Encodes a log-mel window (n_mels, frames) into audio features (frames / 2, d_model).
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = gelu(&self.conv1.forward(&mel.unsqueeze(0)?)?)?;
        let x = gelu(&self.conv2.forward(&x)?)?.squeeze(0)?.t()?;
        let frames = x.dim(0)?;
        let mut x = (x + self.positions.narrow(0, 0, frames)?)?;
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&layer.norm.forward(&x)?)?;
            let d = qkv.dim(1)? / 3;
            let part = |i: usize| heads(&qkv.narrow(1, i * d, d)?, self.n_heads);
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let (mixed, _) = attend(&q, &k.transpose(1, 2)?, &v, None)?;
            x = (x + layer.out.forward(&unheads(&mixed)?)?)?;
            x = layer.ffn.residual(&x)?;
        }
        self.norm.forward(&x)
    }
}

struct DecoderLayer {
    self_norm: LayerNorm,
    self_qkv: Linear,
    self_out: Linear,
    cross_norm: LayerNorm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    ffn: FeedForward,
}

pub(crate) struct Decoder {
    embeddings: Tensor,
    /// The output projection, which shares the embeddings.
    projection: Int8Rows,
    positions: Tensor,
    layers: Vec<DecoderLayer>,
    norm: LayerNorm,
    n_heads: usize,
}

/// One decoder layer's keys and values of the audio features, computed once per window; keys
/// are stored transposed, (heads, width, frames).
struct CrossLayer {
    k_t: Tensor,
    v: Tensor,
}

/// The audio features of one window as every decoder layer attends to them.
pub(crate) struct AudioContext {
    layers: Vec<CrossLayer>,
}

/// The self-attention keys and values of the tokens decoded so far.
#[derive(Default)]
pub(crate) struct TokenCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl TokenCache {
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Decoder {
    fn load(w: &mut Weights, dims: &Dims) -> Result<Self> {
        let (d, heads) = (dims.d_model, dims.text_heads);
        let layers = (0..dims.text_layers)
            .map(|i| {
                let layer = format!("decoder/layer_{i}");
                Ok(DecoderLayer {
                    self_norm: w.layer_norm(&format!("{layer}/self_attention/layer_norm"))?,
                    self_qkv: w.query_scaled(
                        &format!("{layer}/self_attention/linear_0"),
                        d,
                        d / heads,
                    )?,
                    self_out: w.linear(&format!("{layer}/self_attention/linear_1"))?,
                    cross_norm: w.layer_norm(&format!("{layer}/attention/layer_norm"))?,
                    cross_q: w.query_scaled(
                        &format!("{layer}/attention/linear_0"),
                        d,
                        d / heads,
                    )?,
                    cross_kv: w.linear(&format!("{layer}/attention/linear_1"))?,
                    cross_out: w.linear(&format!("{layer}/attention/linear_2"))?,
                    ffn: FeedForward::load(w, &layer)?,
                })
            })
            .collect::<Result<_>>()?;
        let embeddings = w.take("decoder/embeddings/weight")?;
        Ok(Self {
            projection: Int8Rows::quantize(&embeddings)?,
            embeddings,
            positions: w.take("decoder/position_encodings/encodings")?,
            layers,
            norm: w.layer_norm("decoder/layer_norm")?,
            n_heads: dims.text_heads,
        })
    }

    /// Projects the audio features into every layer's cross-attention keys and values.
    pub fn audio_context(&self, features: &Tensor) -> Result<AudioContext> {
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let kv = layer.cross_kv.forward(features)?;
                let d = kv.dim(1)? / 2;
                Ok(CrossLayer {
                    k_t: heads(&kv.narrow(1, 0, d)?, self.n_heads)?
                        .transpose(1, 2)?
                        .contiguous()?,
                    v: heads(&kv.narrow(1, d, d)?, self.n_heads)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(AudioContext { layers })
    }

    /// Runs `tokens` after those already in `cache` (which then holds them too), returning
    /// their final hidden states (tokens, d_model). With `scores_of`, also returns the
    /// cross-attention scores before the softmax of those (layer, head) pairs, each
    /// (tokens, frames).
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut TokenCache,
        audio: &AudioContext,
        scores_of: &[(usize, usize)],
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let device = self.embeddings.device();
        let n = tokens.len();
        let offset = cache.len;
        let ids = Tensor::new(tokens, device)?;
        let mut x =
            (self.embeddings.index_select(&ids, 0)? + self.positions.narrow(0, offset, n)?)?;
        let mask = (n > 1)
            .then(|| causal_mask(n, offset, device))
            .transpose()?;
        let mut scores = Vec::with_capacity(scores_of.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let qkv = layer.self_qkv.forward(&layer.self_norm.forward(&x)?)?;
            let d = qkv.dim(1)? / 3;
            let part = |i: usize| heads(&qkv.narrow(1, i * d, d)?, self.n_heads);
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let (k, v) = match cache.layers.get(i) {
                Some((past_k, past_v)) => (
                    Tensor::cat(&[past_k, &k], 1)?,
                    Tensor::cat(&[past_v, &v], 1)?,
                ),
                None => (k, v),
            };
            let (mixed, _) = attend(&q, &k.transpose(1, 2)?, &v, mask.as_ref())?;
            if i < cache.layers.len() {
                cache.layers[i] = (k, v);
            } else {
                cache.layers.push((k, v));
            }
            x = (x + layer.self_out.forward(&unheads(&mixed)?)?)?;

            let q = heads(
                &layer.cross_q.forward(&layer.cross_norm.forward(&x)?)?,
                self.n_heads,
            )?;
            let cross = &audio.layers[i];
            let (mixed, layer_scores) = attend(&q, &cross.k_t, &cross.v, None)?;
            for &(_, head) in scores_of.iter().filter(|(l, _)| *l == i) {
                scores.push(layer_scores.get(head)?);
            }
            x = (x + layer.cross_out.forward(&unheads(&mixed)?)?)?;
            x = layer.ffn.residual(&x)?;
        }
        cache.len += n;
        Ok((self.norm.forward(&x)?, scores))
    }

    /// The logits over the vocabulary of one hidden state (1, d_model).
    pub fn logits(&self, hidden: &Tensor) -> Result<Vec<f32>> {
        Ok(self.projection.products(&hidden.squeeze(0)?.to_vec1()?))
    }
}

/// New token i (at position offset + i) sees every position up to its own.
fn causal_mask(n: usize, offset: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..n)
        .flat_map(|i| {
            (0..offset + n).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (n, offset + n), device)
}

pub(crate) struct Network {
    pub encoder: Encoder,
    pub decoder: Decoder,
}

impl Network {
    pub fn load(weights: HashMap<String, Tensor>, dims: &Dims) -> Result<Self> {
        let mut weights = Weights(weights);
        Ok(Self {
            encoder: Encoder::load(&mut weights, dims)?,
            decoder: Decoder::load(&mut weights, dims)?,
        })
    }
}

/// A log-mel window as the encoder takes it.
pub(crate) fn mel_tensor(mel: Vec<f32>, n_mels: usize) -> Result<Tensor> {
    let frames = mel.len() / n_mels;
    Tensor::from_vec(mel, (n_mels, frames), &Device::Cpu)?.to_dtype(DType::F32)
}
