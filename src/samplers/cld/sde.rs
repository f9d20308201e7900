//! CLD's symmetric splitting sampler (SSCS): the analytic half-step coefficients
//! (`kernels/common/cld_sscs.h`, float64 as in the official code).

use crate::error::{Error, Result};
pub use crate::kernels::params::{TriCldSde as CldSde, TriSscsHalfStep as SscsHalfStep};

mod ffi {
    use crate::kernels::params::{TriCldSde, TriSscsHalfStep};
    extern "C" {
        pub fn trilemma_cld_sscs_half_step(
            sde: *const TriCldSde,
            tau: f64,
            dt_half: f64,
            out: *mut TriSscsHalfStep,
        ) -> i32;
    }
}

impl CldSde {
    /// The SDE of a released configuration: CIFAR-10 and CelebA "paper" use beta(t) = 4; CelebA
    /// "post-paper" uses beta(t) = 0.1 + 6.9 t. M^-1 = 4 and no SSCS stabiliser in all of them.
    pub fn released(preset: &str) -> Result<CldSde> {
        let (beta0, beta1) = match preset {
            "cifar10" | "celeba_paper" => (4.0, 0.0),
            "celeba_post_paper" => (0.1, 6.9),
            other => {
                return Err(Error::InvalidParam {
                    op: "cld sde",
                    what: "preset",
                    rule: "one of cifar10, celeba_paper, celeba_post_paper",
                    found: other.to_string(),
                })
            }
        };
        Ok(CldSde {
            beta0,
            beta1,
            m_inv: 4.0,
            sscs_num_stab: 0.0,
        })
    }

    /// The analytic half step over `dt_half` from reverse time `tau` (both in [0, 1]).
    pub fn sscs_half_step(&self, tau: f64, dt_half: f64) -> Result<SscsHalfStep> {
        const OP: &str = "sscs half step";
        if !(tau.is_finite()
            && dt_half.is_finite()
            && (0.0..=1.0).contains(&tau)
            && dt_half > 0.0
            && tau + dt_half <= 1.0)
        {
            return Err(Error::InvalidParam {
                op: OP,
                what: "tau, dt_half",
                rule: "0 <= tau, 0 < dt_half, tau + dt_half <= 1",
                found: format!("{tau}, {dt_half}"),
            });
        }
        if !(self.m_inv > 0.0 && self.beta0.is_finite() && self.beta1.is_finite()) {
            return Err(Error::InvalidParam {
                op: OP,
                what: "CLD SDE",
                rule: "finite betas and M^-1 > 0",
                found: format!("{self:?}"),
            });
        }
        let mut out = SscsHalfStep::default();
        // SAFETY: the C function reads one TriCldSde through `self` and writes one TriSscsHalfStep
        // through `out`, both live #[repr(C)] values generated from the same header; no pointer is kept.
        let rc = unsafe { ffi::trilemma_cld_sscs_half_step(self, tau, dt_half, &mut out) };
        if rc != 0 {
            return Err(Error::InvalidParam {
                op: OP,
                what: "noise covariance",
                rule: "positive definite (float64 precision lost for this step size)",
                found: format!("tau {tau}, dt_half {dt_half}"),
            });
        }
        Ok(out)
    }
}
