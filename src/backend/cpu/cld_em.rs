//! CPU reference of `kernels/cld_em.cu`: CLD's Euler–Maruyama step (and the noiseless denoising step)
//! as the unfused sequence of axpby passes the kernel's rounded operations repeat.

use super::cld_sscs::{state, u_draw};
use super::elementwise::axpby_f32;
use super::CpuStorage;
use crate::backend::{CldEmOps, CldState};
use crate::error::{Error, Result};
use crate::kernels::params::{
    TriCldEmParams, TRI_CLD_NOISE_NONE, TRI_CLD_NOISE_PHILOX, TRI_CLD_NOISE_TENSOR,
};

impl CldEmOps for CpuStorage {
    fn cld_em_step(s: CldState<'_, Self>, alpha: &Self, p: &TriCldEmParams) -> Result<[Self; 2]> {
        const OP: &str = "cld em step";
        let (pixels, c) = (p.pixels as usize, p.c as usize);
        let n = pixels * c;
        let [x, v, alpha] = state(OP, [("x", s.x), ("v", s.v), ("alpha", alpha)], n)?;
        let noise = s.noise;
        let z = match (p.noise_mode, noise) {
            (TRI_CLD_NOISE_NONE, None) => None,
            (TRI_CLD_NOISE_TENSOR, Some(_)) | (TRI_CLD_NOISE_PHILOX, None) => {
                Some(u_draw(OP, noise, &p.noise, n)?)
            }
            _ => return Err(Error::InvalidParam {
                op: OP,
                what: "noise",
                rule:
                    "a [pixels, 2c] tensor, a Philox draw of that layout, or none, as noise_mode says",
                found: format!("mode {} with a tensor: {}", p.noise_mode, noise.is_some()),
            }),
        };
        let (mut x2, mut v2) = (vec![0f32; n], vec![0f32; n]);
        for px in 0..pixels {
            for ch in 0..c {
                let i = px * c + ch;
                let s = axpby_f32(p.neg_ell, alpha[i], p.neg_inv_svv, v[i]);
                x2[i] = axpby_f32(p.a_xv, v[i], 1.0, x[i]);
                let mut vi = axpby_f32(p.c_vs, s, 1.0, axpby_f32(p.c_vx, x[i], p.c_vv, v[i]));
                if let Some(z) = &z {
                    vi = axpby_f32(p.diffusion, z[px * 2 * c + c + ch], 1.0, vi);
                }
                v2[i] = vi;
            }
        }
        Ok([CpuStorage::F32(x2), CpuStorage::F32(v2)])
    }
}
