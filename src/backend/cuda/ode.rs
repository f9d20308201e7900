//! Launches of `kernels/ode.cu`: the ODE solvers' f64 vector arithmetic on the device. The error norm
//! is the only thing a solver step reads back: one f64.

use std::sync::Arc;

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::launch::{check, launch_error};
use super::{CudaStorage, CudaWide};
use crate::backend::{OdeCombination, OdeOps, OdeScaledNorm};
use crate::device::CudaDevice;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::{
    TriOdeCombineParams, TriOdeNormParams, TRI_ODE_MAX_TERMS, TRI_ODE_NORM_MAX_BLOCKS,
    TRI_ODE_NORM_THREADS,
};

/// Every vector has `len` doubles on `dev`; at most TRI_ODE_MAX_TERMS terms.
fn check_wide(
    op: &'static str,
    vectors: &[&CudaWide],
    terms: usize,
    len: usize,
    dev: &Arc<CudaDevice>,
) -> Result<()> {
    if terms > TRI_ODE_MAX_TERMS as usize {
        return Err(Error::InvalidParam {
            op,
            what: "terms",
            rule: "at most TRI_ODE_MAX_TERMS (7)",
            found: terms.to_string(),
        });
    }
    for v in vectors {
        if v.len() != len || !Arc::ptr_eq(v.device(), dev) {
            return Err(Error::InvalidParam {
                op,
                what: "ODE vectors",
                rule: "one length on one device",
                found: format!("{v:?} beside {len} values on cuda:{}", dev.ordinal()),
            });
        }
    }
    Ok(())
}

/// The weights in the kernels' fixed-size array.
fn weights(terms: &[(f64, &CudaWide)]) -> [f64; TRI_ODE_MAX_TERMS as usize] {
    let mut w = [0.0; TRI_ODE_MAX_TERMS as usize];
    for (slot, (wj, _)) in w.iter_mut().zip(terms) {
        *slot = *wj;
    }
    w
}

/// The seven derivative pointers: the terms', then `fill` for the slots the kernel does not read.
fn term_views<'a>(
    terms: &[(f64, &'a CudaWide)],
    fill: &'a CudaWide,
) -> Vec<cudarc::driver::CudaView<'a, u8>> {
    (0..TRI_ODE_MAX_TERMS as usize)
        .map(|j| terms.get(j).map_or(fill, |t| t.1).view())
        .collect()
}

impl OdeOps for CudaStorage {
    type Wide = CudaWide;

    fn ode_widen(x: &Self) -> Result<CudaWide> {
        const OP: &str = "ode widen (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, x.len(), &dev)?;
        let mut y = CudaWide::alloc(&dev, x.len())?;
        if x.is_empty() {
            return Ok(y);
        }
        let f = dev.function(names::ode::ODE_WIDEN_F32)?;
        let n = x.len() as u64;
        let (xv, mut yv) = (x.view(), y.view_mut());
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&mut yv).arg(&n);
        // SAFETY: `ode_widen_f32(const float* x, double* y, u64 n)`: x is f32 with n elements (checked),
        // y a fresh block of n doubles; ordering and lifetime as in launch.rs's shared argument.
        unsafe { l.launch(dev.launch_1d(n)) }.map_err(launch_error(OP))?;
        Ok(y)
    }

    fn ode_combine(
        c: &OdeCombination<'_, CudaWide>,
        keep_wide: bool,
    ) -> Result<(Self, Option<CudaWide>)> {
        const OP: &str = "ode combine (cuda)";
        let dev = Arc::clone(c.base.device());
        let len = c.base.len();
        let ks: Vec<&CudaWide> = c.terms.iter().map(|t| t.1).collect();
        check_wide(OP, &ks, ks.len(), len, &dev)?;
        let mut narrow = CudaStorage::alloc(&dev, len, DType::F32)?;
        // Without keep_wide the kernel never writes `wide`; a one-element block stands in for it.
        let mut wide = CudaWide::alloc(&dev, if keep_wide { len } else { 1 })?;
        if len > 0 {
            let p = TriOdeCombineParams {
                n: len as u64,
                h: c.h,
                w: weights(c.terms),
                terms: ks.len() as u32,
                write_wide: keep_wide as u32,
            };
            let f = dev.function(names::ode::ODE_COMBINE_F64)?;
            let base = c.base.view();
            let kv = term_views(c.terms, c.base);
            let (mut wv, mut nv) = (wide.view_mut(), narrow.view_mut());
            let mut l = dev.stream().launch_builder(&f);
            l.arg(&base);
            for v in &kv {
                l.arg(v);
            }
            l.arg(&mut wv).arg(&mut nv).arg(&p);
            // SAFETY: `ode_combine_f64(const double* base, const double* k0..k6, double* wide, float*
            // narrow, TriOdeCombineParams p)`, args in that order. base and the p.terms derivatives
            // read hold n doubles (checked); the unread slots point at base. narrow is a fresh block of
            // n floats; wide a fresh block of n doubles when write_wide, else never written. Outputs
            // are distinct from the inputs; ordering and lifetime as in launch.rs.
            unsafe { l.launch(dev.launch_1d(len as u64)) }.map_err(launch_error(OP))?;
        }
        Ok((narrow, keep_wide.then_some(wide)))
    }

    fn ode_scaled_sq_sum(n: &OdeScaledNorm<'_, CudaWide>) -> Result<f64> {
        const OP: &str = "ode error norm (cuda)";
        let [a, b] = n.scale_of;
        let dev = Arc::clone(a.device());
        let len = a.len();
        let mut vs: Vec<&CudaWide> = n.terms.iter().map(|t| t.1).collect();
        let terms = vs.len();
        vs.push(b);
        check_wide(OP, &vs, terms, len, &dev)?;
        if len == 0 {
            return Ok(0.0);
        }
        let threads = TRI_ODE_NORM_THREADS;
        // A grid that depends on the length alone: the same partial sums on every GPU.
        let blocks = (len as u64)
            .div_ceil(threads as u64)
            .clamp(1, TRI_ODE_NORM_MAX_BLOCKS as u64) as u32;
        let mut partials = CudaWide::alloc(&dev, blocks as usize)?;
        let mut total = CudaWide::alloc(&dev, 1)?;
        let p = TriOdeNormParams {
            n: len as u64,
            h: n.h,
            w: weights(n.terms),
            atol: n.atol,
            rtol: n.rtol,
            terms: terms as u32,
            blocks,
        };
        let first = dev.function(names::ode::ODE_SCALED_SQ_PARTIALS_F64)?;
        let (av, bv) = (a.view(), b.view());
        let kv = term_views(n.terms, a);
        {
            let mut pv = partials.view_mut();
            let mut l = dev.stream().launch_builder(&first);
            l.arg(&av).arg(&bv);
            for v in &kv {
                l.arg(v);
            }
            l.arg(&mut pv).arg(&p);
            let cfg = LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (threads, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: `ode_scaled_sq_partials_f64(const double* a, const double* b, const double*
            // k0..k6, double* partials, TriOdeNormParams p)`, args in that order; a, b and the p.terms
            // derivatives hold n doubles (checked), the unread slots point at a; exactly p.blocks CTAs
            // of TRI_ODE_NORM_THREADS (the kernel's launch bounds) each write partials[blockIdx.x] of a
            // fresh block of p.blocks doubles. Ordering and lifetime as in launch.rs.
            unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        }
        let second = dev.function(names::ode::ODE_SUM_PARTIALS_F64)?;
        let pv = partials.view();
        let mut tv = total.view_mut();
        let mut l = dev.stream().launch_builder(&second);
        l.arg(&pv).arg(&mut tv).arg(&blocks);
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: `ode_sum_partials_f64(const double* partials, double* out, u32 count)`: partials
        // holds `blocks` doubles written by the launch before it on this stream, out a fresh one-double
        // block; one CTA of TRI_ODE_NORM_THREADS. Ordering and lifetime as in launch.rs.
        unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        let sum = total.to_host()?;
        sum.first().copied().ok_or_else(|| Error::InvalidParam {
            op: OP,
            what: "read-back",
            rule: "one value",
            found: format!("{} values", sum.len()),
        })
    }
}
