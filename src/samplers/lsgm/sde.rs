//! LSGM's latent SDEs: sigma^2(t) and g^2(t) (`kernels/common/lsgm_sde.h`, float32 as in the official
//! code), and the mixed noise prediction that combines the network with the Normal-prior part.

use crate::error::{Error, Result};
pub use crate::kernels::params::TriLsgmSde as LsgmSde;

mod ffi {
    use crate::kernels::params::TriLsgmSde;
    extern "C" {
        pub fn trilemma_lsgm_var(sde: *const TriLsgmSde, t: f32) -> f32;
        pub fn trilemma_lsgm_g2(sde: *const TriLsgmSde, t: f32) -> f32;
    }
}

/// `lo` and `hi` (named by `what`) are finite with 0 < lo < hi.
fn check_increasing(what: &'static str, rule: &'static str, lo: f64, hi: f64) -> Result<()> {
    if lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < hi {
        return Ok(());
    }
    Err(Error::InvalidParam {
        op: "lsgm sde",
        what,
        rule,
        found: format!("{lo}, {hi}"),
    })
}

impl LsgmSde {
    /// The VP-SDE of the CIFAR-10 (balanced, best FID), MNIST and CelebA-HQ models.
    pub fn vp(beta_start: f64, beta_end: f64, sigma2_0: f64) -> Result<LsgmSde> {
        let rule = "finite with 0 < beta_start < beta_end";
        check_increasing("beta_start, beta_end", rule, beta_start, beta_end)?;
        let sde = LsgmSde {
            beta_start,
            beta_end,
            sigma2_0,
            ..LsgmSde::default()
        };
        sde.check_sigma2_0()
    }

    /// The geometric SDE of the best-NLL CIFAR-10 model.
    pub fn geometric(sigma2_min: f64, sigma2_max: f64, sigma2_0: f64) -> Result<LsgmSde> {
        let rule = "finite with 0 < sigma2_min < sigma2_max";
        check_increasing("sigma2_min, sigma2_max", rule, sigma2_min, sigma2_max)?;
        let sde = LsgmSde {
            geometric: 1,
            sigma2_0,
            sigma2_min,
            sigma2_max,
            ..LsgmSde::default()
        };
        sde.check_sigma2_0()
    }

    fn check_sigma2_0(self) -> Result<LsgmSde> {
        if !(self.sigma2_0.is_finite() && (0.0..1.0).contains(&self.sigma2_0)) {
            return Err(Error::InvalidParam {
                op: "lsgm sde",
                what: "sigma2_0",
                rule: "in [0, 1)",
                found: self.sigma2_0.to_string(),
            });
        }
        Ok(self)
    }

    /// sigma^2(t), the marginal variance at time t.
    pub fn var(&self, t: f32) -> f32 {
        // SAFETY: reads one TriLsgmSde through `self` (a live #[repr(C)] value generated from the same
        // header) and returns a float; no pointer is kept.
        unsafe { ffi::trilemma_lsgm_var(self, t) }
    }

    /// g^2(t), the squared diffusion coefficient.
    pub fn g2(&self, t: f32) -> f32 {
        // SAFETY: as in `var`.
        unsafe { ffi::trilemma_lsgm_g2(self, t) }
    }
}

/// The mixed noise prediction of one element: (1 - a) sqrt(var) z + a eps_pred with a = sigmoid(logit),
/// in float32 in the official order.
pub fn mixed_eps(eps_pred: f32, z: f32, mixing_logit: f32, var: f32) -> f32 {
    let a = 1.0 / (1.0 + (-mixing_logit).exp());
    (1.0 - a) * (var.sqrt() * z) + a * eps_pred
}
