//! CPU reference of `kernels/ode.cu`: the ODE solvers' f64 combinations and scaled error norm, each
//! product rounded before it is added (Rust does not contract to fma), sums in index order.

use super::CpuStorage;
use crate::backend::{OdeCombination, OdeOps, OdeScaledNorm};
use crate::error::Result;

/// Σ_j w_j k_j[i] from −0, in j order.
fn terms_at(terms: &[(f64, &Vec<f64>)], i: usize) -> f64 {
    terms.iter().fold(-0.0, |acc, (w, k)| acc + k[i] * w)
}

/// `base + h · Σ_j w_j k_j`.
pub(crate) fn combine_f64(base: &[f64], h: f64, terms: &[(f64, &Vec<f64>)]) -> Vec<f64> {
    (0..base.len())
        .map(|i| base[i] + h * terms_at(terms, i))
        .collect()
}

/// `Σ_i (h · Σ_j w_j k_j[i] / (atol + rtol · max(|a_i|, |b_i|)))²`.
pub(crate) fn scaled_sq_sum_f64(n: &OdeScaledNorm<'_, Vec<f64>>) -> f64 {
    let [a, b] = n.scale_of;
    (0..a.len())
        .map(|i| {
            let e = terms_at(n.terms, i) * n.h;
            let q = e / (n.atol + a[i].abs().max(b[i].abs()) * n.rtol);
            q * q
        })
        .sum()
}

impl OdeOps for CpuStorage {
    type Wide = Vec<f64>;

    fn ode_widen(x: &Self) -> Result<Vec<f64>> {
        Ok(x.f32s("ode widen")?.iter().map(|&v| v as f64).collect())
    }

    fn ode_combine(
        c: &OdeCombination<'_, Vec<f64>>,
        keep_wide: bool,
    ) -> Result<(Self, Option<Vec<f64>>)> {
        let wide = combine_f64(c.base, c.h, c.terms);
        let narrow = CpuStorage::F32(wide.iter().map(|&v| v as f32).collect());
        Ok((narrow, keep_wide.then_some(wide)))
    }

    fn ode_scaled_sq_sum(n: &OdeScaledNorm<'_, Vec<f64>>) -> Result<f64> {
        Ok(scaled_sq_sum_f64(n))
    }
}
