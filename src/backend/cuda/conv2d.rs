//! Launch of `kernels/conv2d.cu`: the implicit-GEMM convolution (and its depthwise variant), which
//! also runs `linear` as a 1×1 convolution reading the `[out, in]` weight transposed.

use std::sync::Arc;

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::launch::{check, check_as, check_placed, for_dtype, launch_error, nhwc, u32_of};
use super::CudaStorage;
use crate::backend::geometry::{Conv2dGeometry, LinearGeometry, Nhwc};
use crate::backend::conv_plan::{ConvGemm, ConvPlan, ConvTile, CONV_K_STEP};
use crate::backend::{Conv2dOps, ConvEpilogue, ElementwiseOps};
use crate::device::Precision;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::{names, Kernel};
use crate::kernels::params::TriConv2dParams;

impl Conv2dOps for CudaStorage {
    fn conv2d(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        e: ConvEpilogue<'_, Self>,
        g: &Conv2dGeometry,
    ) -> Result<Self> {
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
        check_placed(OP, "x", x, g.n * g.h * g.w * g.ci, &dev)?;
        check_placed(
            OP,
            "weight",
            w,
            g.kh * g.kw * (g.ci / g.groups) * g.co,
            &dev,
        )?;
        if let Some(b) = bias {
            check(OP, "bias", b, g.co, &dev)?;
        }
        if let Some(r) = e.residual {
            check_as(OP, "residual", r, g.n * g.ho * g.wo * g.co, &dev, x.dtype())?;
        }
        if let Some(sb) = e.sample_bias {
            check(OP, "per-image bias", sb, g.n * g.co, &dev)?;
        }
        if let Some((fold, _)) = e.prologue {
            check(OP, "GroupNorm fold", fold, g.n * g.ci * 4, &dev)?;
        }
        let (pro_act, pro_act_arg) = e
            .prologue
            .map_or((0, 0.0), |(_, act)| super::pointwise::activation_code(act));
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
            has_residual: e.residual.is_some() as u32,
            out_scale: e.scale,
            splits: 1,
            k_split: 0,
            has_prologue: e.prologue.is_some() as u32,
            pro_act,
            pro_act_arg,
            has_sample_bias: e.sample_bias.is_some() as u32,
            b_k_stride: g.co as u64,
            b_n_stride: 1,
        };
        implicit_gemm(OP, x, w, bias, &e, p, g.n * g.ho * g.wo)
    }

    fn linear(x: &Self, w: &Self, bias: Option<&Self>, g: &LinearGeometry) -> Result<Self> {
        const OP: &str = "linear (cuda)";
        let LinearGeometry { rows, in_f, out_f } = *g;
        let dev = Arc::clone(x.device());
        check_placed(OP, "x", x, rows * in_f, &dev)?;
        check_placed(OP, "weight", w, out_f * in_f, &dev)?;
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
            has_residual: 0,
            out_scale: 1.0,
            splits: 1,
            k_split: 0,
            has_prologue: 0,
            pro_act: 0,
            pro_act_arg: 0.0,
            has_sample_bias: 0,
            b_k_stride: 1,
            b_n_stride: in_f as u64,
        };
        implicit_gemm(OP, x, w, bias, &ConvEpilogue::none(), p, rows)
    }
}

/// The GEMM kernel of `precision` with `tile` over activations of `act`, and its threads per CTA; None
/// where that precision has no such kernel (the FFMA kernel has only 64 × 64; 16-bit activations
/// only go with their own precision).
fn gemm_kernel(precision: Precision, tile: ConvTile, act: DType) -> Option<(Kernel, u32)> {
    use names::conv2d_tc as tc;
    if act != DType::F32 {
        return match (precision, act, tile) {
            (Precision::Bf16, DType::BF16, ConvTile::T64x64) => Some((tc::CONV2D_IMPLICIT_GEMM_BF16_IO16, 128)),
            (Precision::Fp16, DType::F16, ConvTile::T64x64) => Some((tc::CONV2D_IMPLICIT_GEMM_F16_IO16, 128)),
            (Precision::Bf16, DType::BF16, ConvTile::T128x128) => {
                Some((tc::CONV2D_IMPLICIT_GEMM_BF16_128X128_IO16, 256))
            }
            (Precision::Fp16, DType::F16, ConvTile::T128x128) => {
                Some((tc::CONV2D_IMPLICIT_GEMM_F16_128X128_IO16, 256))
            }
            _ => None,
        };
    }
    Some(match (precision, tile) {
        (Precision::Fp32, ConvTile::T64x64) => (names::conv2d::CONV2D_IMPLICIT_GEMM_F32, 256),
        (Precision::Fp32, ConvTile::T128x128) => return None,
        (Precision::Tf32x3, ConvTile::T64x64) => (tc::CONV2D_IMPLICIT_GEMM_3XTF32, 128),
        (Precision::Tf32, ConvTile::T64x64) => (tc::CONV2D_IMPLICIT_GEMM_TF32, 128),
        (Precision::Bf16, ConvTile::T64x64) => (tc::CONV2D_IMPLICIT_GEMM_BF16, 128),
        (Precision::Fp16, ConvTile::T64x64) => (tc::CONV2D_IMPLICIT_GEMM_F16, 128),
        (Precision::Tf32x3, ConvTile::T128x128) => (tc::CONV2D_IMPLICIT_GEMM_3XTF32_128X128, 256),
        (Precision::Tf32, ConvTile::T128x128) => (tc::CONV2D_IMPLICIT_GEMM_TF32_128X128, 256),
        (Precision::Bf16, ConvTile::T128x128) => (tc::CONV2D_IMPLICIT_GEMM_BF16_128X128, 256),
        (Precision::Fp16, ConvTile::T128x128) => (tc::CONV2D_IMPLICIT_GEMM_F16_128X128, 256),
    })
}

/// Launches the implicit-GEMM convolution (or the depthwise kernel) over `pixels` output pixels, with
/// the plan chosen for its shape (`ConvPlan::choose`) or the one a test forced; with split-K, the
/// partials go to a scratch buffer and `conv2d_splitk_reduce_f32` finishes them. `x`, `w`, `bias` and
/// the fused operands of `e` (bias `[co]`, per-image bias `[n, co]`, residual `[pixels, co]`, GroupNorm
/// fold `[n, cin, 4]`; their flags in `p` say which the kernel reads) were checked against `p` by the
/// caller.
fn implicit_gemm(
    op: &'static str,
    x: &CudaStorage,
    w: &CudaStorage,
    bias: Option<&CudaStorage>,
    e: &ConvEpilogue<'_, CudaStorage>,
    mut p: TriConv2dParams,
    pixels: usize,
) -> Result<CudaStorage> {
    let dev = Arc::clone(x.device());
    let co = p.co as usize;
    let act = x.dtype();
    let mut out = CudaStorage::alloc(&dev, pixels * co, act)?;
    if pixels * co == 0 {
        return Ok(out);
    }
    let depthwise = p.groups == p.in_.c && p.groups == p.co;
    let precision = dev.precision();
    // The weights in the element type the chosen kernel reads (the depthwise and FFMA kernels: f32):
    // a layer passes its packed copy; any other weight is cast here, for this call.
    let want = if depthwise {
        DType::F32
    } else {
        precision.weight_dtype()
    };
    let cast;
    let w = if w.dtype() == want {
        w
    } else {
        cast = w.cast(want)?;
        &cast
    };
    let (xv, wv) = (x.view(), w.view());
    // Without a bias, a per-image bias, a residual or a fold, `w` stands in as the pointer and its flag
    // (has_bias, has_sample_bias, has_residual, has_prologue = 0) keeps it unread.
    let bv = bias.unwrap_or(w).view();
    let sv = e.sample_bias.unwrap_or(w).view();
    let rv = e.residual.unwrap_or(w).view();
    let fv = e.prologue.map_or(w, |(fold, _)| fold).view();
    use names::conv2d as k;
    if depthwise {
        let kernel = [k::CONV2D_DEPTHWISE_F32, k::CONV2D_DEPTHWISE_BF16, k::CONV2D_DEPTHWISE_F16];
        let f = dev.function(for_dtype(kernel, act))?;
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&wv).arg(&bv).arg(&sv).arg(&rv).arg(&fv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument in `launch.rs`. The depthwise kernel visits the
        // n·ho·wo·co outputs by a grid-stride loop, reads input pixels only inside [0, h) × [0, w),
        // the kh·kw·c weights, bias[c], sample_bias[b·c + c], residual[i] for the output index i and fold[(b·c + c')·4 ..+4]
        // for image b < n and channel c' < c (each only under its flag; each checked to hold that
        // length).
        unsafe { l.launch(dev.launch_1d((pixels * co) as u64)) }.map_err(launch_error(op))?;
        return Ok(out);
    }

    let gemm = ConvGemm {
        m: pixels,
        cog: co / p.groups as usize,
        k: (p.kh * p.kw) as usize * (p.in_.c / p.groups) as usize,
        groups: p.groups as usize,
    };
    let plan = dev.forced_conv_plan().unwrap_or_else(|| {
        ConvPlan::choose(
            gemm,
            dev.info().multiprocessors.max(1) as usize,
            precision != Precision::Fp32,
        )
    });
    let Some((kernel, threads)) = gemm_kernel(precision, plan.tile, act) else {
        return Err(Error::InvalidParam {
            op,
            what: "convolution plan",
            rule: "a CTA tile the device's precision has a kernel for (fp32: 64x64), over f32 \
                   activations or those of the precision's own 16-bit type",
            found: format!("{} at {precision} over {act} activations", plan.tile.name()),
        });
    };
    let (bm, bn) = plan.tile.dims();
    let splits = u32_of(op, "split-K slices", plan.splits.max(1))?;
    if plan.k_split == 0 || plan.k_split % CONV_K_STEP != 0 || (plan.splits - 1) * plan.k_split >= gemm.k.max(1) {
        return Err(Error::InvalidParam {
            op,
            what: "convolution plan",
            rule: "split-K slices of whole K steps (16), none empty",
            found: format!("{plan:?} for K = {}", gemm.k),
        });
    }
    let tiles = u32_of(op, "output pixels / tile rows", pixels.div_ceil(bm))?;
    let z = p.groups as u64 * splits as u64;
    if gemm.cog.div_ceil(bn) > 65535 || z > 65535 {
        return Err(Error::InvalidParam {
            op,
            what: "channels per group, groups × split-K slices",
            rule: "at most 65535 column tiles and 65535 groups × slices",
            found: format!("{}, {}", gemm.cog, z),
        });
    }
    let cfg = LaunchConfig {
        grid_dim: (tiles, gemm.cog.div_ceil(bn) as u32, z as u32),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    };
    let f = dev.function(kernel)?;
    p.splits = splits;
    p.k_split = u32_of(op, "split-K slice", plan.k_split)?;
    if splits == 1 {
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&wv).arg(&bv).arg(&sv).arg(&rv).arg(&fv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument in `launch.rs`; `w` is in the kernel's weight type (`want`:
        // bf16 / fp16 bits for the 16-bit kernels, f32 otherwise), x, the residual and the output in
        // the kernel's activation type (`act`, chosen by gemm_kernel; with splits = 1 the output is
        // written in that type). The GEMM kernels guard every load and store
        // by the pixel count M = n·ho·wo, the group's channel count and K = kh·kw·cig, and read input
        // pixels only inside [0, h) × [0, w); `threads` per CTA matches the kernel's
        // __launch_bounds__ and tile mapping (gemm_kernel). bias[co], sample_bias[n·co] (by an output
        // pixel's image), residual[M·co] and the fold
        // (4 floats per image and input channel, indexed by an in-bounds pixel's image and channel)
        // are read only under their flags and were checked to hold those lengths.
        unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
        return Ok(out);
    }
    // Split-K: raw partials of each slice (no bias, residual or scale) into scratch, then the reduce.
    let mut partials = CudaStorage::alloc(&dev, splits as usize * pixels * co, DType::F32)?;
    let part = TriConv2dParams {
        has_bias: 0,
        has_sample_bias: 0,
        has_residual: 0,
        out_scale: 1.0,
        ..p
    };
    {
        let mut pv = partials.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&wv).arg(&bv).arg(&sv).arg(&rv).arg(&fv).arg(&mut pv).arg(&part);
        // SAFETY: as the unsplit launch above; with splits > 1 the kernels write f32 partials whatever
        // the activation type: CTA z = group · splits + s writes only its slice's M·co partials at
        // offset s·M·co, inside the splits·M·co f32 scratch allocated just above, and reads no bias or
        // residual (flags 0); the fold as above.
        unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    }
    let reduce = [k::CONV2D_SPLITK_REDUCE_F32, k::CONV2D_SPLITK_REDUCE_BF16, k::CONV2D_SPLITK_REDUCE_F16];
    let reduce = dev.function(for_dtype(reduce, act))?;
    let pv = partials.view();
    let mut yv = out.view_mut();
    let mut l = dev.stream().launch_builder(&reduce);
    l.arg(&pv).arg(&bv).arg(&sv).arg(&rv).arg(&mut yv).arg(&p);
    // SAFETY: see the shared argument in `launch.rs` (the reduce of the activation type: residual and
    // output in it, partials f32). The reduce visits the M·co outputs by a
    // grid-stride loop and reads partials[s·M·co + i] for s < splits (the scratch holds splits·M·co),
    // bias[i % co], sample_bias[(i / (ho·wo·co))·co + i % co] and residual[i] under their flags (each
    // checked by the caller).
    unsafe { l.launch(dev.launch_1d((pixels * co) as u64)) }.map_err(launch_error(op))?;
    Ok(out)
}
