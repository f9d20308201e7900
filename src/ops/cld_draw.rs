//! What CLD's two sampler steps share: the u-shaped draw ([B, H, W, 2C], x half first) as a tensor or
//! as Philox noise made inside the step, and the checks of the state tensors.

use super::dispatch::check_same_device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::params::TriRandnParams;
use crate::rng::{NoiseKey, NoiseStream};
use crate::tensor::{Storage, Tensor};

/// A draw shaped like CLD's u = [x; v], [B, H, W, 2C] (x half first), for SSCS half steps and
/// Euler–Maruyama steps: a tensor, or Philox noise made inside the step.
#[derive(Clone, Copy)]
pub enum UDraw<'a> {
    /// A [B, H, W, 2C] tensor (x half first).
    Tensor(&'a Tensor),
    /// The normals `ops::randn(&[B, H, W, 2C], .., key, first_sample)` would give.
    Philox { key: NoiseKey, first_sample: u32 },
}

/// Checks the state tensors (all f32 NHWC of `x`'s shape, one device) and the draw; returns
/// [B, H, W, C].
pub(super) fn check_state(
    op: &'static str,
    x: &Tensor,
    others: &[(&'static str, &Tensor)],
    noise: Option<UDraw<'_>>,
) -> Result<[usize; 4]> {
    let [b, h, w, c] = x.dims(op, "x", "NHWC [B, H, W, C]")?;
    for &(name, t) in [("x", x)].iter().chain(others) {
        if t.dtype() != DType::F32 {
            return Err(Error::DTypeMismatch {
                op,
                tensor: name,
                expected: DType::F32,
                found: t.dtype(),
            });
        }
        if t.shape() != x.shape() {
            return Err(Error::ShapeMismatch {
                op,
                tensor: name,
                expected: x.shape().to_vec(),
                found: t.shape().to_vec(),
            });
        }
        check_same_device(op, t, x)?;
    }
    if let Some(UDraw::Tensor(z)) = noise {
        let full = [b, h, w, 2 * c];
        if z.shape() != full || z.dtype() != DType::F32 {
            return Err(Error::ShapeMismatch {
                op,
                tensor: "noise",
                expected: full.to_vec(),
                found: z.shape().to_vec(),
            });
        }
        check_same_device(op, z, x)?;
    }
    Ok([b, h, w, c])
}

/// The Philox description of the draw for the backends (a placeholder when the draw is a tensor or
/// absent: the steps then read the tensor or no noise), and `c` as u32.
pub(super) fn philox_of(
    op: &'static str,
    [b, h, w, c]: [usize; 4],
    noise: Option<UDraw<'_>>,
) -> Result<(TriRandnParams, u32)> {
    let (key, first_sample) = match noise {
        Some(UDraw::Philox { key, first_sample }) => (key, first_sample),
        _ => (NoiseKey::new(0, NoiseStream::Step, 0), 0),
    };
    let c32 = u32::try_from(c).map_err(|_| Error::InvalidParam {
        op,
        what: "channels",
        rule: "below 2^32",
        found: c.to_string(),
    })?;
    Ok((key.draw(op, b, first_sample, (h * w * 2 * c) as u64)?, c32))
}

/// The noise tensor of the draw, if it is one.
pub(super) fn tensor_of(noise: Option<UDraw<'_>>) -> Option<&Tensor> {
    match noise {
        Some(UDraw::Tensor(z)) => Some(z),
        _ => None,
    }
}

/// The two outputs of a step, shaped like `x`.
pub(super) fn pair(x: &Tensor, (xo, vo): (Storage, Storage)) -> Result<(Tensor, Tensor)> {
    Ok((
        Tensor::from_storage(xo, x.shape())?,
        Tensor::from_storage(vo, x.shape())?,
    ))
}
