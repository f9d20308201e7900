//! The CUDA side of [`NetworkOps`]: launches of the kernels in `kernels/` (pointwise, group_norm,
//! layout, resample, conv2d, attention).
//! Shapes arrive validated by `crate::ops`; each launch re-checks what its `unsafe` block relies on
//! (dtype, element counts, one device) so that a wrong call is an error, never an out-of-bounds access.

use std::sync::Arc;

use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};

use super::CudaStorage;
use crate::backend::network::{
    Activation, BinaryOp, ChannelAffine, ChannelVector, Conv2dGeometry, GroupNormGeometry,
    NetworkOps, Nhwc, Resample2x, UpFirDnGeometry,
};
use crate::device::CudaDevice;
use crate::error::{Error, Result};
use crate::kernels::params::{
    TriActivationParams, TriAttentionParams, TriBinaryParams, TriChannelAffineParams,
    TriChannelCopyParams, TriChannelMeanParams, TriConv2dParams, TriCropParams, TriGroupNormParams,
    TriNhwc, TriPermuteParams, TriResample2xParams, TriUpFirDnParams, TRI_ATTENTION_MAX_C,
    TRI_UPFIRDN_MAX_K,
};
use crate::tensor::DType;

/// `s` is an f32 storage of exactly `len` elements on `dev`.
fn check(
    op: &'static str,
    tensor: &'static str,
    s: &CudaStorage,
    len: usize,
    dev: &Arc<CudaDevice>,
) -> Result<()> {
    if s.dtype() != DType::F32 {
        return Err(Error::DTypeMismatch {
            op,
            tensor,
            expected: DType::F32,
            found: s.dtype(),
        });
    }
    if s.len() != len {
        return Err(Error::ShapeMismatch {
            op,
            tensor,
            expected: vec![len],
            found: vec![s.len()],
        });
    }
    if !Arc::ptr_eq(s.device(), dev) {
        return Err(Error::DeviceMismatch {
            op,
            a: format!("cuda:{}", dev.ordinal()),
            b: format!("cuda:{}", s.device().ordinal()),
        });
    }
    Ok(())
}

/// A count that the kernel's u32 fields hold.
fn u32_of(op: &'static str, what: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::InvalidParam {
        op,
        what,
        rule: "below 2^32 for the CUDA kernels",
        found: v.to_string(),
    })
}

fn nhwc(op: &'static str, s: &Nhwc) -> Result<TriNhwc> {
    Ok(TriNhwc {
        n: u32_of(op, "batch", s.n)?,
        h: u32_of(op, "height", s.h)?,
        w: u32_of(op, "width", s.w)?,
        c: u32_of(op, "channels", s.c)?,
    })
}

fn activation_code(a: Activation) -> (i32, f32) {
    use crate::kernels::params as k;
    let (k, arg) = match a {
        Activation::Identity => (k::TRI_ACT_IDENTITY, 0.0),
        Activation::Silu => (k::TRI_ACT_SILU, 0.0),
        Activation::Elu => (k::TRI_ACT_ELU, 0.0),
        Activation::Relu => (k::TRI_ACT_RELU, 0.0),
        Activation::LeakyRelu(s) => (k::TRI_ACT_LEAKY_RELU, s),
        Activation::Tanh => (k::TRI_ACT_TANH, 0.0),
        Activation::Sigmoid => (k::TRI_ACT_SIGMOID, 0.0),
        Activation::SoftClamp(b) => (k::TRI_ACT_SOFT_CLAMP, b),
        Activation::Exp => (k::TRI_ACT_EXP, 0.0),
    };
    (k as i32, arg)
}

/// Checks one optional affine vector ([c] or [n, c]); returns (present, per_sample).
fn vector_flags(
    op: &'static str,
    tensor: &'static str,
    v: Option<ChannelVector<'_, CudaStorage>>,
    n: usize,
    c: usize,
    dev: &Arc<CudaDevice>,
) -> Result<(u32, u32)> {
    match v {
        None => Ok((0, 0)),
        Some(v) => {
            check(
                op,
                tensor,
                v.data,
                if v.per_sample { n * c } else { c },
                dev,
            )?;
            Ok((1, v.per_sample as u32))
        }
    }
}

fn affine_params(
    op: &'static str,
    a: &ChannelAffine<'_, CudaStorage>,
    dev: &Arc<CudaDevice>,
) -> Result<TriChannelAffineParams> {
    let (has_center, center_per_sample) = vector_flags(op, "center", a.center, a.n, a.c, dev)?;
    let (has_scale, scale_per_sample) = vector_flags(op, "scale", a.scale, a.n, a.c, dev)?;
    let (has_shift, shift_per_sample) = vector_flags(op, "shift", a.shift, a.n, a.c, dev)?;
    let (act, act_arg) = activation_code(a.act);
    Ok(TriChannelAffineParams {
        rows: (a.n * a.pixels) as u64,
        pixels: u32_of(op, "pixels", a.pixels)?,
        c: u32_of(op, "channels", a.c)?,
        has_center,
        center_per_sample,
        has_scale,
        scale_per_sample,
        has_shift,
        shift_per_sample,
        act,
        act_arg,
    })
}

/// A fresh output of `len` f32 elements and the 1-D launch over it, or None for an empty output.
fn output(dev: &Arc<CudaDevice>, len: usize) -> Result<(CudaStorage, Option<LaunchConfig>)> {
    let out = CudaStorage::alloc(dev, len, DType::F32)?;
    let cfg = (len > 0).then(|| dev.launch_1d(len as u64));
    Ok((out, cfg))
}

fn launch_error(op: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> Error {
    Error::driver(op, "cuLaunchKernel")
}

/// Launches `module::kernel(const float* x, float* y, P p)` over a fresh f32 output of `out_len`
/// values, 1-D grid-stride; the caller has checked `x` against what `p` describes.
fn launch_unary<P: DeviceRepr>(
    op: &'static str,
    module: &'static str,
    kernel: &str,
    x: &CudaStorage,
    out_len: usize,
    p: &P,
) -> Result<CudaStorage> {
    let dev = Arc::clone(x.device());
    let (mut out, cfg) = output(&dev, out_len)?;
    let Some(cfg) = cfg else { return Ok(out) };
    let f = dev.function(module, kernel)?;
    let xv = x.view();
    let mut yv = out.view_mut();
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&xv).arg(&mut yv).arg(p);
    // SAFETY: see the shared argument below; `out` holds exactly the `out_len` values the kernel
    // writes and `x` the count `p` describes (checked by every caller before this call).
    unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    Ok(out)
}

/// As [`launch_unary`] for `kernel(const float* a, const float* b, float* y, P p)`.
fn launch_binary<P: DeviceRepr>(
    op: &'static str,
    module: &'static str,
    kernel: &str,
    a: &CudaStorage,
    b: &CudaStorage,
    out_len: usize,
    p: &P,
) -> Result<CudaStorage> {
    let dev = Arc::clone(a.device());
    let (mut out, cfg) = output(&dev, out_len)?;
    let Some(cfg) = cfg else { return Ok(out) };
    let f = dev.function(module, kernel)?;
    let (av, bv) = (a.view(), b.view());
    let mut yv = out.view_mut();
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&av).arg(&bv).arg(&mut yv).arg(p);
    // SAFETY: as in `launch_unary`, with both inputs checked by the caller.
    unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    Ok(out)
}

/// Launches the implicit-GEMM convolution (or the depthwise kernel) over `pixels` output pixels;
/// `x`, `w` and `bias` were checked against `p` by the caller.
fn implicit_gemm(
    op: &'static str,
    x: &CudaStorage,
    w: &CudaStorage,
    bias: Option<&CudaStorage>,
    p: TriConv2dParams,
    pixels: usize,
) -> Result<CudaStorage> {
    let dev = Arc::clone(x.device());
    let co = p.co as usize;
    let mut out = CudaStorage::alloc(&dev, pixels * co, DType::F32)?;
    if pixels * co == 0 {
        return Ok(out);
    }
    let depthwise = p.groups == p.in_.c && p.groups == p.co;
    let (f, cfg) = if depthwise {
        (
            dev.function("conv2d", "conv2d_depthwise_f32")?,
            dev.launch_1d((pixels * co) as u64),
        )
    } else {
        let cog = co / p.groups as usize;
        let tiles = u32_of(op, "output pixels / 64", pixels.div_ceil(64))?;
        if cog.div_ceil(64) > 65535 || p.groups > 65535 {
            return Err(Error::InvalidParam {
                op,
                what: "channels per group, groups",
                rule: "at most 65535 tiles of 64 channels and 65535 groups",
                found: format!("{cog}, {}", p.groups),
            });
        }
        (
            dev.function("conv2d", "conv2d_implicit_gemm_f32")?,
            LaunchConfig {
                grid_dim: (tiles, cog.div_ceil(64) as u32, p.groups),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            },
        )
    };
    let (xv, wv) = (x.view(), w.view());
    let bv = bias.unwrap_or(w).view();
    let mut yv = out.view_mut();
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&xv).arg(&wv).arg(&bv).arg(&mut yv).arg(&p);
    // SAFETY: see the shared argument below. The GEMM kernel guards every load and store by the
    // pixel count M = n·ho·wo, the group's channel count and K = kh·kw·cig, and reads input pixels only
    // inside [0, h) × [0, w); 256 threads per CTA match its __launch_bounds__ and tile mapping. Without
    // a bias, `w` stands in as the pointer and has_bias = 0 keeps it unread.
    unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    Ok(out)
}

// The SAFETY argument shared by every launch in this file, stated once:
// - Signature: each kernel's parameter list (kernels/*.cu) is matched by the order and types of the
//   `arg` calls next to it; every tensor is f32 (checked), the params struct is the bindgen twin of
//   the header's.
// - Bounds: every input was checked to hold exactly the element count the params describe, and the
//   output was allocated with the count the kernel writes; indices are computed in u64.
// - Aliasing: outputs are fresh blocks, distinct from every input, so the kernels' __restrict__ holds;
//   inputs are only read. An absent optional vector is replaced by a valid pointer (x) that the
//   kernel never reads, as its flag is 0.
// - Ordering and lifetime: one stream per device; blocks return to the pool only in stream order,
//   after the kernels that use them.

impl NetworkOps for CudaStorage {
    fn conv2d(x: &Self, w: &Self, bias: Option<&Self>, g: &Conv2dGeometry) -> Result<Self> {
        const OP: &str = "conv2d (cuda)";
        let dev = Arc::clone(x.device());
        if g.groups == 0 || g.ci % g.groups != 0 || g.co % g.groups != 0 || g.stride == 0 {
            return Err(Error::InvalidParam {
                op: OP,
                what: "groups, stride",
                rule: "groups dividing both channel counts, stride >= 1",
                found: format!("{g:?}"),
            });
        }
        check(OP, "x", x, g.n * g.h * g.w * g.ci, &dev)?;
        check(
            OP,
            "weight",
            w,
            g.kh * g.kw * (g.ci / g.groups) * g.co,
            &dev,
        )?;
        if let Some(b) = bias {
            check(OP, "bias", b, g.co, &dev)?;
        }
        let p = TriConv2dParams {
            in_: nhwc(
                OP,
                &Nhwc {
                    n: g.n,
                    h: g.h,
                    w: g.w,
                    c: g.ci,
                },
            )?,
            co: u32_of(OP, "output channels", g.co)?,
            kh: u32_of(OP, "kernel height", g.kh)?,
            kw: u32_of(OP, "kernel width", g.kw)?,
            stride: u32_of(OP, "stride", g.stride)?,
            pad_top: u32_of(OP, "padding", g.pad_top)?,
            pad_left: u32_of(OP, "padding", g.pad_left)?,
            ho: u32_of(OP, "output height", g.ho)?,
            wo: u32_of(OP, "output width", g.wo)?,
            groups: u32_of(OP, "groups", g.groups)?,
            has_bias: bias.is_some() as u32,
            b_k_stride: g.co as u64,
            b_n_stride: 1,
        };
        implicit_gemm(OP, x, w, bias, p, g.n * g.ho * g.wo)
    }

    fn linear(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        rows: usize,
        in_f: usize,
        out_f: usize,
    ) -> Result<Self> {
        const OP: &str = "linear (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, rows * in_f, &dev)?;
        check(OP, "weight", w, out_f * in_f, &dev)?;
        if let Some(b) = bias {
            check(OP, "bias", b, out_f, &dev)?;
        }
        // A 1×1 convolution of `rows` pixels, reading the [out, in] weight transposed.
        let p = TriConv2dParams {
            in_: nhwc(
                OP,
                &Nhwc {
                    n: rows,
                    h: 1,
                    w: 1,
                    c: in_f,
                },
            )?,
            co: u32_of(OP, "output features", out_f)?,
            kh: 1,
            kw: 1,
            stride: 1,
            pad_top: 0,
            pad_left: 0,
            ho: 1,
            wo: 1,
            groups: 1,
            has_bias: bias.is_some() as u32,
            b_k_stride: 1,
            b_n_stride: in_f as u64,
        };
        implicit_gemm(OP, x, w, bias, p, rows)
    }

    fn group_norm(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "group_norm (cuda)";
        let dev = Arc::clone(x.device());
        let len = g.n * g.pixels * g.c;
        check(OP, "x", x, len, &dev)?;
        if a.n != g.n || a.pixels != g.pixels || a.c != g.c || g.groups == 0 || g.c % g.groups != 0
        {
            return Err(Error::InvalidParam {
                op: OP,
                what: "affine",
                rule: "the geometry's [n, pixels, c] with c divisible by groups",
                found: format!("[{}, {}, {}] for {:?}", a.n, a.pixels, a.c, g),
            });
        }
        let p = TriGroupNormParams {
            affine: affine_params(OP, a, &dev)?,
            groups: u32_of(OP, "groups", g.groups)?,
            eps: g.eps,
        };
        let ctas = u32_of(OP, "batch × groups", g.n * g.groups)?;
        let mut out = CudaStorage::alloc(&dev, len, DType::F32)?;
        if len == 0 {
            return Ok(out);
        }
        let f = dev.function("group_norm", "group_norm_f32")?;
        let cfg = LaunchConfig {
            grid_dim: (ctas, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let xv = x.view();
        let sv = a.scale.map_or(x, |v| v.data).view();
        let bv = a.shift.map_or(x, |v| v.data).view();
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&sv).arg(&bv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument above; one CTA of 256 threads (the kernel's
        // __launch_bounds__) per (sample, group), each reading and writing only its group's elements.
        unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        Ok(out)
    }

    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "channel_affine (cuda)";
        let dev = Arc::clone(x.device());
        let len = a.n * a.pixels * a.c;
        check(OP, "x", x, len, &dev)?;
        let p = affine_params(OP, a, &dev)?;
        let (mut out, cfg) = output(&dev, len)?;
        let Some(cfg) = cfg else { return Ok(out) };
        let f = dev.function("pointwise", "channel_affine_f32")?;
        let xv = x.view();
        let cv = a.center.map_or(x, |v| v.data).view();
        let sv = a.scale.map_or(x, |v| v.data).view();
        let bv = a.shift.map_or(x, |v| v.data).view();
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&cv).arg(&sv).arg(&bv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument above.
        unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        Ok(out)
    }

    fn activation(x: &Self, act: Activation) -> Result<Self> {
        const OP: &str = "activation (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, x.len(), &dev)?;
        let (code, arg) = activation_code(act);
        let p = TriActivationParams {
            n: x.len() as u64,
            act: code,
            arg,
        };
        launch_unary(OP, "pointwise", "activation_f32", x, x.len(), &p)
    }

    fn binary(a: &Self, b: &Self, op: BinaryOp) -> Result<Self> {
        const OP: &str = "binary (cuda)";
        let dev = Arc::clone(a.device());
        check(OP, "a", a, a.len(), &dev)?;
        check(OP, "b", b, a.len(), &dev)?;
        let p = TriBinaryParams {
            n: a.len() as u64,
            op: match op {
                BinaryOp::Add => 0,
                BinaryOp::Sub => 1,
                BinaryOp::Mul => 2,
            },
            pad: 0,
        };
        launch_binary(OP, "pointwise", "binary_f32", a, b, a.len(), &p)
    }

    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self> {
        const OP: &str = "attention (cuda)";
        let dev = Arc::clone(qkv.device());
        check(OP, "qkv", qkv, n * positions * 3 * c, &dev)?;
        if c == 0 || c > TRI_ATTENTION_MAX_C as usize {
            return Err(Error::InvalidParam {
                op: OP,
                what: "channels",
                rule: "1 to 1024 (the fused kernel keeps a query row in registers)",
                found: c.to_string(),
            });
        }
        let p = TriAttentionParams {
            n: u32_of(OP, "batch", n)?,
            positions: u32_of(OP, "positions", positions)?,
            c: c as u32,
            // The CPU twin's scale, rounded the same way.
            scale: (c as f32).powf(-0.5),
        };
        let mut out = CudaStorage::alloc(&dev, n * positions * c, DType::F32)?;
        if n * positions == 0 {
            return Ok(out);
        }
        let f = dev.function("attention", "attention_f32")?;
        // Four warps per CTA, one query row per warp.
        let cfg = LaunchConfig {
            grid_dim: (u32_of(OP, "rows / 4", (n * positions).div_ceil(4))?, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        let xv = qkv.view();
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument below; 128 threads match the kernel's __launch_bounds__ and
        // its one-row-per-warp mapping, rows past n·positions exit as whole warps before any shuffle.
        unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        Ok(out)
    }

    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self> {
        const OP: &str = "upfirdn2d (cuda)";
        let dev = Arc::clone(x.device());
        let max_k = TRI_UPFIRDN_MAX_K as usize;
        if g.k == 0 || g.k > max_k || kernel.len() != g.k * g.k {
            return Err(Error::InvalidParam {
                op: OP,
                what: "kernel",
                rule: "k × k taps with 1 <= k <= 8",
                found: format!("{} taps for k = {}", kernel.len(), g.k),
            });
        }
        check(OP, "x", x, g.n * g.h * g.w * g.c, &dev)?;
        let pad = |v: isize| {
            i32::try_from(v).map_err(|_| Error::InvalidParam {
                op: OP,
                what: "padding",
                rule: "within i32",
                found: v.to_string(),
            })
        };
        let mut taps = [0f32; (TRI_UPFIRDN_MAX_K * TRI_UPFIRDN_MAX_K) as usize];
        taps[..kernel.len()].copy_from_slice(kernel);
        let p = TriUpFirDnParams {
            in_: nhwc(
                OP,
                &Nhwc {
                    n: g.n,
                    h: g.h,
                    w: g.w,
                    c: g.c,
                },
            )?,
            up: u32_of(OP, "up", g.up)?,
            down: u32_of(OP, "down", g.down)?,
            pad0: pad(g.pad0)?,
            pad1: pad(g.pad1)?,
            k: g.k as u32,
            ho: u32_of(OP, "output height", g.ho)?,
            wo: u32_of(OP, "output width", g.wo)?,
            pad: 0,
            taps,
        };
        // The kernel's own bounds: the kernel reads only input pixels that its source mapping
        // places inside [0, h) × [0, w) (padding and inserted zeros are skipped).
        launch_unary(
            OP,
            "resample",
            "upfirdn2d_f32",
            x,
            g.n * g.ho * g.wo * g.c,
            &p,
        )
    }

    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self> {
        const OP: &str = "resample2x (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, s.len(), &dev)?;
        let (out_len, code) = match mode {
            Resample2x::NearestUp => (s.len() * 4, 0),
            Resample2x::MeanDown => (s.n * (s.h / 2) * (s.w / 2) * s.c, 1),
            Resample2x::BilinearUpAligned => (s.len() * 4, 2),
        };
        let p = TriResample2xParams {
            in_: nhwc(OP, s)?,
            mode: code,
            pad: 0,
        };
        launch_unary(OP, "resample", "resample2x_f32", x, out_len, &p)
    }

    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self> {
        const OP: &str = "concat_channels (cuda)";
        let dev = Arc::clone(a.device());
        check(OP, "a", a, pixels * ca, &dev)?;
        check(OP, "b", b, pixels * cb, &dev)?;
        let p = TriChannelCopyParams {
            pixels: pixels as u64,
            ca: u32_of(OP, "channels", ca)?,
            cb: u32_of(OP, "channels", cb)?,
            start: 0,
            len: 0,
        };
        launch_binary(
            OP,
            "layout",
            "concat_channels_f32",
            a,
            b,
            pixels * (ca + cb),
            &p,
        )
    }

    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self> {
        const OP: &str = "slice_channels (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, pixels * c, &dev)?;
        if start + len > c {
            return Err(Error::InvalidParam {
                op: OP,
                what: "channel range",
                rule: "inside the input's channels",
                found: format!("{start}..{} of {c}", start + len),
            });
        }
        let p = TriChannelCopyParams {
            pixels: pixels as u64,
            ca: u32_of(OP, "channels", c)?,
            cb: 0,
            start: start as u32,
            len: len as u32,
        };
        // The kernel's own bounds: start + len <= c (checked).
        launch_unary(OP, "layout", "slice_channels_f32", x, pixels * len, &p)
    }

    fn crop(x: &Self, s: &Nhwc, top: usize, left: usize, ho: usize, wo: usize) -> Result<Self> {
        const OP: &str = "crop (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, s.len(), &dev)?;
        if top + ho > s.h || left + wo > s.w {
            return Err(Error::InvalidParam {
                op: OP,
                what: "window",
                rule: "inside the image",
                found: format!("{ho}x{wo} at ({top}, {left}) of {}x{}", s.h, s.w),
            });
        }
        let p = TriCropParams {
            in_: nhwc(OP, s)?,
            top: top as u32,
            left: left as u32,
            ho: ho as u32,
            wo: wo as u32,
        };
        // The kernel's own bounds: the window lies inside the image (checked).
        launch_unary(OP, "layout", "crop_f32", x, s.n * ho * wo * s.c, &p)
    }

    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self> {
        const OP: &str = "channel_mean (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, n * pixels * c, &dev)?;
        let p = TriChannelMeanParams {
            n: u32_of(OP, "batch", n)?,
            pixels: u32_of(OP, "pixels", pixels)?,
            c: u32_of(OP, "channels", c)?,
            pad: 0,
        };
        launch_unary(OP, "layout", "channel_mean_f32", x, n * c, &p)
    }

    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self> {
        const OP: &str = "pixel_norm (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, rows * dim, &dev)?;
        // A row of `dim` features is a sample of `dim` one-channel pixels.
        let p = TriChannelMeanParams {
            n: u32_of(OP, "rows", rows)?,
            pixels: u32_of(OP, "features", dim)?,
            c: 1,
            pad: 0,
        };
        launch_unary(OP, "layout", "pixel_norm_f32", x, rows * dim, &p)
    }

    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self> {
        const OP: &str = "permute_nchw (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, s.len(), &dev)?;
        let p = TriPermuteParams {
            s: nhwc(OP, s)?,
            to_nhwc: to_nhwc as u32,
            pad: 0,
        };
        launch_unary(OP, "layout", "permute_nchw_f32", x, s.len(), &p)
    }
}
