//! Launch of `kernels/conv2d.cu`: the implicit-GEMM convolution (and its depthwise variant), which
//! also runs `linear` as a 1×1 convolution reading the `[out, in]` weight transposed.

use std::sync::Arc;

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::launch::{check, launch_error, nhwc, u32_of};
use super::CudaStorage;
use crate::backend::geometry::{Conv2dGeometry, LinearGeometry, Nhwc};
use crate::backend::Conv2dOps;
use crate::device::Precision;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::TriConv2dParams;

impl Conv2dOps for CudaStorage {
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
            in_: nhwc(OP, &g.input())?,
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

    fn linear(x: &Self, w: &Self, bias: Option<&Self>, g: &LinearGeometry) -> Result<Self> {
        const OP: &str = "linear (cuda)";
        let LinearGeometry { rows, in_f, out_f } = *g;
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
            dev.function(names::conv2d::CONV2D_DEPTHWISE_F32)?,
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
        // The FFMA kernel (256 threads) or the tensor-core one of the device's precision (128): the
        // same 64 × 64 tiles, grid and parameters.
        let (kernel, threads) = match dev.precision() {
            Precision::Fp32 => (names::conv2d::CONV2D_IMPLICIT_GEMM_F32, 256),
            Precision::Tf32x3 => (names::conv2d_tc::CONV2D_IMPLICIT_GEMM_3XTF32, 128),
            Precision::Tf32 => (names::conv2d_tc::CONV2D_IMPLICIT_GEMM_TF32, 128),
            Precision::Bf16 => (names::conv2d_tc::CONV2D_IMPLICIT_GEMM_BF16, 128),
            Precision::Fp16 => (names::conv2d_tc::CONV2D_IMPLICIT_GEMM_F16, 128),
        };
        (
            dev.function(kernel)?,
            LaunchConfig {
                grid_dim: (tiles, cog.div_ceil(64) as u32, p.groups),
                block_dim: (threads, 1, 1),
                shared_mem_bytes: 0,
            },
        )
    };
    let (xv, wv) = (x.view(), w.view());
    let bv = bias.unwrap_or(w).view();
    let mut yv = out.view_mut();
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&xv).arg(&wv).arg(&bv).arg(&mut yv).arg(&p);
    // SAFETY: see the shared argument in `launch.rs`. The GEMM kernel guards every load and store by the
    // pixel count M = n·ho·wo, the group's channel count and K = kh·kw·cig, and reads input pixels only
    // inside [0, h) × [0, w); 256 threads per CTA (128 for the tensor-core kernels) match its
    // __launch_bounds__ and tile mapping. Without
    // a bias, `w` stands in as the pointer and has_bias = 0 keeps it unread.
    unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    Ok(out)
}
