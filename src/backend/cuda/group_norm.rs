//! Launch of `kernels/group_norm.cu`: one CTA per (sample, group), the affine map and activation
//! fused after the normalisation.

use std::sync::Arc;

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::launch::{check, launch_error, u32_of};
use super::pointwise::affine_params;
use super::CudaStorage;
use crate::backend::geometry::{ChannelAffine, GroupNormGeometry};
use crate::backend::GroupNormOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::TriGroupNormParams;

impl GroupNormOps for CudaStorage {
    fn group_norm(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "group_norm (cuda)";
        let dev = Arc::clone(x.device());
        let len = g.n * g.pixels * g.c;
        check(OP, "x", x, len, &dev)?;
        if a.n != g.n || a.pixels != g.pixels || a.c != g.c || g.groups == 0 || g.c % g.groups != 0
        {
            return Err(Error::InvalidParam {
                op: OP,
                what: "affine",
                rule: "the geometry's [n, pixels, c] with c divisible by groups",
                found: format!("[{}, {}, {}] for {:?}", a.n, a.pixels, a.c, g),
            });
        }
        let p = TriGroupNormParams {
            affine: affine_params(OP, a, &dev)?,
            groups: u32_of(OP, "groups", g.groups)?,
            eps: g.eps,
        };
        let ctas = u32_of(OP, "batch × groups", g.n * g.groups)?;
        let mut out = CudaStorage::alloc(&dev, len, DType::F32)?;
        if len == 0 {
            return Ok(out);
        }
        let f = dev.function(names::group_norm::GROUP_NORM_F32)?;
        let cfg = LaunchConfig {
            grid_dim: (ctas, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let xv = x.view();
        let sv = a.scale.map_or(x, |v| v.data).view();
        let bv = a.shift.map_or(x, |v| v.data).view();
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&sv).arg(&bv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument in `launch.rs`; one CTA of 256 threads (the kernel's
        // __launch_bounds__) per (sample, group), each reading and writing only its group's elements.
        unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        Ok(out)
    }
}
