//! Weight rows stored as 8-bit integers with one scale per row, for the products of a single
//! activation row with a large matrix. Decoding a token multiplies one row by every decoder
//! weight and by the 51864-row vocabulary projection: the time goes into reading the weights,
//! and a quarter of the bytes reads in a quarter of the time (and fits in the cache). One scale
//! per row keeps the relative error of each output near that of its largest weight. The dot
//! product runs with the widest vector instructions the processor has (AVX2 where there is),
//! which the compiler uses only in code compiled for them: pulp detects them once and runs the
//! loop compiled so.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

/// Rows handed to one thread at a time: enough work to outweigh the hand-over.
const ROWS_PER_TASK: usize = 256;
/// Lanes of the dot product's independent sums, so that the compiler vectorises it.
const LANES: usize = 16;

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
        assert_eq!(x.len(), self.width, "a row of the matrix's width");
        let arch = pulp::Arch::new();
        let mut out = vec![0f32; self.scales.len()];
        out.par_chunks_mut(ROWS_PER_TASK)
            .zip(self.values.par_chunks(ROWS_PER_TASK * self.width))
            .zip(self.scales.par_chunks(ROWS_PER_TASK))
            .for_each(|((out, values), scales)| {
                arch.dispatch(RowProducts {
                    out,
                    values,
                    scales,
                    x,
                })
            });
        out
    }
}

/// Rows of `values` (each as wide as `x`) times `x`, times their scales, into `out`.
struct RowProducts<'a> {
    out: &'a mut [f32],
    values: &'a [i8],
    scales: &'a [f32],
    x: &'a [f32],
}

impl pulp::WithSimd for RowProducts<'_> {
    type Output = ();

    // Inlined into pulp's function for the detected instructions, and compiled for them.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let rows = self.values.chunks_exact(self.x.len());
        for ((o, row), scale) in self.out.iter_mut().zip(rows).zip(self.scales) {
            *o = dot(row, self.x) * scale;
        }
    }
}

#[inline(always)]
fn dot(q: &[i8], x: &[f32]) -> f32 {
    let mut sums = [0f32; LANES];
    let q_chunks = q.chunks_exact(LANES);
    let x_chunks = x.chunks_exact(LANES);
    let tail: f32 = q_chunks
        .remainder()
        .iter()
        .zip(x_chunks.remainder())
        .map(|(&q, &x)| f32::from(q) * x)
        .sum();
    for (q, x) in q_chunks.zip(x_chunks) {
        for ((sum, &q), &x) in sums.iter_mut().zip(q).zip(x) {
            *sum += f32::from(q) * x;
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn products_are_close_to_the_float_products() {
        let (rows, width) = (600, 37);
        let weights: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let x: Vec<f32> = (0..width).map(|i| (i as f32 * 0.37).sin()).collect();
        let matrix =
            Tensor::from_vec(weights.clone(), (rows, width), &Device::Cpu).expect("a matrix");
        let products = Int8Rows::quantize(&matrix).expect("quantized").products(&x);
        assert_eq!(products.len(), rows);
        for (row, product) in weights.chunks_exact(width).zip(&products) {
            let exact: f32 = row.iter().zip(&x).map(|(w, x)| w * x).sum();
            let bound: f32 = x.iter().map(|x| x.abs()).sum::<f32>() / 254.0;
            assert!((exact - product).abs() <= bound, "{exact} vs {product}");
        }
    }
}
