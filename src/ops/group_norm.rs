//! Group normalisation with its affine map and activation fused (`kernels/group_norm.cu`).

use super::pointwise::{run_affine, AffineArgs};
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
