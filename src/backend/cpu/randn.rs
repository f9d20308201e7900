//! CPU reference of `kernels/philox_normal.cu`: the same header, compiled as host C++.

use half::{bf16, f16};

use super::CpuStorage;
use crate::error::Result;
use crate::kernels::params::TriRandnParams;
use crate::rng::randn_f32_host;

pub(super) fn randn_philox(out: &mut CpuStorage, p: &TriRandnParams) -> Result<()> {
    match out {
        CpuStorage::F32(v) => randn_f32_host(p, v),
        CpuStorage::BF16(v) => {
            let mut tmp = vec![0f32; v.len()];
            randn_f32_host(p, &mut tmp);
            v.iter_mut()
                .zip(&tmp)
                .for_each(|(o, &z)| *o = bf16::from_f32(z));
        }
        CpuStorage::F16(v) => {
            let mut tmp = vec![0f32; v.len()];
            randn_f32_host(p, &mut tmp);
            v.iter_mut()
                .zip(&tmp)
                .for_each(|(o, &z)| *o = f16::from_f32(z));
        }
    }
    Ok(())
}
