//! A dense layer's bias added to its product in place, with the GELU after it where the layer
//! has one: the encoder's layers then finish without allocating, filling and reading a second
//! tensor of their size (up to 9 MB) for each step.

use crate::gelu::gelu_one;
use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;

/// Adds `bias` (one value per column) to every row of `x`, which must be contiguous and held by
/// nobody else (a product just computed), then, with `gelu`, replaces each value by its GELU.
pub(crate) fn add_bias_in_place(x: &Tensor, bias: &Tensor, gelu: bool) -> Result<()> {
    x.inplace_op2(bias, &AddBias { gelu })
}

struct AddBias {
    gelu: bool,
}

impl InplaceOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(values), CpuStorage::F32(bias)) = (storage, bias) else {
            candle_core::bail!("add-bias takes float32")
        };
        let (Some((from, to)), Some((bias_from, bias_to))) = (
            layout.contiguous_offsets(),
            bias_layout.contiguous_offsets(),
        ) else {
            candle_core::bail!("add-bias takes contiguous tensors")
        };
        let bias = &bias[bias_from..bias_to];
        if bias.is_empty() || (to - from) % bias.len() != 0 {
            candle_core::bail!("add-bias takes a bias as wide as the rows")
        }
        let arch = pulp::Arch::new();
        values[from..to].par_chunks_mut(bias.len()).for_each(|row| {
            arch.dispatch(AddBiasRow {
                row,
                bias,
                gelu: self.gelu,
            })
        });
        Ok(())
    }
}

/// One row of `AddBias`, compiled for the processor's vector instructions (see `rows`).
struct AddBiasRow<'a> {
    row: &'a mut [f32],
    bias: &'a [f32],
    gelu: bool,
}

impl pulp::WithSimd for AddBiasRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        // Plain loops: see `rows::dot`.
        if self.gelu {
            for (v, b) in self.row.iter_mut().zip(self.bias) {
                *v = gelu_one(*v + b);
            }
        } else {
            for (v, b) in self.row.iter_mut().zip(self.bias) {
                *v += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adds_the_bias_to_every_row_then_the_gelu() {
        let x = || Tensor::new(&[[1f32, -2.0, 0.5], [0.0, 3.0, -1.0]], &Device::Cpu);
        let bias = Tensor::new(&[0.5f32, 1.0, -0.5], &Device::Cpu).expect("a bias");
        let expected = x().and_then(|x| x.broadcast_add(&bias)).expect("a sum");
        let plain = x().expect("a matrix");
        add_bias_in_place(&plain, &bias, false).expect("added");
        assert_eq!(
            plain.to_vec2::<f32>().expect("values"),
            expected.to_vec2::<f32>().expect("values")
        );
        let activated = x().expect("a matrix");
        add_bias_in_place(&activated, &bias, true).expect("added");
        let want = expected
            .gelu_erf()
            .and_then(|y| y.to_vec2::<f32>())
            .expect("gelu");
        for (row, want) in activated
            .to_vec2::<f32>()
            .expect("values")
            .iter()
            .zip(&want)
        {
            for (a, b) in row.iter().zip(want) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }
}
