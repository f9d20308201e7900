//! Launch of `kernels/group_norm.cu`: one CTA per (sample, group), the affine map and activation
//! fused after the normalisation.

use std::sync::Arc;

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::launch::{check_placed, for_dtype, launch_error, u32_of};
use super::pointwise::affine_params;
use super::CudaStorage;
use crate::backend::geometry::{ChannelAffine, GroupNormGeometry};
use crate::backend::GroupNormOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::{names, Kernel};
use crate::kernels::params::TriGroupNormParams;

impl GroupNormOps for CudaStorage {
    fn group_norm(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        use names::group_norm as k;
        run(
            "group_norm (cuda)",
            [k::GROUP_NORM_F32, k::GROUP_NORM_BF16, k::GROUP_NORM_F16],
            (g.n * g.pixels * g.c, x.dtype()),
            x,
            g,
            a,
        )
    }

    fn group_norm_fold(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        use names::group_norm as k;
        run(
            "group_norm_fold (cuda)",
            [k::GROUP_NORM_FOLD_F32, k::GROUP_NORM_FOLD_BF16, k::GROUP_NORM_FOLD_F16],
            (g.n * g.c * 4, DType::F32),
            x,
            g,
            a,
        )
    }
}

/// Launches the kernel of `kernels` for x's storage type (group_norm_*, writing that type, or
/// group_norm_fold_* writing `[n, c, 4]` f32) with an output of `out` (length, dtype): one CTA of 256
/// threads per (sample, group).
fn run(
    op: &'static str,
    kernels: [Kernel; 3],
    (out_len, out_dtype): (usize, DType),
    x: &CudaStorage,
    g: &GroupNormGeometry,
    a: &ChannelAffine<'_, CudaStorage>,
) -> Result<CudaStorage> {
    let dev = Arc::clone(x.device());
    let len = g.n * g.pixels * g.c;
    check_placed(op, "x", x, len, &dev)?;
    if a.n != g.n || a.pixels != g.pixels || a.c != g.c || g.groups == 0 || g.c % g.groups != 0 {
        return Err(Error::InvalidParam {
            op,
            what: "affine",
            rule: "the geometry's [n, pixels, c] with c divisible by groups",
            found: format!("[{}, {}, {}] for {:?}", a.n, a.pixels, a.c, g),
        });
    }
    let p = TriGroupNormParams {
        affine: affine_params(op, a, &dev)?,
        groups: u32_of(op, "groups", g.groups)?,
        eps: g.eps,
    };
    let ctas = u32_of(op, "batch × groups", g.n * g.groups)?;
    let mut out = CudaStorage::alloc(&dev, out_len, out_dtype)?;
    if len == 0 || out_len == 0 {
        return Ok(out);
    }
    let f = dev.function(for_dtype(kernels, x.dtype()))?;
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
    // __launch_bounds__) per (sample, group), each reading only its group's elements of x (and the
    // scale and shift vectors `affine_params` checked) and writing only its group's elements of the
    // output: the normalised values (n·pixels·c) or the fold's n·c·4.
    unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    Ok(out)
}
