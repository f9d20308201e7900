//! Per-element network ops (`kernels/pointwise.cu`): activations, binary ops, and the per-channel
//! affine map y = act((x − center)·scale + shift), whose arguments group_norm shares.

use super::checks::{compatible, expect_shape, f32_parameter, nhwc, positive};
use super::dispatch::{dispatch, wrap, StorageOf};
use crate::backend::geometry::{
    Activation, BinaryOp, ChannelAffine, ChannelVector, GroupNormGeometry, Nhwc,
};
use crate::backend::{GroupNormOps, PointwiseOps};
use crate::error::{Error, Result};
use crate::tensor::Storage;
use crate::tensor::Tensor;

/// A `[c]` or `[n, c]` vector argument of [`channel_affine`] / [`group_norm`].
fn vector_kind(
    op: &'static str,
    tensor: &'static str,
    v: &Tensor,
    x: &Tensor,
    s: &Nhwc,
) -> Result<bool> {
    f32_parameter(op, tensor, v, x)?;
    if v.shape() == [s.c] {
        Ok(false)
    } else if v.shape() == [s.n, s.c] {
        Ok(true)
    } else {
        Err(Error::ShapeMismatch {
            op,
            tensor,
            expected: vec![s.c],
            found: v.shape().to_vec(),
        })
    }
}

fn vector_arg<'a, S: StorageOf>(
    op: &'static str,
    t: Option<&'a Tensor>,
    per_sample: Option<bool>,
) -> Result<Option<ChannelVector<'a, S>>> {
    match (t, per_sample) {
        (Some(t), Some(per_sample)) => Ok(Some(ChannelVector {
            data: S::of(op, t)?,
            per_sample,
        })),
        _ => Ok(None),
    }
}

/// Tensor arguments of a per-channel affine: y = act((x − center)·scale + shift), each `[c]` or `[n, c]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AffineArgs<'a> {
    pub center: Option<&'a Tensor>,
    pub scale: Option<&'a Tensor>,
    pub shift: Option<&'a Tensor>,
}

pub(super) fn run_affine(
    op: &'static str,
    x: &Tensor,
    args: &AffineArgs<'_>,
    act: Activation,
    gn: Option<(usize, f32)>,
) -> Result<Tensor> {
    run_affine_mode(op, x, args, act, gn, false)
}

/// `run_affine`, or with `fold` (GroupNorm only) the `[n, c, 4]` fold of its statistics and affine
/// (`GroupNormOps::group_norm_fold`).
pub(super) fn run_affine_mode(
    op: &'static str,
    x: &Tensor,
    args: &AffineArgs<'_>,
    act: Activation,
    gn: Option<(usize, f32)>,
    fold: bool,
) -> Result<Tensor> {
    let s = nhwc(op, "x", x)?;
    let kinds = [
        ("center", args.center),
        ("scale", args.scale),
        ("shift", args.shift),
    ]
    .map(|(name, v)| v.map(|v| vector_kind(op, name, v, x, &s)).transpose());
    let [kc, ks, kb] = kinds;
    let (kc, ks, kb) = (kc?, ks?, kb?);
    let geom = match gn {
        Some((groups, eps)) => {
            positive(op, "groups", groups)?;
            if s.c % groups != 0 {
                return Err(Error::InvalidParam {
                    op,
                    what: "groups",
                    rule: "a divisor of the channel count",
                    found: format!("{groups} groups for {} channels", s.c),
                });
            }
            if !(eps.is_finite() && eps >= 0.0) {
                return Err(Error::InvalidParam {
                    op,
                    what: "eps",
                    rule: "finite and non-negative",
                    found: eps.to_string(),
                });
            }
            Some(GroupNormGeometry {
                n: s.n,
                pixels: s.pixels(),
                c: s.c,
                groups,
                eps,
            })
        }
        None => None,
    };
    fn run<S: GroupNormOps + PointwiseOps + StorageOf>(
        op: &'static str,
        xs: &S,
        s: &Nhwc,
        args: &AffineArgs<'_>,
        kinds: [Option<bool>; 3],
        act: Activation,
        // The GroupNorm's geometry, and whether to fold it instead of applying it.
        geom: Option<(&GroupNormGeometry, bool)>,
    ) -> Result<S> {
        let a = ChannelAffine {
            n: s.n,
            pixels: s.pixels(),
            c: s.c,
            center: vector_arg(op, args.center, kinds[0])?,
            scale: vector_arg(op, args.scale, kinds[1])?,
            shift: vector_arg(op, args.shift, kinds[2])?,
            act,
        };
        match geom {
            Some((g, true)) => S::group_norm_fold(xs, g, &a),
            Some((g, false)) => S::group_norm(xs, g, &a),
            None => S::channel_affine(xs, &a),
        }
    }
    let kinds = [kc, ks, kb];
    let gn_mode = geom.as_ref().map(|g| (g, fold));
    let storage = match x.storage() {
        Storage::Cpu(xs) => Storage::Cpu(run(op, xs, &s, args, kinds, act, gn_mode)?),
        Storage::Cuda(xs) => Storage::Cuda(run(op, xs, &s, args, kinds, act, gn_mode)?),
    };
    if fold && geom.is_some() {
        wrap(storage, &[s.n, s.c, 4])
    } else {
        wrap(storage, x.shape())
    }
}

/// y = act((x − center)·scale + shift) per channel (vectors `[c]`) or per sample and channel (`[n, c]`).
pub fn channel_affine(x: &Tensor, args: &AffineArgs<'_>, act: Activation) -> Result<Tensor> {
    run_affine("channel_affine", x, args, act, None)
}

pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    let storage = dispatch!("activation", [x], |xs| S::activation(xs, act)?);
    wrap(storage, x.shape())
}

/// Elementwise `a op b` on equal shapes.
pub fn binary(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    const OP: &str = "binary";
    expect_shape(OP, "b", b, a.shape())?;
    compatible(OP, "b", b, a)?;
    let storage = dispatch!(OP, [a, b], |sa, sb| S::binary(sa, sb, op)?);
    wrap(storage, a.shape())
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Add)
}

pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Mul)
}
