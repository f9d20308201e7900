//! CLD's SSCS analytic half step on the whole batch (`kernels/cld_sscs.cu`): the CPU runs the unfused
//! sequence of axpby passes (the reference), the GPU one fused kernel repeating its rounded
//! operations.

use super::cld_draw::{check_state, pair, philox_of, tensor_of, UDraw};
use super::dispatch::dispatch;
use crate::backend::{CldSscsOps, CldState};
use crate::error::Result;
use crate::kernels::params::{TriSscsHalfStep, TriSscsStepParams};
use crate::tensor::Tensor;

/// The coefficients as the sampler rounds them to fp32: (a_xx, a_xv, a_vx, a_vv, l11, l21, l22).
fn rounded(k: &TriSscsHalfStep) -> [f32; 7] {
    [
        (k.e1 * k.cxx) as f32,
        (k.e1 * k.cxv) as f32,
        (k.e1 * k.cvx) as f32,
        (k.e1 * k.cvv) as f32,
        k.l11 as f32,
        k.l21 as f32,
        k.l22 as f32,
    ]
}

/// One SSCS analytic half step: x' = e1 (cxx x + cxv v) + l11 z_x, v' = e1 (cvx x + cvv v) + l21 z_x +
/// l22 z_v, of x and v (NHWC [B, H, W, C], f32, one device).
pub fn cld_sscs_half_step(
    x: &Tensor,
    v: &Tensor,
    k: &TriSscsHalfStep,
    noise: UDraw<'_>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "sscs half step";
    let [b, h, w, c] = check_state(OP, x, &[("v", v)], Some(noise))?;
    let [axx, axv, avx, avv, l11, l21, l22] = rounded(k);
    let (draw, c32) = philox_of(OP, [b, h, w, c], Some(noise))?;
    let z = tensor_of(Some(noise));
    let p = TriSscsStepParams {
        noise: draw,
        pixels: (b * h * w) as u64,
        c: c32,
        has_noise: z.is_some() as u32,
        a_xx: axx,
        a_xv: axv,
        a_vx: avx,
        a_vv: avv,
        l11,
        l21,
        l22,
        pad: 0,
    };
    let out = match z {
        None => dispatch!(pair OP, [x, v], |x, v| {
            S::cld_sscs_half_step(CldState { x, v, noise: None }, &p)?
        }),
        Some(z) => dispatch!(pair OP, [x, v, z], |x, v, z| {
            S::cld_sscs_half_step(CldState { x, v, noise: Some(z) }, &p)?
        }),
    };
    pair(x, out)
}
