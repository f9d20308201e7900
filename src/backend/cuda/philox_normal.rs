//! Launch of `kernels/philox_normal.cu`.

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::backend::PhiloxNormalOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::TriRandnParams;

impl PhiloxNormalOps for CudaStorage {
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()> {
        let out = self;
        if out.is_empty() {
            return Ok(());
        }
        let dev = std::sync::Arc::clone(out.device());
        let f = dev.function(match out.dtype() {
            DType::F32 => names::philox_normal::RANDN_PHILOX_F32,
            DType::BF16 => names::philox_normal::RANDN_PHILOX_BF16,
            DType::F16 => names::philox_normal::RANDN_PHILOX_F16,
        })?;
        let blocks = p.elems_per_sample.div_ceil(4) * p.num_samples as u64;
        let cfg = dev.launch_1d(blocks);
        let mut y = out.view_mut();
        // During a graph capture the sample index is read from the graph's per-batch word.
        let p = dev.philox_params(p);
        let mut launch = dev.stream().launch_builder(&f);
        launch.arg(&mut y).arg(&p);
        // SAFETY: `randn_philox_<dtype>(T* out, TriRandnParams p)`: argument order and types are fixed here,
        // the kernel named after out's dtype so T matches the storage. Bounds: the kernel writes exactly
        // p.num_samples * p.elems_per_sample elements, which ops::randn_into checked equals out.len(), and
        // `y` views exactly those bytes. Alignment: pool blocks are allocator-aligned (256 B), so the
        // kernel's float4 stores (taken only when the base is 16-byte aligned) stay aligned. Aliasing: `y`
        // is the only pointer argument. Ordering and lifetime: everything runs on the device's one stream,
        // and the block returns to the pool only after this call, so any reuse is queued behind the kernel.
        unsafe { launch.launch(cfg) }.map_err(Error::driver("randn", "cuLaunchKernel"))?;
        Ok(())
    }
}
