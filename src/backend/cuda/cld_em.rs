//! Launch of `kernels/cld_em.cu`: CLD's fused Euler–Maruyama step (also the final denoising step).

use super::cld_sscs::{check_state, launch_step, philox_layout_ok};
use super::CudaStorage;
use crate::backend::{CldEmOps, CldState};
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::{
    TriCldEmParams, TRI_CLD_NOISE_NONE, TRI_CLD_NOISE_PHILOX, TRI_CLD_NOISE_TENSOR,
};

impl CldEmOps for CudaStorage {
    fn cld_em_step(s: CldState<'_, Self>, alpha: &Self, p: &TriCldEmParams) -> Result<[Self; 2]> {
        const OP: &str = "cld em step (cuda)";
        let n = (p.pixels * p.c as u64) as usize;
        check_state(OP, &s, &[("alpha", alpha)], n)?;
        let noise_ok = match (p.noise_mode, s.noise) {
            (TRI_CLD_NOISE_TENSOR, Some(_)) | (TRI_CLD_NOISE_NONE, None) => true,
            (TRI_CLD_NOISE_PHILOX, None) => philox_layout_ok(&p.noise, p.c, n),
            _ => false,
        };
        if !noise_ok {
            return Err(Error::InvalidParam {
                op: OP,
                what: "noise",
                rule:
                    "a [pixels, 2c] tensor, a Philox draw of that layout, or none, as noise_mode says",
                found: format!("mode {} with a tensor: {}", p.noise_mode, s.noise.is_some()),
            });
        }
        let p = TriCldEmParams {
            noise: s.x.device().philox_params(&p.noise),
            ..*p
        };
        launch_step(
            OP,
            names::cld_em::CLD_EM_STEP_F32,
            &[s.x, s.v, alpha],
            s.noise,
            n,
            &p,
        )
    }
}
