//! CPU reference of `kernels/philox_normal.cu`: the same header, compiled as host C++.

use half::{bf16, f16};

use super::CpuStorage;
use crate::backend::PhiloxNormalOps;
use crate::error::Result;
use crate::kernels::params::TriRandnParams;
use crate::rng::randn_f32_host;

/// fp32 normals rounded once to the storage type, as the kernel's store does.
fn fill_rounded<T>(out: &mut [T], p: &TriRandnParams, round: impl Fn(f32) -> T) {
    let mut z = vec![0f32; out.len()];
    randn_f32_host(p, &mut z);
    out.iter_mut().zip(&z).for_each(|(o, &z)| *o = round(z));
}

impl PhiloxNormalOps for CpuStorage {
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()> {
        match self {
            CpuStorage::F32(v) => randn_f32_host(p, v),
            CpuStorage::BF16(v) => fill_rounded(v, p, bf16::from_f32),
            CpuStorage::F16(v) => fill_rounded(v, p, f16::from_f32),
        }
        Ok(())
    }
}
