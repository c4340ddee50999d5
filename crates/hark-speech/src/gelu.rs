//! GELU with the exact (erf) form Whisper was trained with, vectorised: candle's `gelu_erf`
//! calls the scalar `erf` of libm for each of the encoder's 2.3 million activations per layer.

use crate::softmax::exp_nonpositive;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Activations handed to one thread at a time.
const PER_TASK: usize = 1 << 14;

pub(crate) fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&Gelu)
}

/// Replaces each of `values` by its GELU.
pub(crate) fn gelu_in_place(values: &mut [f32]) {
    pulp::Arch::new().dispatch(GeluInPlace(values));
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("gelu takes float32")
        };
        let Some((from, to)) = layout.contiguous_offsets() else {
            candle_core::bail!("gelu takes a contiguous tensor")
        };
        let mut out = values[from..to].to_vec();
        let arch = pulp::Arch::new();
        out.par_chunks_mut(PER_TASK)
            .for_each(|chunk| arch.dispatch(GeluInPlace(chunk)));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Activations to replace by their GELU, with the widest vector instructions the processor has
/// (see `rows`).
struct GeluInPlace<'a>(&'a mut [f32]);

impl pulp::WithSimd for GeluInPlace<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.0.iter_mut().for_each(|v| *v = gelu_one(*v));
    }
}

/// x Φ(x) = x (1 + erf(x / √2)) / 2.
#[inline(always)]
pub(crate) fn gelu_one(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf to 2e-6 absolute: Abramowitz and Stegun's 7.1.26 (1.5e-7) with the vectorised
/// exponential.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_nonpositive(-z * z);
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candle_gelu_erf() {
        let xs: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 / 1000.0).collect();
        let x = Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).expect("a tensor");
        let ours: Vec<f32> = gelu(&x).and_then(|y| y.to_vec1()).expect("gelu");
        let candle: Vec<f32> = x.gelu_erf().and_then(|y| y.to_vec1()).expect("gelu_erf");
        for ((x, a), b) in xs.iter().zip(&ours).zip(&candle) {
            assert!((a - b).abs() <= 2e-6 * x.abs().max(1.0), "{x}: {a} vs {b}");
        }
    }
}
