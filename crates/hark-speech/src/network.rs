//! The Whisper network: an audio encoder and a text decoder with a key/value cache.
//!
//! Written here rather than taken from candle-transformers because transcription needs what
//! its model keeps private or lacks: the decoder's cross-attention scores (word timings come from
//! them), a self-attention cache (each step then costs one token, not the whole sequence), and
//! weights that stay immutable, so one loaded model serves any number of transcriptions at once.
//! Activations are rows of `d_model` (a batch of one).
//!
//! The encoder and batches of tokens (a prompt, the alignment pass) run on candle's matrix
//! products. A decoding step, one token, runs in plain loops over half-precision copies of the
//! decoder's weights and of the window's cross-attention keys and values: a step reads every
//! weight once for little arithmetic, so its time is the bytes it reads, and candle's
//! per-operation costs (allocation, threads, a look at /proc/cpuinfo per matrix product) would
//! outweigh the arithmetic.

use crate::bias::add_bias_in_place;
use crate::gelu::{gelu, gelu_in_place};
use crate::rows::{Half, HalfRows, Int8Rows, Value, add_scaled, dot, halves};
use crate::softmax::{softmax_in_place, softmax_row};
use crate::weights::Dims;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm};
use rayon::prelude::*;
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

    fn linear<L>(&mut self, name: &str, load: fn(&Tensor, Tensor) -> Result<L>) -> Result<L> {
        let weight = self.take(&format!("{name}/weight"))?;
        load(&weight, self.take(&format!("{name}/bias"))?)
    }

    /// A query projection (the first `rows` outputs of `name`) scaled by 1/sqrt(head width),
    /// which attention would otherwise apply to every query.
    fn query_scaled<L>(
        &mut self,
        name: &str,
        rows: usize,
        head_width: usize,
        load: fn(&Tensor, Tensor) -> Result<L>,
    ) -> Result<L> {
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
        let weight = scale(self.take(&format!("{name}/weight"))?)?;
        load(&weight, scale(self.take(&format!("{name}/bias"))?)?)
    }

    fn layer_norm(&mut self, name: &str) -> Result<Norm> {
        let gamma = self.take(&format!("{name}/gamma"))?;
        let beta = self.take(&format!("{name}/beta"))?;
        Ok(Norm {
            gamma: gamma.to_vec1()?,
            beta: beta.to_vec1()?,
            batch: LayerNorm::new(gamma, beta, LAYER_NORM_EPS),
        })
    }

    fn feed_forward<L>(
        &mut self,
        layer: &str,
        load: fn(&Tensor, Tensor) -> Result<L>,
    ) -> Result<FeedForward<L>> {
        Ok(FeedForward {
            norm: self.layer_norm(&format!("{layer}/ffn/layer_norm"))?,
            up: self.linear(&format!("{layer}/ffn/linear_0"), load)?,
            down: self.linear(&format!("{layer}/ffn/linear_1"), load)?,
        })
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
    fn load(weight: &Tensor, bias: Tensor) -> Result<Self> {
        Ok(Self {
            weight_t: weight.t()?.contiguous()?,
            bias,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_then(x, false)
    }

    /// The layer's output, with `gelu` put through the GELU.
    fn forward_then(&self, x: &Tensor, gelu: bool) -> Result<Tensor> {
        let y = x.matmul(&self.weight_t)?;
        add_bias_in_place(&y, &self.bias, gelu)?;
        Ok(y)
    }
}

impl AsRef<Linear> for Linear {
    fn as_ref(&self) -> &Linear {
        self
    }
}

/// A decoder's dense layer, kept twice: as a `Linear` for a batch of tokens (a matrix product)
/// and in half-precision rows for one token at a time (see `rows`).
struct TokenLinear {
    batch: Linear,
    rows: HalfRows,
    bias: Vec<f32>,
}

impl TokenLinear {
    fn load(weight: &Tensor, bias: Tensor) -> Result<Self> {
        Ok(Self {
            rows: HalfRows::new(weight)?,
            bias: bias.to_vec1()?,
            batch: Linear::load(weight, bias)?,
        })
    }

    fn row(&self, x: &[f32]) -> Vec<f32> {
        self.rows.products(x, &self.bias)
    }
}

impl AsRef<Linear> for TokenLinear {
    fn as_ref(&self) -> &Linear {
        &self.batch
    }
}

/// A layer norm, its parameters also kept as values for one row at a time.
struct Norm {
    batch: LayerNorm,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.batch.forward(x)
    }

    fn row(&self, x: &[f32]) -> Vec<f32> {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let variance = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let scale = 1.0 / (variance + LAYER_NORM_EPS).sqrt();
        x.iter()
            .zip(self.gamma.iter().zip(&self.beta))
            .map(|(&v, (g, b))| ((f64::from(v) - mean) * scale) as f32 * g + b)
            .collect()
    }
}

struct FeedForward<L> {
    norm: Norm,
    up: L,
    down: L,
}

impl<L: AsRef<Linear>> FeedForward<L> {
    /// `x` plus the block's output.
    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        let up = self
            .up
            .as_ref()
            .forward_then(&self.norm.forward(x)?, true)?;
        x + self.down.as_ref().forward(&up)?
    }
}

impl FeedForward<TokenLinear> {
    /// Adds the block's output to the row `x`.
    fn residual_row(&self, x: &mut [f32]) {
        let mut up = self.up.row(&self.norm.row(x));
        gelu_in_place(&mut up);
        add(x, &self.down.row(&up));
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
}

/// Attention of query rows over key and value rows, each (rows, d_model) with the heads side
/// by side in the columns, one head at a time: a head's scores (queries × keys) stay in the
/// cache, where the encoder's for all heads at once (54 MB per layer for tiny's six heads)
/// would be memory to fault in, fill and read back. The queries come scaled by 1/sqrt(head
/// width) (folded into their projection). Returns the mixed values (queries, d_model) and the
/// scores before the softmax of the heads in `keep`, by head.
fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    n_heads: usize,
    mask: Option<&Tensor>,
    keep: &[usize],
) -> Result<(Tensor, Vec<(usize, Tensor)>)> {
    let width = q.dim(1)? / n_heads;
    let mut kept = Vec::with_capacity(keep.len());
    let mixed = (0..n_heads)
        .map(|head| {
            let part = |x: &Tensor| x.narrow(1, head * width, width);
            let mut scores = part(q)?.matmul(&part(k)?.t()?)?;
            if let Some(mask) = mask {
                scores = scores.broadcast_add(mask)?;
            }
            if keep.contains(&head) {
                kept.push((head, scores.copy()?));
            }
            softmax_in_place(&scores)?;
            scores.matmul(&part(v)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((Tensor::cat(&mixed, 1)?, kept))
}

/// Keys or values for `attention_row`: `count` rows per head, the row `i` of `head` at
/// `head * head_stride + i * stride` in `values`.
#[derive(Clone, Copy)]
struct Rows<'a, T> {
    values: &'a [T],
    stride: usize,
    head_stride: usize,
    count: usize,
}

impl<T> Rows<'_, T> {
    fn row(&self, head: usize, i: usize, width: usize) -> &[T] {
        &self.values[head * self.head_stride + i * self.stride..][..width]
    }
}

/// `attention` for a single query row (d_model), its heads spread over the thread pool.
fn attention_row<T: Value>(q: &[f32], keys: Rows<T>, values: Rows<T>, n_heads: usize) -> Vec<f32> {
    let width = q.len() / n_heads;
    let mut mixed = vec![0f32; q.len()];
    let arch = pulp::Arch::new();
    mixed
        .par_chunks_mut(width)
        .enumerate()
        .for_each(|(head, out)| {
            arch.dispatch(HeadAttention {
                q: &q[head * width..][..width],
                keys,
                values,
                head,
                out,
            })
        });
    mixed
}

/// One head of `attention_row`, compiled for the processor's vector instructions (see `rows`).
struct HeadAttention<'a, T> {
    q: &'a [f32],
    keys: Rows<'a, T>,
    values: Rows<'a, T>,
    head: usize,
    out: &'a mut [f32],
}

impl<T: Value> pulp::WithSimd for HeadAttention<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        // Plain loops: see `rows::dot`.
        let width = self.q.len();
        let mut weights = vec![0f32; self.keys.count];
        for (i, w) in weights.iter_mut().enumerate() {
            *w = dot(self.keys.row(self.head, i, width), self.q);
        }
        softmax_row(&mut weights);
        for (i, &w) in weights.iter().enumerate() {
            add_scaled(self.out, w, self.values.row(self.head, i, width));
        }
    }
}

struct EncoderLayer {
    norm: Norm,
    qkv: Linear,
    out: Linear,
    ffn: FeedForward<Linear>,
}

pub(crate) struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    norm: Norm,
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
                        Linear::load,
                    )?,
                    out: w.linear(&format!("{layer}/self_attention/linear_1"), Linear::load)?,
                    ffn: w.feed_forward(&layer, Linear::load)?,
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
            let part = |i: usize| qkv.narrow(1, i * d, d);
            let (mixed, _) = attention(&part(0)?, &part(1)?, &part(2)?, self.n_heads, None, &[])?;
            x = (x + layer.out.forward(&mixed)?)?;
            x = layer.ffn.residual(&x)?;
        }
        self.norm.forward(&x)
    }
}

struct DecoderLayer {
    self_norm: Norm,
    self_qkv: TokenLinear,
    self_out: TokenLinear,
    cross_norm: Norm,
    cross_q: TokenLinear,
    cross_kv: Linear,
    cross_out: TokenLinear,
    ffn: FeedForward<TokenLinear>,
}

pub(crate) struct Decoder {
    embeddings: Tensor,
    /// The output projection, which shares the embeddings.
    projection: Int8Rows,
    positions: Tensor,
    layers: Vec<DecoderLayer>,
    norm: Norm,
    n_heads: usize,
}

/// The audio features of one window as every decoder layer attends to them, computed once per
/// window.
pub(crate) struct AudioContext {
    /// Per layer, the keys and values of every frame side by side, (frames, 2 d_model).
    layers: Vec<Tensor>,
    /// The same in half precision, each head's keys and values in rows of their own
    /// (head, frame, head width): what every decoding step reads through, in half the bytes and
    /// in order.
    halves: Vec<(Vec<Half>, Vec<Half>)>,
    frames: usize,
}

/// The self-attention keys and values of the tokens decoded so far: per layer, a row of
/// d_model each.
#[derive(Default)]
pub(crate) struct TokenCache {
    layers: Vec<CachedLayer>,
    len: usize,
}

#[derive(Default)]
struct CachedLayer {
    keys: Vec<f32>,
    values: Vec<f32>,
}

impl TokenCache {
    pub fn len(&self) -> usize {
        self.len
    }

    fn layer(&mut self, i: usize) -> &mut CachedLayer {
        if self.layers.len() <= i {
            self.layers.resize_with(i + 1, CachedLayer::default);
        }
        &mut self.layers[i]
    }
}

impl Decoder {
    fn load(w: &mut Weights, dims: &Dims) -> Result<Self> {
        let (d, heads) = (dims.d_model, dims.text_heads);
        let layers = (0..dims.text_layers)
            .map(|i| {
                let layer = format!("decoder/layer_{i}");
                let linear = |w: &mut Weights, name: &str| {
                    w.linear(&format!("{layer}/{name}"), TokenLinear::load)
                };
                Ok(DecoderLayer {
                    self_norm: w.layer_norm(&format!("{layer}/self_attention/layer_norm"))?,
                    self_qkv: w.query_scaled(
                        &format!("{layer}/self_attention/linear_0"),
                        d,
                        d / heads,
                        TokenLinear::load,
                    )?,
                    self_out: linear(w, "self_attention/linear_1")?,
                    cross_norm: w.layer_norm(&format!("{layer}/attention/layer_norm"))?,
                    cross_q: w.query_scaled(
                        &format!("{layer}/attention/linear_0"),
                        d,
                        d / heads,
                        TokenLinear::load,
                    )?,
                    cross_kv: w.linear(&format!("{layer}/attention/linear_1"), Linear::load)?,
                    cross_out: linear(w, "attention/linear_2")?,
                    ffn: w.feed_forward(&layer, TokenLinear::load)?,
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
        let layers: Vec<Tensor> = self
            .layers
            .iter()
            .map(|layer| layer.cross_kv.forward(features))
            .collect::<Result<_>>()?;
        let (frames, d) = features.dims2()?;
        let by_head = |x: Tensor| -> Result<Vec<Half>> {
            let x = x.reshape((frames, self.n_heads, d / self.n_heads))?;
            Ok(halves(&x.transpose(0, 1)?.flatten_all()?.to_vec1()?))
        };
        let halves = layers
            .iter()
            .map(|kv| {
                Ok((
                    by_head(kv.narrow(1, 0, d)?.contiguous()?)?,
                    by_head(kv.narrow(1, d, d)?.contiguous()?)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(AudioContext {
            layers,
            halves,
            frames,
        })
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
        let mut kept_by_layer = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let qkv = layer
                .self_qkv
                .batch
                .forward(&layer.self_norm.forward(&x)?)?;
            let d = qkv.dim(1)? / 3;
            let (q, k, v) = (
                qkv.narrow(1, 0, d)?,
                qkv.narrow(1, d, d)?,
                qkv.narrow(1, 2 * d, d)?,
            );
            let cached = cache.layer(i);
            let past = |values: &[f32]| Tensor::from_slice(values, (offset, d), device);
            let (all_k, all_v) = if offset > 0 {
                (
                    Tensor::cat(&[&past(&cached.keys)?, &k], 0)?,
                    Tensor::cat(&[&past(&cached.values)?, &v], 0)?,
                )
            } else {
                (k.clone(), v.clone())
            };
            cached.keys.extend(k.flatten_all()?.to_vec1::<f32>()?);
            cached.values.extend(v.flatten_all()?.to_vec1::<f32>()?);
            let (mixed, _) = attention(&q, &all_k, &all_v, self.n_heads, mask.as_ref(), &[])?;
            x = (x + layer.self_out.batch.forward(&mixed)?)?;

            let q = layer
                .cross_q
                .batch
                .forward(&layer.cross_norm.forward(&x)?)?;
            let kv = &audio.layers[i];
            let keep: Vec<usize> = scores_of
                .iter()
                .filter(|(layer, _)| *layer == i)
                .map(|&(_, head)| head)
                .collect();
            let (mixed, kept) = attention(
                &q,
                &kv.narrow(1, 0, d)?,
                &kv.narrow(1, d, d)?,
                self.n_heads,
                None,
                &keep,
            )?;
            kept_by_layer.push(kept);
            x = (x + layer.cross_out.batch.forward(&mixed)?)?;
            x = layer.ffn.residual(&x)?;
        }
        cache.len += n;
        let scores = scores_of
            .iter()
            .map(|&(layer, head)| {
                kept_by_layer
                    .get(layer)
                    .and_then(|kept| kept.iter().find(|(h, _)| *h == head))
                    .map(|(_, scores)| scores.clone())
                    .ok_or_else(|| {
                        candle_core::Error::Msg(format!("no head {head} in decoder layer {layer}"))
                    })
            })
            .collect::<Result<_>>()?;
        Ok((self.norm.forward(&x)?, scores))
    }

    /// Runs one token after those in `cache` (which then holds it too), returning its final
    /// hidden state (d_model). The step of every decoding: one row through every weight, on
    /// the half-precision rows, with no tensor made for it.
    pub fn step(
        &self,
        token: u32,
        cache: &mut TokenCache,
        audio: &AudioContext,
    ) -> Result<Vec<f32>> {
        let position = cache.len;
        let d = self.positions.dim(1)?;
        let embedding = self.embeddings.get(token as usize)?;
        let mut x: Vec<f32> = (embedding + self.positions.get(position)?)?.to_vec1()?;
        for (i, layer) in self.layers.iter().enumerate() {
            let qkv = layer.self_qkv.row(&layer.self_norm.row(&x));
            let cached = cache.layer(i);
            cached.keys.extend_from_slice(&qkv[d..2 * d]);
            cached.values.extend_from_slice(&qkv[2 * d..]);
            let rows = |values| Rows {
                values,
                stride: d,
                head_stride: d / self.n_heads,
                count: position + 1,
            };
            let mixed = attention_row(
                &qkv[..d],
                rows(&cached.keys),
                rows(&cached.values),
                self.n_heads,
            );
            add(&mut x, &layer.self_out.row(&mixed));

            let q = layer.cross_q.row(&layer.cross_norm.row(&x));
            let (keys, values) = &audio.halves[i];
            let width = d / self.n_heads;
            let rows = |values| Rows {
                values,
                stride: width,
                head_stride: audio.frames * width,
                count: audio.frames,
            };
            let mixed = attention_row(&q, rows(keys), rows(values), self.n_heads);
            add(&mut x, &layer.cross_out.row(&mixed));
            layer.ffn.residual_row(&mut x);
        }
        cache.len += 1;
        Ok(self.norm.row(&x))
    }

    /// The logits over the vocabulary of one hidden state (d_model).
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        self.projection.products(hidden)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in -0.25..0.25 from a fixed sequence.
    fn random(shape: &[usize], seed: &mut u64) -> Tensor {
        let values: Vec<f32> = (0..shape.iter().product())
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).expect("a tensor")
    }

    const D: usize = 64;

    /// A small decoder of random weights (two layers of two heads, 50 tokens, 16 positions)
    /// and its context of 20 frames of random audio features.
    fn small_decoder(seed: &mut u64) -> (Decoder, AudioContext) {
        let (vocab, text_ctx) = (50, 16);
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            ("decoder/embeddings/weight".into(), vec![vocab, D]),
            (
                "decoder/position_encodings/encodings".into(),
                vec![text_ctx, D],
            ),
            ("decoder/layer_norm/gamma".into(), vec![D]),
            ("decoder/layer_norm/beta".into(), vec![D]),
        ];
        for i in 0..2 {
            let layer = format!("decoder/layer_{i}");
            for norm in ["self_attention", "attention", "ffn"] {
                for part in ["gamma", "beta"] {
                    shapes.push((format!("{layer}/{norm}/layer_norm/{part}"), vec![D]));
                }
            }
            for (name, outputs, inputs) in [
                ("self_attention/linear_0", 3 * D, D),
                ("self_attention/linear_1", D, D),
                ("attention/linear_0", D, D),
                ("attention/linear_1", 2 * D, D),
                ("attention/linear_2", D, D),
                ("ffn/linear_0", 4 * D, D),
                ("ffn/linear_1", D, 4 * D),
            ] {
                shapes.push((format!("{layer}/{name}/weight"), vec![outputs, inputs]));
                shapes.push((format!("{layer}/{name}/bias"), vec![outputs]));
            }
        }
        let tensors = shapes
            .into_iter()
            .map(|(name, shape)| (name, random(&shape, seed)))
            .collect();
        let dims = Dims {
            n_mels: 80,
            d_model: D,
            audio_ctx: 20,
            audio_heads: 2,
            audio_layers: 0,
            text_ctx,
            text_heads: 2,
            text_layers: 2,
            vocab,
        };
        let decoder = Decoder::load(&mut Weights(tensors), &dims).expect("a decoder");
        let audio = decoder
            .audio_context(&random(&[20, D], seed))
            .expect("an audio context");
        (decoder, audio)
    }

    fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tolerance, "{a:?}\nvs\n{b:?}");
        }
    }

    #[test]
    fn steps_batches_and_a_whole_sequence_agree() {
        let (decoder, audio) = small_decoder(&mut 7);
        let tokens = [3u32, 17, 42, 8, 29];
        let rows = |hidden: Tensor| hidden.to_vec2::<f32>().expect("rows");
        let (whole, _) = decoder
            .forward(&tokens, &mut TokenCache::default(), &audio, &[])
            .expect("the whole sequence");
        let whole = rows(whole);

        // A prompt, then the rest as a second batch on the cache.
        let mut cache = TokenCache::default();
        decoder
            .forward(&tokens[..2], &mut cache, &audio, &[])
            .expect("a prompt");
        let (rest, _) = decoder
            .forward(&tokens[2..], &mut cache, &audio, &[])
            .expect("the rest");
        for (row, want) in rows(rest).iter().zip(&whole[2..]) {
            assert_close(row, want, 1e-4);
        }

        // A prompt, then a step a token (half-precision weights).
        let mut cache = TokenCache::default();
        decoder
            .forward(&tokens[..2], &mut cache, &audio, &[])
            .expect("a prompt");
        for (&token, want) in tokens[2..].iter().zip(&whole[2..]) {
            let row = decoder.step(token, &mut cache, &audio).expect("a step");
            assert_close(&row, want, 2e-2);
        }
        assert_eq!(cache.len(), tokens.len());
    }

    #[test]
    fn alignment_scores_come_in_the_order_asked() {
        let (decoder, audio) = small_decoder(&mut 11);
        let asked = [(1, 1), (0, 0), (1, 0), (1, 1)];
        let (_, scores) = decoder
            .forward(&[1, 2, 3], &mut TokenCache::default(), &audio, &asked)
            .expect("a forward pass");
        let values: Vec<Vec<Vec<f32>>> = scores
            .iter()
            .map(|s| s.to_vec2().expect("scores"))
            .collect();
        assert_eq!(values.len(), asked.len());
        assert_eq!(values[0], values[3]);
        assert_ne!(values[0], values[1]);
        assert_ne!(values[0], values[2]);
        assert_eq!(values[0].len(), 3);
        assert_eq!(values[0][0].len(), 20);
    }
}
