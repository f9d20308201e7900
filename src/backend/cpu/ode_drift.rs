//! CPU reference of `kernels/ode_drift.cu`: the CLD and LSGM probability-flow drifts, in the rounded
//! operations and order the kernels repeat (the official f32 op order for the network-facing parts).

use super::CpuStorage;
use crate::backend::OdeDriftOps;
use crate::error::Result;
use crate::kernels::params::{TriCldOdeDriftParams, TriLsgmOdeDriftParams};

impl OdeDriftOps for CpuStorage {
    fn cld_ode_drift(u: &Self, alpha: &Self, p: &TriCldOdeDriftParams) -> Result<Vec<f64>> {
        const OP: &str = "cld ode drift";
        let (u, alpha) = (u.f32s(OP)?, alpha.f32s(OP)?);
        let c = p.c as usize;
        let mut k = vec![0.0f64; u.len()];
        for ((kp, up), ap) in k
            .chunks_exact_mut(2 * c)
            .zip(u.chunks_exact(2 * c))
            .zip(alpha.chunks_exact(c))
        {
            for ch in 0..c {
                let (x, v32) = (up[ch] as f64, up[c + ch]);
                let v = v32 as f64;
                // The mixed score in the official f32 order, −v/Σ_vv + α·(−ℓ_t): near t = ε both terms
                // are large and nearly cancel, so the order of roundings shows in the error estimates.
                let s = (-v32) / p.svv + ap[ch] * p.neg_ell;
                kp[ch] = -(p.a_xv * v);
                kp[c + ch] = -(p.neg_b * x - p.c_vv * v) + p.c_vs * s as f64 * 0.5;
            }
        }
        Ok(k)
    }

    fn lsgm_ode_drift(
        z: &Self,
        eps: &Self,
        mix: &Self,
        p: &TriLsgmOdeDriftParams,
    ) -> Result<Vec<f64>> {
        const OP: &str = "lsgm ode drift";
        let (z, eps, mix) = (z.f32s(OP)?, eps.f32s(OP)?, mix.f32s(OP)?);
        let c = p.c as usize;
        Ok(z.iter()
            .zip(eps)
            .enumerate()
            .map(|(i, (&zi, &ei))| {
                let a = mix[i % c];
                let e = (1.0 - a) * (p.sd * zi) + a * ei;
                (-(p.ft * zi + p.half_g2 * e / p.sd)) as f64
            })
            .collect())
    }
}
