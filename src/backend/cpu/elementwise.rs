//! CPU reference of `kernels/elementwise.cu`: axpby and dtype casts.

use half::{bf16, f16};

use super::CpuStorage;
use crate::backend::ElementwiseOps;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// a*x + b*y as two rounded products and a rounded sum, as the kernel computes it (no fma).
#[inline]
pub(super) fn axpby_f32(a: f32, x: f32, b: f32, y: f32) -> f32 {
    let ax = a * x;
    let by = b * y;
    ax + by
}

impl ElementwiseOps for CpuStorage {
    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()> {
        match (self, x) {
            (CpuStorage::F32(y), CpuStorage::F32(x)) => {
                y.iter_mut()
                    .zip(x)
                    .for_each(|(y, &x)| *y = axpby_f32(a, x, b, *y));
            }
            (CpuStorage::BF16(y), CpuStorage::BF16(x)) => y
                .iter_mut()
                .zip(x)
                .for_each(|(y, x)| *y = bf16::from_f32(axpby_f32(a, x.to_f32(), b, y.to_f32()))),
            (CpuStorage::F16(y), CpuStorage::F16(x)) => y
                .iter_mut()
                .zip(x)
                .for_each(|(y, x)| *y = f16::from_f32(axpby_f32(a, x.to_f32(), b, y.to_f32()))),
            (y, x) => {
                return Err(Error::DTypeMismatch {
                    op: "axpby",
                    tensor: "x",
                    expected: y.dtype(),
                    found: x.dtype(),
                })
            }
        }
        Ok(())
    }

    fn cast(&self, dtype: DType) -> Result<Self> {
        Ok(CpuStorage::from_f32(&self.to_f32_vec(), dtype))
    }
}
