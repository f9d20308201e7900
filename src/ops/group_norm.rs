//! Group normalisation with its affine map and activation fused (`kernels/group_norm.cu`).

use super::pointwise::{run_affine, run_affine_mode, AffineArgs};
use crate::backend::geometry::Activation;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// GroupNorm (biased variance, `eps` inside the square root), then `scale`/`shift` (per channel: the
/// affine of nn.GroupNorm; per sample: AdaGN) and `act`. `args.center` must be None.
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    eps: f32,
    args: &AffineArgs<'_>,
    act: Activation,
) -> Result<Tensor> {
    if args.center.is_some() {
        return Err(Error::InvalidParam {
            op: "group_norm",
            what: "center",
            rule: "absent (the group mean is the center)",
            found: "a tensor".into(),
        });
    }
    run_affine("group_norm", x, args, act, Some((groups, eps)))
}

/// A GroupNorm (with its affine and activation) left for the next convolution to apply as it loads
/// its input ([`super::conv2d_fused`]): the per-(sample, channel) statistics and affine folded into
/// `fold` `[n, c, 4]` = (mean, rstd·scale, shift, 1 if there is a shift), and the activation. The
/// convolution then sees exactly the values [`group_norm`] would have written (the same operations in
/// the same order), without the normalised tensor ever being stored.
#[derive(Debug)]
pub struct NormFold {
    pub fold: Tensor,
    pub act: Activation,
}

/// The statistics and affine of [`group_norm`] over `x`, folded for a convolution's prologue.
pub fn group_norm_fold(
    x: &Tensor,
    groups: usize,
    eps: f32,
    args: &AffineArgs<'_>,
    act: Activation,
) -> Result<NormFold> {
    if args.center.is_some() {
        return Err(Error::InvalidParam {
            op: "group_norm_fold",
            what: "center",
            rule: "absent (the group mean is the center)",
            found: "a tensor".into(),
        });
    }
    let fold = run_affine_mode("group_norm_fold", x, args, act, Some((groups, eps)), true)?;
    Ok(NormFold { fold, act })
}
