//! Weight matrices kept as rows for the products of a single activation row with them. Decoding
//! a token multiplies one row by every decoder weight and by the 51864-row vocabulary
//! projection: the time goes into reading the weights, so fewer bytes per weight read faster
//! (and more of them stay in the cache). The vocabulary projection is stored as 8-bit integers
//! with one scale per row, which keeps the relative error of each output near that of its
//! largest weight; the decoder's layers, whose errors compound from layer to layer and token to
//! token, in half precision. The dot products run with the widest vector instructions the
//! processor has (AVX2 where there is), which the compiler uses only in code compiled for them:
//! pulp detects them once and runs the loop compiled so.

use crate::softmax::LANES;
use candle_core::{DType, Result, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// Weights handed to one thread at a time (as whole rows): enough work to outweigh the
/// hand-over, small enough to share a 384-row layer between threads.
const WEIGHTS_PER_TASK: usize = 1 << 15;

pub(crate) struct Int8Rows {
    values: Vec<i8>,
    scales: Vec<f32>,
    width: usize,
}

impl Int8Rows {
    /// Quantizes a matrix (rows, width), each row to the integers -127..=127 scaled by its
    /// largest magnitude.
    pub fn quantize(matrix: &Tensor) -> Result<Self> {
        let (rows, width) = matrix.dims2()?;
        let floats: Vec<f32> = matrix.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let mut values = Vec::with_capacity(rows * width);
        let mut scales = Vec::with_capacity(rows);
        for row in floats.chunks_exact(width) {
            let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
            values.extend(row.iter().map(|v| (v / scale).round() as i8));
            scales.push(scale);
        }
        Ok(Self {
            values,
            scales,
            width,
        })
    }

    /// The dot product of `x` (one row of `width`) with every row.
    pub fn products(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.scales.len()];
        add_products(self, &self.values, self.width, x, &mut out);
        out
    }
}

/// Weight rows in half precision (IEEE binary16, as bits).
pub(crate) struct HalfRows {
    values: Vec<Half>,
    width: usize,
}

impl HalfRows {
    /// A matrix (rows, width) in half precision.
    pub fn new(matrix: &Tensor) -> Result<Self> {
        let (_, width) = matrix.dims2()?;
        let values = halves(&matrix.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?);
        Ok(Self { values, width })
    }

    /// `bias` plus the dot product of `x` (one row of `width`) with every row.
    pub fn products(&self, x: &[f32], bias: &[f32]) -> Vec<f32> {
        let mut out = bias.to_vec();
        add_products(self, &self.values, self.width, x, &mut out);
        out
    }
}

/// A stored value that products read as a float.
pub(crate) trait Value: Copy + Send + Sync {
    fn float(self) -> f32;
}

impl Value for f32 {
    #[inline(always)]
    fn float(self) -> f32 {
        self
    }
}

impl Value for i8 {
    #[inline(always)]
    fn float(self) -> f32 {
        f32::from(self)
    }
}

/// A half-precision value (IEEE binary16), as its bits.
#[derive(Clone, Copy)]
pub(crate) struct Half(u16);

impl Value for Half {
    /// Its exponent and mantissa moved into a float's places and rebased by 2^112 (which also
    /// gets subnormals right), then its sign: plain integer and float arithmetic, so that the
    /// compiler vectorises it. Infinities and NaN (a float beyond 65504 converts to infinity),
    /// which a trained model's weights and activations are not, come out as 65536 or more.
    #[inline(always)]
    fn float(self) -> f32 {
        let bits = u32::from(self.0);
        let magnitude = f32::from_bits((bits & 0x7fff) << 13) * f32::from_bits(0x7780_0000);
        f32::from_bits(magnitude.to_bits() | ((bits & 0x8000) << 16))
    }
}

/// `values` in half precision, rounded to nearest.
pub(crate) fn halves(values: &[f32]) -> Vec<Half> {
    let mut converted = vec![f16::ZERO; values.len()];
    converted.convert_from_f32_slice(values);
    converted.into_iter().map(|h| Half(h.to_bits())).collect()
}

/// How the rows of a format multiply an activation row.
trait RowFormat: Sync {
    type Value: Sync;

    /// The dot product of row `index` (its `values`) with `x`.
    fn dot(&self, index: usize, values: &[Self::Value], x: &[f32]) -> f32;
}

impl RowFormat for Int8Rows {
    type Value = i8;

    #[inline(always)]
    fn dot(&self, index: usize, values: &[i8], x: &[f32]) -> f32 {
        dot(values, x) * self.scales[index]
    }
}

impl RowFormat for HalfRows {
    type Value = Half;

    #[inline(always)]
    fn dot(&self, _: usize, values: &[Half], x: &[f32]) -> f32 {
        dot(values, x)
    }
}

/// Adds the dot product of every row of `values` with `x` to `out`, spread over the current
/// thread pool in blocks of rows.
fn add_products<F: RowFormat>(
    format: &F,
    values: &[F::Value],
    width: usize,
    x: &[f32],
    out: &mut [f32],
) {
    assert_eq!(x.len(), width, "a row of the matrix's width");
    assert_eq!(values.len(), out.len() * width, "an output per row");
    let rows_per_task = (WEIGHTS_PER_TASK / width).max(1);
    let arch = pulp::Arch::new();
    out.par_chunks_mut(rows_per_task)
        .zip(values.par_chunks(rows_per_task * width))
        .enumerate()
        .for_each(|(task, (out, values))| {
            arch.dispatch(RowProducts {
                format,
                first: task * rows_per_task,
                out,
                values,
                x,
            })
        });
}

/// Rows of `values` (each as wide as `x`) dotted with `x`, added to `out`.
struct RowProducts<'a, F: RowFormat> {
    format: &'a F,
    /// The index of the first row.
    first: usize,
    out: &'a mut [f32],
    values: &'a [F::Value],
    x: &'a [f32],
}

impl<F: RowFormat> pulp::WithSimd for RowProducts<'_, F> {
    type Output = ();

    // Inlined into pulp's function for the detected instructions, and compiled for them.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let rows = self.values.chunks_exact(self.x.len());
        for (i, (o, row)) in self.out.iter_mut().zip(rows).enumerate() {
            *o += self.format.dot(self.first + i, row, self.x);
        }
    }
}

/// The dot product of `values` with `x`. Plain loops over lanes: iterator adaptors such as
/// `sum` and `map` run in functions of their own, which are not compiled for the wider
/// instructions of the caller.
#[inline(always)]
pub(crate) fn dot<T: Value>(values: &[T], x: &[f32]) -> f32 {
    let mut sums = [0f32; LANES];
    let value_chunks = values.chunks_exact(LANES);
    let x_chunks = x.chunks_exact(LANES);
    let mut total = 0.0;
    for (&v, &x) in value_chunks.remainder().iter().zip(x_chunks.remainder()) {
        total += v.float() * x;
    }
    for (values, x) in value_chunks.zip(x_chunks) {
        for ((sum, &v), &x) in sums.iter_mut().zip(values).zip(x) {
            *sum += v.float() * x;
        }
    }
    for sum in sums {
        total += sum;
    }
    total
}

/// Adds `weight` times `values` to `out`.
#[inline(always)]
pub(crate) fn add_scaled<T: Value>(out: &mut [f32], weight: f32, values: &[T]) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o += weight * v.float();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A matrix of weights in -1..1 (as values and as a tensor) and a row to multiply it by.
    fn example(rows: usize, width: usize) -> (Vec<f32>, Tensor, Vec<f32>) {
        let weights: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let matrix =
            Tensor::from_vec(weights.clone(), (rows, width), &Device::Cpu).expect("a matrix");
        let x = (0..width).map(|i| (i as f32 * 0.37).sin()).collect();
        (weights, matrix, x)
    }

    #[test]
    fn products_are_close_to_the_float_products() {
        let (rows, width) = (600, 37);
        let (weights, matrix, x) = example(rows, width);
        let products = Int8Rows::quantize(&matrix).expect("quantized").products(&x);
        assert_eq!(products.len(), rows);
        for (row, product) in weights.chunks_exact(width).zip(&products) {
            let exact: f32 = row.iter().zip(&x).map(|(w, x)| w * x).sum();
            let bound: f32 = x.iter().map(|x| x.abs()).sum::<f32>() / 254.0;
            assert!((exact - product).abs() <= bound, "{exact} vs {product}");
        }
    }

    #[test]
    fn half_precision_converts_exactly() {
        for bits in (0..=u16::MAX).filter(|b| b & 0x7c00 != 0x7c00) {
            let expected = f16::from_bits(bits).to_f32();
            assert_eq!(
                Half(bits).float().to_bits(),
                expected.to_bits(),
                "{bits:#06x}"
            );
        }
    }

    #[test]
    fn half_products_are_close_to_the_float_products() {
        let (rows, width) = (700, 300);
        let (weights, matrix, x) = example(rows, width);
        let bias: Vec<f32> = (0..rows).map(|i| i as f32).collect();
        let products = HalfRows::new(&matrix)
            .expect("converted")
            .products(&x, &bias);
        assert_eq!(products.len(), rows);
        for ((row, product), bias) in weights.chunks_exact(width).zip(&products).zip(&bias) {
            let exact: f32 = bias + row.iter().zip(&x).map(|(w, x)| w * x).sum::<f32>();
            // Half precision keeps 11 significant bits of each weight.
            let bound: f32 = row.iter().zip(&x).map(|(w, x)| (w * x).abs()).sum::<f32>() / 2048.0;
            assert!(
                (exact - product).abs() <= bound + 1e-4,
                "{exact} vs {product}"
            );
        }
    }
}
