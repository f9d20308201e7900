//! CPU reference of `kernels/cld_sscs.cu`: CLD's SSCS analytic half step as the unfused sequence of
//! axpby passes the kernel's rounded operations repeat, and the u-shaped draw both CLD steps read.

use super::elementwise::axpby_f32;
use super::CpuStorage;
use crate::backend::{CldSscsOps, CldState};
use crate::error::{Error, Result};
use crate::kernels::params::{TriRandnParams, TriSscsStepParams};
use crate::rng::randn_f32_host;

/// The `[pixels, 2c]` draw (x half first): the given tensor, or the normals of `r`.
pub(super) fn u_draw<'a>(
    op: &'static str,
    noise: Option<&'a CpuStorage>,
    r: &TriRandnParams,
    n: usize,
) -> Result<std::borrow::Cow<'a, [f32]>> {
    let z = match noise {
        Some(z) => std::borrow::Cow::Borrowed(z.f32s(op)?),
        None => {
            if (r.num_samples as u64).checked_mul(r.elems_per_sample) != Some(2 * n as u64) {
                return Err(Error::InvalidParam {
                    op,
                    what: "noise layout",
                    rule: "num_samples × elems_per_sample = the [pixels, 2c] draw",
                    found: format!("{} × {}", r.num_samples, r.elems_per_sample),
                });
            }
            let mut z = vec![0f32; 2 * n];
            randn_f32_host(r, &mut z);
            std::borrow::Cow::Owned(z)
        }
    };
    if z.len() != 2 * n {
        return Err(Error::ShapeMismatch {
            op,
            tensor: "noise",
            expected: vec![2 * n],
            found: vec![z.len()],
        });
    }
    Ok(z)
}

/// The state tensors as f32 slices of `n` values each.
pub(super) fn state<'a, const N: usize>(
    op: &'static str,
    named: [(&'static str, &'a CpuStorage); N],
    n: usize,
) -> Result<[&'a [f32]; N]> {
    let mut slices = Vec::with_capacity(N);
    for (name, s) in named {
        let s = s.f32s(op)?;
        if s.len() != n {
            return Err(Error::ShapeMismatch {
                op,
                tensor: name,
                expected: vec![n],
                found: vec![s.len()],
            });
        }
        slices.push(s);
    }
    // N names give N slices.
    slices.try_into().map_err(|_| Error::InvalidParam {
        op,
        what: "state",
        rule: "one slice per tensor",
        found: format!("{N} tensors"),
    })
}

impl CldSscsOps for CpuStorage {
    fn cld_sscs_half_step(s: CldState<'_, Self>, p: &TriSscsStepParams) -> Result<[Self; 2]> {
        const OP: &str = "sscs half step";
        let (pixels, c) = (p.pixels as usize, p.c as usize);
        let n = pixels * c;
        let [x, v] = state(OP, [("x", s.x), ("v", s.v)], n)?;
        let z = u_draw(OP, s.noise, &p.noise, n)?;
        let (mut x2, mut v2) = (vec![0f32; n], vec![0f32; n]);
        for px in 0..pixels {
            for ch in 0..c {
                let i = px * c + ch;
                let (zx, zv) = (z[px * 2 * c + ch], z[px * 2 * c + c + ch]);
                x2[i] = axpby_f32(p.l11, zx, 1.0, axpby_f32(p.a_xx, x[i], p.a_xv, v[i]));
                let v1 = axpby_f32(p.l21, zx, 1.0, axpby_f32(p.a_vx, x[i], p.a_vv, v[i]));
                v2[i] = axpby_f32(p.l22, zv, 1.0, v1);
            }
        }
        Ok([CpuStorage::F32(x2), CpuStorage::F32(v2)])
    }
}
