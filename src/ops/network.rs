//! Network ops on NHWC activations: validation, then dispatch to the backend holding the tensors
//! ([`NetworkOps`]). Convolution weights are `[kh, kw, in/groups, out]` (HWIO: the GEMM's B matrix
//! `[K, out]` row-major; see [`conv2d_weight_from_oihw`] for the re-layout of PyTorch weights).

use super::checks::{compatible, expect_shape, nhwc, positive};
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::CudaStorage;
use crate::backend::network::{
    Activation, BinaryOp, ChannelAffine, ChannelVector, Conv2dGeometry, GroupNormGeometry,
    NetworkOps, Nhwc, Resample2x, UpFirDnGeometry,
};
use crate::error::{Error, Result};
use crate::tensor::{Storage, Tensor};

static FLOPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Floating-point work of the matrix ops (conv2d, linear, attention) run since the last
/// [`reset_flop_count`], at 2 FLOPs per multiply-add: the count torch.utils.flop_counter reports, so
/// benchmark rates compare with the PyTorch baseline's. Process-wide.
pub fn flops_counted() -> u64 {
    FLOPS.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn reset_flop_count() {
    FLOPS.store(0, std::sync::atomic::Ordering::Relaxed);
}

fn count_flops(macs: usize) {
    FLOPS.fetch_add(2 * macs as u64, std::sync::atomic::Ordering::Relaxed);
}

fn wrap(storage: Storage, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_storage(storage, shape)
}

fn mixed<T>(op: &'static str) -> Result<T> {
    Err(Error::DeviceMismatch {
        op,
        a: "cpu".into(),
        b: "cuda".into(),
    })
}

/// Runs `cpu` or `cuda` on the storages of tensors already checked to share a device.
macro_rules! dispatch {
    ($op:expr, [$($t:ident),+], |$($s:ident),+| $body:expr) => {{
        #[allow(unused_parens)]
        match ($($t.storage()),+) {
            ($(Storage::Cpu($s)),+) => {
                type S = CpuStorage;
                Storage::Cpu($body)
            }
            ($(Storage::Cuda($s)),+) => {
                type S = CudaStorage;
                Storage::Cuda($body)
            }
            #[allow(unreachable_patterns)]
            _ => return mixed($op),
        }
    }};
}

// ---- convolution and dense ---------------------------------------------------------------------

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

/// `x` [n, h, w, ci] ⋆ `w` [kh, kw, ci/groups, co] (+ `bias` [co]) → [n, ho, wo, co].
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &Conv2dParams) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let s = nhwc(OP, "x", x)?;
    let [kh, kw, cig, co] = *w.shape() else {
        return Err(Error::InvalidParam {
            op: OP,
            what: "weight",
            rule: "a 4-D tensor [kh, kw, in/groups, out]",
            found: format!("shape {:?}", w.shape()),
        });
    };
    positive(OP, "stride", p.stride)?;
    positive(OP, "groups", p.groups)?;
    if s.c % p.groups != 0 || co % p.groups != 0 || cig * p.groups != s.c {
        return Err(Error::InvalidParam {
            op: OP,
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
    compatible(OP, "weight", w, x)?;
    if let Some(b) = bias {
        expect_shape(OP, "bias", b, &[co])?;
        compatible(OP, "bias", b, x)?;
    }
    let (hp, wp) = (
        s.h + p.padding.top + p.padding.bottom,
        s.w + p.padding.left + p.padding.right,
    );
    if hp < kh || wp < kw || kh == 0 || kw == 0 {
        return Err(Error::InvalidParam {
            op: OP,
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
    count_flops(g.n * g.ho * g.wo * co * kh * kw * cig);
    let storage = match bias {
        None => dispatch!(OP, [x, w], |xs, ws| S::conv2d(xs, ws, None, &g)?),
        Some(b) => dispatch!(OP, [x, w, b], |xs, ws, bs| S::conv2d(xs, ws, Some(bs), &g)?),
    };
    wrap(storage, &[g.n, g.ho, g.wo, co])
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

/// `x` [rows, in] · `w` [out, in]ᵀ (+ `bias` [out]) → [rows, out].
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
    compatible(OP, "weight", w, x)?;
    if let Some(b) = bias {
        expect_shape(OP, "bias", b, &[out_f])?;
        compatible(OP, "bias", b, x)?;
    }
    count_flops(rows * in_f * out_f);
    let storage = match bias {
        None => dispatch!(OP, [x, w], |xs, ws| S::linear(
            xs, ws, None, rows, in_f, out_f
        )?),
        Some(b) => dispatch!(OP, [x, w, b], |xs, ws, bs| S::linear(
            xs,
            ws,
            Some(bs),
            rows,
            in_f,
            out_f
        )?),
    };
    wrap(storage, &[rows, out_f])
}

// ---- normalisation and affine ------------------------------------------------------------------

/// A `[c]` or `[n, c]` vector argument of [`channel_affine`] / [`group_norm`].
fn vector_kind(
    op: &'static str,
    tensor: &'static str,
    v: &Tensor,
    x: &Tensor,
    s: &Nhwc,
) -> Result<bool> {
    compatible(op, tensor, v, x)?;
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

fn cpu_of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a CpuStorage> {
    match t.storage() {
        Storage::Cpu(v) => Ok(v),
        _ => mixed(op),
    }
}

fn cuda_of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a CudaStorage> {
    match t.storage() {
        Storage::Cuda(v) => Ok(v),
        _ => mixed(op),
    }
}

fn vector_arg<'a, S>(
    op: &'static str,
    t: Option<&'a Tensor>,
    per_sample: Option<bool>,
    get: fn(&'static str, &'a Tensor) -> Result<&'a S>,
) -> Result<Option<ChannelVector<'a, S>>> {
    match (t, per_sample) {
        (Some(t), Some(per_sample)) => Ok(Some(ChannelVector {
            data: get(op, t)?,
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

fn run_affine(
    op: &'static str,
    x: &Tensor,
    args: &AffineArgs<'_>,
    act: Activation,
    gn: Option<(usize, f32)>,
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
    macro_rules! run {
        ($S:ty, $xs:expr, $get:expr) => {{
            let a = ChannelAffine {
                n: s.n,
                pixels: s.pixels(),
                c: s.c,
                center: vector_arg(op, args.center, kc, $get)?,
                scale: vector_arg(op, args.scale, ks, $get)?,
                shift: vector_arg(op, args.shift, kb, $get)?,
                act,
            };
            match &geom {
                Some(g) => <$S as NetworkOps>::group_norm($xs, g, &a)?,
                None => <$S as NetworkOps>::channel_affine($xs, &a)?,
            }
        }};
    }
    let storage = match x.storage() {
        Storage::Cpu(xs) => Storage::Cpu(run!(CpuStorage, xs, cpu_of)),
        Storage::Cuda(xs) => Storage::Cuda(run!(CudaStorage, xs, cuda_of)),
    };
    wrap(storage, x.shape())
}

/// y = act((x − center)·scale + shift) per channel (vectors `[c]`) or per sample and channel (`[n, c]`).
pub fn channel_affine(x: &Tensor, args: &AffineArgs<'_>, act: Activation) -> Result<Tensor> {
    run_affine("channel_affine", x, args, act, None)
}

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

// ---- attention ---------------------------------------------------------------------------------

/// Packed q|k|v `[n, h, w, 3c]` → softmax(q·kᵀ/√c)·v `[n, h, w, c]` over all h·w positions.
pub fn attention(qkv: &Tensor) -> Result<Tensor> {
    const OP: &str = "attention";
    let s = nhwc(OP, "qkv", qkv)?;
    if s.c % 3 != 0 || s.c == 0 {
        return Err(Error::InvalidParam {
            op: OP,
            what: "qkv channels",
            rule: "a positive multiple of 3 (q, k and v packed)",
            found: s.c.to_string(),
        });
    }
    let c = s.c / 3;
    count_flops(2 * s.n * s.pixels() * s.pixels() * c);
    let storage = dispatch!(OP, [qkv], |xs| S::attention(xs, s.n, s.pixels(), c)?);
    wrap(storage, &[s.n, s.h, s.w, c])
}

// ---- resampling --------------------------------------------------------------------------------

/// upfirdn2d (see [`UpFirDnGeometry`]) with the `k`×`k` row-major `kernel`.
pub fn upfirdn2d(
    x: &Tensor,
    kernel: &[f32],
    up: usize,
    down: usize,
    pad: (isize, isize),
) -> Result<Tensor> {
    const OP: &str = "upfirdn2d";
    let s = nhwc(OP, "x", x)?;
    positive(OP, "up", up)?;
    positive(OP, "down", down)?;
    let k = (kernel.len() as f64).sqrt() as usize;
    if k == 0 || k * k != kernel.len() {
        return Err(Error::InvalidParam {
            op: OP,
            what: "kernel",
            rule: "a non-empty square k*k kernel",
            found: format!("{} taps", kernel.len()),
        });
    }
    let extent = |n: usize| (n * up) as isize + pad.0 + pad.1 - k as isize;
    let (eh, ew) = (extent(s.h), extent(s.w));
    if eh < 0 || ew < 0 {
        return Err(Error::InvalidParam {
            op: OP,
            what: "padding",
            rule: "leaving at least one kernel-sized window",
            found: format!(
                "pads {pad:?} on a {}x{} input with a {k}x{k} kernel",
                s.h, s.w
            ),
        });
    }
    let g = UpFirDnGeometry {
        n: s.n,
        h: s.h,
        w: s.w,
        c: s.c,
        up,
        down,
        pad0: pad.0,
        pad1: pad.1,
        k,
        ho: eh as usize / down + 1,
        wo: ew as usize / down + 1,
    };
    let storage = dispatch!(OP, [x], |xs| S::upfirdn2d(xs, &g, kernel)?);
    wrap(storage, &[s.n, g.ho, g.wo, s.c])
}

/// The normalised 2-D FIR kernel outer(k, k) / sum², times `gain`, rounded to f32 as the official code
/// builds it (numpy float32).
pub fn fir_kernel_2d(k: &[f32], gain: f32) -> Vec<f32> {
    let n = k.len();
    let mut out = vec![0.0f32; n * n];
    let mut sum = 0.0f32;
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = k[i] * k[j];
        }
    }
    for v in &out {
        sum += v;
    }
    for v in out.iter_mut() {
        *v = *v / sum * gain;
    }
    out
}

/// FIR upsample by 2 (layers.fir_upsample_2d): gain 4 keeps a constant image constant.
pub fn fir_upsample2x(x: &Tensor, k: &[f32]) -> Result<Tensor> {
    let kk = fir_kernel_2d(k, 4.0);
    let p = k.len() as isize - 2;
    upfirdn2d(x, &kk, 2, 1, ((p + 1) / 2 + 1, p / 2))
}

/// FIR downsample by 2 (layers.fir_downsample_2d).
pub fn fir_downsample2x(x: &Tensor, k: &[f32]) -> Result<Tensor> {
    let kk = fir_kernel_2d(k, 1.0);
    let p = k.len() as isize - 2;
    upfirdn2d(x, &kk, 1, 2, ((p + 1) / 2, p / 2))
}

/// FIR filter then a stride-2 valid conv with `w` [kw, kw, ci, co] (layers.fir_conv_downsample_2d).
pub fn fir_conv_downsample2x(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    k: &[f32],
) -> Result<Tensor> {
    let kk = fir_kernel_2d(k, 1.0);
    let kw = w.shape().get(1).copied().unwrap_or(1) as isize;
    let p = (k.len() as isize - 2) + (kw - 1);
    let filtered = upfirdn2d(x, &kk, 1, 1, ((p + 1) / 2, p / 2))?;
    conv2d(
        &filtered,
        w,
        bias,
        &Conv2dParams {
            stride: 2,
            padding: Padding::default(),
            groups: 1,
        },
    )
}

pub fn resample2x(x: &Tensor, mode: Resample2x) -> Result<Tensor> {
    const OP: &str = "resample2x";
    let s = nhwc(OP, "x", x)?;
    let shape = match mode {
        Resample2x::MeanDown => {
            if s.h % 2 != 0 || s.w % 2 != 0 {
                return Err(Error::InvalidParam {
                    op: OP,
                    what: "x",
                    rule: "even height and width for a 2x2 mean",
                    found: format!("{}x{}", s.h, s.w),
                });
            }
            [s.n, s.h / 2, s.w / 2, s.c]
        }
        _ => [s.n, s.h * 2, s.w * 2, s.c],
    };
    let storage = dispatch!(OP, [x], |xs| S::resample2x(xs, &s, mode)?);
    wrap(storage, &shape)
}

// ---- layout ------------------------------------------------------------------------------------

/// Concatenation along the last (channel) axis; all other dimensions must agree.
pub fn concat_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "concat_channels";
    let (ra, rb) = (a.shape().len(), b.shape().len());
    if ra == 0 || ra != rb || a.shape()[..ra - 1] != b.shape()[..rb - 1] {
        return Err(Error::ShapeMismatch {
            op: OP,
            tensor: "b",
            expected: a.shape().to_vec(),
            found: b.shape().to_vec(),
        });
    }
    compatible(OP, "b", b, a)?;
    let (ca, cb) = (a.shape()[ra - 1], b.shape()[rb - 1]);
    let pixels = a.shape()[..ra - 1].iter().product();
    let storage = dispatch!(OP, [a, b], |sa, sb| S::concat_channels(
        sa, sb, pixels, ca, cb
    )?);
    let mut shape = a.shape().to_vec();
    shape[ra - 1] = ca + cb;
    wrap(storage, &shape)
}

/// Channels `start..start + len` (last axis).
pub fn slice_channels(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    const OP: &str = "slice_channels";
    let r = x.shape().len();
    let c = x.shape().last().copied().unwrap_or(0);
    if r == 0 || start + len > c {
        return Err(Error::InvalidParam {
            op: OP,
            what: "channel range",
            rule: "inside the last axis",
            found: format!("{start}..{} of shape {:?}", start + len, x.shape()),
        });
    }
    let pixels = x.shape()[..r - 1].iter().product();
    let storage = dispatch!(OP, [x], |xs| S::slice_channels(xs, pixels, c, start, len)?);
    let mut shape = x.shape().to_vec();
    shape[r - 1] = len;
    wrap(storage, &shape)
}

/// The `ho`×`wo` window at (`top`, `left`).
pub fn crop(x: &Tensor, top: usize, left: usize, ho: usize, wo: usize) -> Result<Tensor> {
    const OP: &str = "crop";
    let s = nhwc(OP, "x", x)?;
    if top + ho > s.h || left + wo > s.w {
        return Err(Error::InvalidParam {
            op: OP,
            what: "window",
            rule: "inside the image",
            found: format!("{ho}x{wo} at ({top}, {left}) of {}x{}", s.h, s.w),
        });
    }
    let storage = dispatch!(OP, [x], |xs| S::crop(xs, &s, top, left, ho, wo)?);
    wrap(storage, &[s.n, ho, wo, s.c])
}

/// Mean over all pixels: [n, h, w, c] → [n, c].
pub fn channel_mean(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "channel_mean";
    let s = nhwc(OP, "x", x)?;
    let storage = dispatch!(OP, [x], |xs| S::channel_mean(xs, s.n, s.pixels(), s.c)?);
    wrap(storage, &[s.n, s.c])
}

/// DDGAN's PixelNorm of `[rows, dim]`: z / √(mean(z²) + 1e-8) per row, on the tensor's device (the
/// sampler keeps its state on the GPU, with no host round trip per step).
pub fn pixel_norm(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "pixel_norm";
    let [rows, dim] = *x.shape() else {
        return Err(Error::InvalidParam {
            op: OP,
            what: "x",
            rule: "a 2-D [rows, features] tensor",
            found: format!("shape {:?}", x.shape()),
        });
    };
    let storage = dispatch!(OP, [x], |xs| S::pixel_norm(xs, rows, dim)?);
    wrap(storage, &[rows, dim])
}

/// [n, c, h, w] → [n, h, w, c].
pub fn nchw_to_nhwc(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "nchw_to_nhwc";
    let [n, c, h, w] = *x.shape() else {
        return Err(Error::InvalidParam {
            op: OP,
            what: "x",
            rule: "a 4-D NCHW tensor",
            found: format!("shape {:?}", x.shape()),
        });
    };
    let s = Nhwc { n, h, w, c };
    let storage = dispatch!(OP, [x], |xs| S::permute_nchw(xs, &s, true)?);
    wrap(storage, &[n, h, w, c])
}

/// [n, h, w, c] → [n, c, h, w].
pub fn nhwc_to_nchw(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "nhwc_to_nchw";
    let s = nhwc(OP, "x", x)?;
    let storage = dispatch!(OP, [x], |xs| S::permute_nchw(xs, &s, false)?);
    wrap(storage, &[s.n, s.c, s.h, s.w])
}
