//! Convolution and dense layers over NHWC activations (`kernels/conv2d.cu`). Convolution weights are
//! `[kh, kw, in/groups, out]` (HWIO: the GEMM's B matrix `[K, out]` row-major; see
//! [`conv2d_weight_from_oihw`] for the re-layout of PyTorch weights). Weights are f32, or on a GPU at
//! `--precision bf16` / `fp16` may already be in that 16-bit type (a layer's packed copy,
//! [`crate::nn::PackedWeight`]); an f32 weight there is rounded for the call, to the same bits.

use super::checks::{compatible, expect_shape, f32_parameter, nhwc, positive};
use super::dispatch::{dispatch, wrap, StorageOf};
use super::group_norm::NormFold;
use super::flops::count_flops;
use crate::backend::geometry::{Conv2dGeometry, LinearGeometry};
use crate::backend::{Conv2dOps, ConvEpilogue};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Storage;
use crate::tensor::Tensor;

/// Padding of a conv: rows above/below, columns left/right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Padding {
    pub fn same(p: usize) -> Padding {
        Padding {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: usize,
    pub padding: Padding,
    pub groups: usize,
}

impl Conv2dParams {
    /// Stride 1, `(k − 1) / 2` zeros on every side, one group: the "same" conv of odd kernels.
    pub fn same(k: usize) -> Conv2dParams {
        Conv2dParams {
            stride: 1,
            padding: Padding::same((k - 1) / 2),
            groups: 1,
        }
    }
}

/// `x` \[n, h, w, ci\] ⋆ `w` \[kh, kw, ci/groups, co\] (+ `bias` \[co\]) → \[n, ho, wo, co\].
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &Conv2dParams) -> Result<Tensor> {
    conv2d_impl("conv2d", x, w, bias, &ConvFusion::none(), p)
}

/// `(x ⋆ w + bias + residual) · scale` in one kernel: the end of a residual block (NCSN++'s
/// `(x + h) / √2` with `h` this convolution), the residual `[n, ho, wo, co]` like the output. The
/// GPU adds and scales in the convolution's epilogue, so the sum never makes a pass of its own.
pub fn conv2d_residual(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    residual: &Tensor,
    scale: f32,
    p: &Conv2dParams,
) -> Result<Tensor> {
    let f = ConvFusion {
        residual: Some(residual),
        scale,
        ..ConvFusion::none()
    };
    conv2d_impl("conv2d_residual", x, w, bias, &f, p)
}

/// What a convolution fuses around its GEMM ([`conv2d_fused`]).
#[derive(Clone, Copy, Debug)]
pub struct ConvFusion<'a> {
    /// The input's GroupNorm and activation, applied as the input is loaded: the convolution of
    /// `group_norm(x, ...)` without that tensor ever being stored.
    pub norm: Option<&'a NormFold>,
    /// A second bias per image, `[n, co]`, added after `bias` (a residual block's projected time
    /// embedding).
    pub sample_bias: Option<&'a Tensor>,
    /// Added after the biases, `[n, ho, wo, co]`.
    pub residual: Option<&'a Tensor>,
    /// Multiplies the sum last.
    pub scale: f32,
}

impl ConvFusion<'_> {
    /// Nothing fused: the plain convolution.
    pub fn none() -> Self {
        ConvFusion {
            norm: None,
            sample_bias: None,
            residual: None,
            scale: 1.0,
        }
    }
}

/// `(norm(x) ⋆ w + bias + sample_bias + residual) · scale`, each part where `f` gives it (added in that
/// order), as one kernel on the GPU
/// (the prologue applies the GroupNorm fold to the input as it is loaded, zero padding staying zero as
/// in PyTorch, where the activated tensor is padded; the epilogue adds and scales). On the CPU: the
/// same operations, unfused.
pub fn conv2d_fused(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    f: &ConvFusion<'_>,
    p: &Conv2dParams,
) -> Result<Tensor> {
    conv2d_impl("conv2d_fused", x, w, bias, f, p)
}

fn conv2d_impl(
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    f: &ConvFusion<'_>,
    p: &Conv2dParams,
) -> Result<Tensor> {
    let s = nhwc(op, "x", x)?;
    let [kh, kw, cig, co] = w.dims(op, "weight", "a 4-D tensor [kh, kw, in/groups, out]")?;
    positive(op, "stride", p.stride)?;
    positive(op, "groups", p.groups)?;
    if s.c % p.groups != 0 || co % p.groups != 0 || cig * p.groups != s.c {
        return Err(Error::InvalidParam {
            op,
            what: "weight",
            rule: "[kh, kw, in/groups, out] with in and out divisible by groups",
            found: format!(
                "weight {:?} for {} input channels and {} groups",
                w.shape(),
                s.c,
                p.groups
            ),
        });
    }
    weight_beside(op, w, x)?;
    if let Some(b) = bias {
        expect_shape(op, "bias", b, &[co])?;
        f32_parameter(op, "bias", b, x)?;
    }
    let (hp, wp) = (
        s.h + p.padding.top + p.padding.bottom,
        s.w + p.padding.left + p.padding.right,
    );
    if hp < kh || wp < kw || kh == 0 || kw == 0 {
        return Err(Error::InvalidParam {
            op,
            what: "kernel",
            rule: "non-empty and no larger than the padded input",
            found: format!("{kh}x{kw} kernel over a {hp}x{wp} padded input"),
        });
    }
    let g = Conv2dGeometry {
        n: s.n,
        h: s.h,
        w: s.w,
        ci: s.c,
        co,
        kh,
        kw,
        stride: p.stride,
        pad_top: p.padding.top,
        pad_left: p.padding.left,
        ho: (hp - kh) / p.stride + 1,
        wo: (wp - kw) / p.stride + 1,
        groups: p.groups,
    };
    if let Some(r) = f.residual {
        expect_shape(op, "residual", r, &[g.n, g.ho, g.wo, co])?;
        compatible(op, "residual", r, x)?;
    }
    if let Some(sb) = f.sample_bias {
        expect_shape(op, "per-image bias", sb, &[g.n, co])?;
        f32_parameter(op, "per-image bias", sb, x)?;
    }
    if let Some(nf) = f.norm {
        expect_shape(op, "GroupNorm fold", &nf.fold, &[g.n, g.ci, 4])?;
        f32_parameter(op, "GroupNorm fold", &nf.fold, x)?;
    }
    if !f.scale.is_finite() {
        return Err(Error::InvalidParam {
            op,
            what: "scale",
            rule: "a finite number",
            found: format!("{}", f.scale),
        });
    }
    count_flops(g.n * g.ho * g.wo * co * kh * kw * cig);
    fn run<S: Conv2dOps + StorageOf>(
        op: &'static str,
        x: &S,
        w: &Tensor,
        bias: Option<&Tensor>,
        f: &ConvFusion<'_>,
        g: &Conv2dGeometry,
    ) -> Result<S> {
        let e = ConvEpilogue {
            prologue: f
                .norm
                .map(|nf| S::of(op, &nf.fold).map(|s| (s, nf.act)))
                .transpose()?,
            sample_bias: f.sample_bias.map(|b| S::of(op, b)).transpose()?,
            residual: f.residual.map(|r| S::of(op, r)).transpose()?,
            scale: f.scale,
        };
        let bias = bias.map(|b| S::of(op, b)).transpose()?;
        S::conv2d(x, S::of(op, w)?, bias, e, g)
    }
    let storage = match x.storage() {
        Storage::Cpu(xs) => Storage::Cpu(run(op, xs, w, bias, f, &g)?),
        Storage::Cuda(xs) => Storage::Cuda(run(op, xs, w, bias, f, &g)?),
    };
    wrap(storage, &[g.n, g.ho, g.wo, co])
}

/// A convolution's or linear layer's weight beside its input `x`: on the same device, and f32 or, on a
/// GPU, in the dtype its precision's kernels read weights in ([`crate::Precision::weight_dtype`]: a
/// layer's packed bf16 / fp16 copy), whatever the activations' storage type.
fn weight_beside(op: &'static str, w: &Tensor, x: &Tensor) -> Result<()> {
    super::dispatch::check_same_device(op, w, x)?;
    let packed = match x.storage() {
        Storage::Cuda(_) => Some(x.device().precision().weight_dtype()),
        Storage::Cpu(_) => None,
    };
    if w.dtype() == DType::F32 || Some(w.dtype()) == packed {
        Ok(())
    } else {
        Err(Error::DTypeMismatch {
            op,
            tensor: "weight",
            expected: DType::F32,
            found: w.dtype(),
        })
    }
}

/// PyTorch `[co, ci/groups, kh, kw]` weights as the engine's `[kh, kw, ci/groups, co]`.
pub fn conv2d_weight_from_oihw(w: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [co, ci, kh, kw] = shape;
    let mut out = vec![0.0f32; w.len()];
    for o in 0..co {
        for i in 0..ci {
            for y in 0..kh {
                for x in 0..kw {
                    out[((y * kw + x) * ci + i) * co + o] = w[((o * ci + i) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// `x` \[rows, in\] · `w` \[out, in\]ᵀ (+ `bias` \[out\]) → \[rows, out\].
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "linear";
    let (rows, in_f) = match *x.shape() {
        [r, i] => (r, i),
        _ => {
            return Err(Error::InvalidParam {
                op: OP,
                what: "x",
                rule: "a 2-D tensor [rows, in]",
                found: format!("shape {:?}", x.shape()),
            })
        }
    };
    let out_f = match *w.shape() {
        [o, i] if i == in_f => o,
        _ => {
            return Err(Error::ShapeMismatch {
                op: OP,
                tensor: "weight",
                expected: vec![w.shape().first().copied().unwrap_or(0), in_f],
                found: w.shape().to_vec(),
            })
        }
    };
    weight_beside(OP, w, x)?;
    if let Some(b) = bias {
        expect_shape(OP, "bias", b, &[out_f])?;
        f32_parameter(OP, "bias", b, x)?;
    }
    count_flops(rows * in_f * out_f);
    let g = LinearGeometry { rows, in_f, out_f };
    let storage = match bias {
        None => dispatch!(OP, [x, w], |xs, ws| S::linear(xs, ws, None, &g)?),
        Some(b) => dispatch!(OP, [x, w, b], |xs, ws, bs| S::linear(xs, ws, Some(bs), &g)?),
    };
    wrap(storage, &[rows, out_f])
}
