//! Launches of `kernels/ode_drift.cu`: the probability-flow drifts into the solver's f64 derivative.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::launch::{check, launch_error};
use super::{CudaStorage, CudaWide};
use crate::backend::OdeDriftOps;
use crate::error::Result;
use crate::kernels::names;
use crate::kernels::params::{TriCldOdeDriftParams, TriLsgmOdeDriftParams};
use crate::kernels::Kernel;

/// Launches `kernel(const float* inputs..., double* k, P p)` over a fresh f64 output of `out_len`.
fn launch_drift<P: cudarc::driver::DeviceRepr>(
    op: &'static str,
    kernel: Kernel,
    inputs: &[&CudaStorage],
    items: usize,
    out_len: usize,
    p: &P,
) -> Result<CudaWide> {
    let dev = Arc::clone(inputs[0].device());
    let mut k = CudaWide::alloc(&dev, out_len)?;
    if items == 0 {
        return Ok(k);
    }
    let f = dev.function(kernel)?;
    let views: Vec<_> = inputs.iter().map(|t| t.view()).collect();
    let mut kv = k.view_mut();
    let mut l = dev.stream().launch_builder(&f);
    for v in &views {
        l.arg(v);
    }
    l.arg(&mut kv).arg(p);
    // SAFETY: the kernels' parameter lists are (inputs..., double* k, params) in this order; every
    // input was checked by the caller to hold what `p` describes, k is a fresh block of the out_len
    // doubles the kernel writes (one per item of u's layout). Ordering and lifetime as in launch.rs.
    unsafe { l.launch(dev.launch_1d(items as u64)) }.map_err(launch_error(op))?;
    Ok(k)
}

impl OdeDriftOps for CudaStorage {
    fn cld_ode_drift(u: &Self, alpha: &Self, p: &TriCldOdeDriftParams) -> Result<CudaWide> {
        const OP: &str = "cld ode drift (cuda)";
        let n = (p.pixels * p.c as u64) as usize;
        let dev = Arc::clone(u.device());
        check(OP, "u", u, 2 * n, &dev)?;
        check(OP, "alpha", alpha, n, &dev)?;
        launch_drift(
            OP,
            names::ode_drift::CLD_ODE_DRIFT_F32,
            &[u, alpha],
            n,
            2 * n,
            p,
        )
    }

    fn lsgm_ode_drift(
        z: &Self,
        eps: &Self,
        mix: &Self,
        p: &TriLsgmOdeDriftParams,
    ) -> Result<CudaWide> {
        const OP: &str = "lsgm ode drift (cuda)";
        let n = p.n as usize;
        let dev = Arc::clone(z.device());
        check(OP, "z", z, n, &dev)?;
        check(OP, "eps", eps, n, &dev)?;
        check(OP, "mix", mix, p.c as usize, &dev)?;
        launch_drift(
            OP,
            names::ode_drift::LSGM_ODE_DRIFT_F32,
            &[z, eps, mix],
            n,
            n,
            p,
        )
    }
}
