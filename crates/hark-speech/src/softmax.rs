//! Softmax over the last dimension, with an exponential the compiler vectorises. The encoder's
//! attention takes a softmax over 13.5 million scores per layer and window; candle's calls the
//! scalar `expf` for each and took a quarter of the encoder's time. The decoder's log-softmax
//! over the vocabulary and the GELU use the same exponential.

use candle_core::{CpuStorage, InplaceOp1, Layout, Result, Tensor};
use rayon::prelude::*;

/// The softmax of `x` over its last dimension, as a new tensor.
pub(crate) fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let y = x.force_contiguous()?;
    softmax_in_place(&y)?;
    Ok(y)
}

/// Replaces each row of `x` (contiguous, and held by nobody else: a tensor just computed)
/// by its softmax. Saves allocating and filling a second tensor of attention scores.
pub(crate) fn softmax_in_place(x: &Tensor) -> Result<()> {
    x.inplace_op1(&Softmax)
}

struct Softmax;

impl InplaceOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("softmax takes float32")
        };
        let Some((from, to)) = layout.contiguous_offsets() else {
            candle_core::bail!("softmax takes a contiguous tensor")
        };
        let row = layout.dims().last().copied().unwrap_or(1).max(1);
        let arch = pulp::Arch::new();
        values[from..to]
            .par_chunks_mut(row)
            .for_each(|row| arch.dispatch(SoftmaxRow(row)));
        Ok(())
    }
}

/// A row to take the softmax of, in place, with the widest vector instructions the processor
/// has (see `rows`).
struct SoftmaxRow<'a>(&'a mut [f32]);

impl pulp::WithSimd for SoftmaxRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        softmax_row(self.0);
    }
}

/// Replaces `row` by its softmax.
#[inline(always)]
pub(crate) fn softmax_row(row: &mut [f32]) {
    let max = lanes_fold(row, f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    // Plain loops (iterator adaptors run in functions not compiled for the caller's vector
    // instructions), and the sum in lanes: one running sum would chain every step to the one
    // before and keep the loop scalar.
    let mut sums = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (sum, v) in sums.iter_mut().zip(chunk) {
            *v = exp_nonpositive(*v - max);
            *sum += *v;
        }
    }
    let mut total = 0.0;
    for v in chunks.into_remainder() {
        *v = exp_nonpositive(*v - max);
        total += *v;
    }
    for sum in sums {
        total += sum;
    }
    let scale = 1.0 / total;
    for v in row.iter_mut() {
        *v *= scale;
    }
}

/// ln(sum of e^v), by the same vectorised exponential; minus infinity if every value is.
pub(crate) fn log_sum_exp(values: &[f32]) -> f32 {
    let max = lanes_fold(values, f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let exps: f32 = lanes_fold_map(values, |v| exp_nonpositive(v - max));
    max + exps.ln()
}

/// The sum of `f` of every value, in lanes.
fn lanes_fold_map(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Lanes of a reduction kept apart until the end, so that the compiler vectorises it.
pub(crate) const LANES: usize = 16;

/// Reduces `values` with `op` (associative and commutative) from `identity`.
#[inline(always)]
pub(crate) fn lanes_fold(values: &[f32], identity: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [identity; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(identity, |a, &b| op(a, b));
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = op(*lane, v);
        }
    }
    lanes.into_iter().fold(tail, op)
}

/// e^x for x <= 0, to 1e-5 relative (less near zero): x = (n + f) ln 2 with |f| <= 1/2, 2^n from
/// the exponent bits, e^(f ln 2) from its Taylor series. Zero below -87.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    let underflow = x < -87.0;
    let x = x.max(-87.0);
    let t = x * std::f32::consts::LOG2_E;
    // Adding 1.5 * 2^23 rounds t to the nearest integer, which then sits in the low bits of
    // the sum: no float-to-integer conversion, whose saturating form is slow in vectors.
    const ROUNDER: f32 = 12_582_912.0;
    let shifted = t + ROUNDER;
    let n = shifted.to_bits() as i32 - ROUNDER.to_bits() as i32;
    let r = (t - (shifted - ROUNDER)) * std::f32::consts::LN_2;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let e = p * f32::from_bits(((n + 127) as u32) << 23);
    if underflow { 0.0 } else { e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponential_is_accurate() {
        for i in 0..=87_000 {
            let x = -(i as f32) / 1000.0;
            let (fast, exact) = (exp_nonpositive(x), x.exp());
            assert!(
                (fast - exact).abs() <= exact * 1e-5 + 1e-38,
                "{x}: {fast} vs {exact}"
            );
        }
    }

    #[test]
    fn rows_sum_to_one_and_keep_their_order() {
        let x = Tensor::new(
            &[[1f32, 2.0, 3.0], [0.0, f32::NEG_INFINITY, 0.0]],
            &candle_core::Device::Cpu,
        )
        .expect("a tensor");
        let y: Vec<Vec<f32>> = softmax_last_dim(&x)
            .and_then(|y| y.to_vec2())
            .expect("softmax");
        let expected = candle_nn::ops::softmax_last_dim(&x)
            .and_then(|y| y.to_vec2::<f32>())
            .expect("candle's softmax");
        for (row, want) in y.iter().zip(&expected) {
            for (a, b) in row.iter().zip(want) {
                assert!((a - b).abs() < 1e-6, "{row:?} vs {want:?}");
            }
        }
        assert_eq!(y[1][1], 0.0);
    }
}
