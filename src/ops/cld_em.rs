//! CLD's Euler–Maruyama step on the whole batch, after the network call (`kernels/cld_em.cu`); without
//! noise it is the final denoising step. The CPU runs the unfused sequence of axpby passes (the
//! reference), the GPU one fused kernel repeating its rounded operations.

use super::cld_draw::{check_state, pair, philox_of, tensor_of, UDraw};
use super::dispatch::dispatch;
use crate::backend::{CldEmOps, CldState};
use crate::error::Result;
use crate::kernels::params::{
    TriCldEmParams, TRI_CLD_NOISE_NONE, TRI_CLD_NOISE_PHILOX, TRI_CLD_NOISE_TENSOR,
};
use crate::tensor::Tensor;

/// The step's scalars, rounded to fp32 as the sampler rounds them (see TriCldEmParams).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CldEmCoefficients {
    /// −ℓ_t and −1/Σ_vv of the v-score s = −ℓ_t α − v/Σ_vv.
    pub neg_ell: f32,
    pub neg_inv_svv: f32,
    /// x' = a_xv v + x.
    pub a_xv: f32,
    /// v' = (c_vx x + c_vv v) + c_vs s (+ diffusion z_v).
    pub c_vx: f32,
    pub c_vv: f32,
    pub c_vs: f32,
    pub diffusion: f32,
}

/// One step of x, v with network output `alpha` (NHWC [B, H, W, C], f32, one device); `noise` None
/// for the noiseless denoising step.
pub fn cld_em_step(
    x: &Tensor,
    v: &Tensor,
    alpha: &Tensor,
    k: &CldEmCoefficients,
    noise: Option<UDraw<'_>>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "cld em step";
    let [b, h, w, c] = check_state(OP, x, &[("v", v), ("alpha", alpha)], noise)?;
    let (draw, c32) = philox_of(OP, [b, h, w, c], noise)?;
    let z = tensor_of(noise);
    let mode = match (noise, z) {
        (None, _) => TRI_CLD_NOISE_NONE,
        (Some(_), Some(_)) => TRI_CLD_NOISE_TENSOR,
        (Some(_), None) => TRI_CLD_NOISE_PHILOX,
    };
    let p = TriCldEmParams {
        noise: draw,
        pixels: (b * h * w) as u64,
        c: c32,
        noise_mode: mode,
        neg_ell: k.neg_ell,
        neg_inv_svv: k.neg_inv_svv,
        a_xv: k.a_xv,
        c_vx: k.c_vx,
        c_vv: k.c_vv,
        c_vs: k.c_vs,
        diffusion: k.diffusion,
        pad: 0,
    };
    let out = match z {
        None => dispatch!(pair OP, [x, v, alpha], |x, v, alpha| {
            S::cld_em_step(CldState { x, v, noise: None }, alpha, &p)?
        }),
        Some(z) => dispatch!(pair OP, [x, v, alpha, z], |x, v, alpha, z| {
            S::cld_em_step(CldState { x, v, noise: Some(z) }, alpha, &p)?
        }),
    };
    pair(x, out)
}
