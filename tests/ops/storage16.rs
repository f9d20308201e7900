//! Every network op over activations stored in 16 bits (bf16 at `--precision bf16`, fp16 at `fp16`):
//! the `_bf16` / `_f16` kernels of `pointwise.cu`, `group_norm.cu`, `layout.cu`, `resample.cu`,
//! `conv2d.cu` (depthwise, split-K reduce), `conv2d_tc.cu` (`_io16`: A by cp.async without a prologue,
//! through registers with one or where channels cross taps) and the two attention kernels.
//!
//! Each op runs on the GPU under test over 16-bit inputs (random values rounded to the type), with its
//! output poisoned (NaN in both halves of every 32-bit word); the reference is the fp32 CPU op on the
//! same values widened (exact), with the convolutions' weights rounded as their kernels round them.
//! The kernels widen, compute in fp32 and round once on store, so every element must lie within the
//! rounding of the reference plus the fp32 difference between the devices:
//! |got − ref| ≤ u·|ref| + 1e-5·max|ref|, u = 2⁻⁸ (bf16) or 2⁻¹¹ (fp16), the unit roundoff. The
//! tensor-core attention also rounds its probabilities to the operand type (as at fp32 storage): it is
//! held to the reduced-precision tolerance, relative L2 ≤ 1e-2.

use trilemma::ops::{self, Activation, AffineArgs, Conv2dParams, ConvFusion, Padding, Resample2x};
use trilemma::ops::{ConvPlan, ConvTile};
use trilemma::{DType, Device, Precision, Tensor};

use crate::common::{max_abs_err, random_vec, rel_err};

/// One input: on the GPU in the 16-bit type, and its exact widening on the CPU.
struct Input {
    gpu: Tensor,
    cpu: Tensor,
}

fn input(shape: &[usize], seed: u64, dtype: DType, gpu: &Device) -> Input {
    let n = shape.iter().product();
    let rounded = Tensor::from_f32(&random_vec(n, seed), shape, dtype, &Device::Cpu).unwrap();
    let widened = rounded.to_vec_f32().unwrap();
    Input {
        gpu: rounded.to_device(gpu).unwrap(),
        cpu: Tensor::from_f32(&widened, shape, DType::F32, &Device::Cpu).unwrap(),
    }
}

/// An f32 parameter (bias, affine vector, weights), the same on both devices.
fn param(shape: &[usize], seed: u64, gpu: &Device) -> (Tensor, Tensor) {
    let n = shape.iter().product();
    let cpu = Tensor::from_f32(&random_vec(n, seed), shape, DType::F32, &Device::Cpu).unwrap();
    (cpu.to_device(gpu).unwrap(), cpu)
}

/// Weights rounded as the 16-bit kernels round them, kept in f32.
fn rounded_weights(shape: &[usize], seed: u64, dtype: DType, gpu: &Device) -> (Tensor, Tensor) {
    let w = input(shape, seed, dtype, gpu);
    (w.cpu.to_device(gpu).unwrap(), w.cpu)
}

/// NaN in both 16-bit halves of every 32-bit word of the next `len`-element 16-bit output.
fn poison16(gpu: &Device, len: usize) {
    let nan_pair = f32::from_bits(0x7fc0_7fc0);
    drop(Tensor::full(nan_pair, &[len.div_ceil(2).max(1)], DType::F32, gpu).unwrap());
}

/// The GPU's or the CPU's copy of an input.
fn pick(i: &Input, gpu: bool) -> &Tensor {
    if gpu {
        &i.gpu
    } else {
        &i.cpu
    }
}

fn unit_roundoff(dtype: DType) -> f64 {
    match dtype {
        DType::BF16 => (2f64).powi(-8),
        _ => (2f64).powi(-11),
    }
}

/// `got` (16-bit, on the GPU) within one rounding of `want` (the fp32 CPU reference).
fn check(case: &str, dtype: DType, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), dtype, "{case}: output dtype");
    assert_eq!(got.shape(), want.shape(), "{case}: shape");
    let (g, w) = (got.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
    assert!(
        g.iter().all(|v| v.is_finite()),
        "{case}: unwritten (NaN) elements"
    );
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let u = unit_roundoff(dtype);
    let (rel, abs) = (rel_err(&g, &w), max_abs_err(&g, &w));
    println!("{case} at {dtype}: rel {rel:.2e}, max abs {abs:.2e}");
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let bound = u * (b as f64).abs() + 1e-5 * scale;
        assert!(
            ((a - b) as f64).abs() <= bound,
            "{case} at {dtype}: element {i} is {a}, the reference {b} (bound {bound:.3e})"
        );
    }
}

fn precision_of(dtype: DType) -> Precision {
    if dtype == DType::BF16 {
        Precision::Bf16
    } else {
        Precision::Fp16
    }
}

#[test]
fn every_network_op_over_16_bit_activations_rounds_the_fp32_result_once() {
    let Some(gpu) = crate::common::gpu_or_skip(
        "every_network_op_over_16_bit_activations_rounds_the_fp32_result_once",
    ) else {
        return;
    };
    let (n, h, w, c) = (2, 6, 5, 24);
    for dtype in [DType::BF16, DType::F16] {
        gpu.set_precision(precision_of(dtype)).unwrap();
        let seed = if dtype == DType::BF16 { 7000 } else { 8000 };
        let x = input(&[n, h, w, c], seed, dtype, &gpu);
        let y = input(&[n, h, w, c], seed + 1, dtype, &gpu);
        // Runs `op` on both devices (the GPU's output poisoned first) and checks it.
        let run = |case: &str, op: &dyn Fn(bool) -> Tensor| {
            let want = op(false);
            poison16(&gpu, want.elem_count());
            check(case, dtype, &op(true), &want);
        };

        // pointwise.cu
        run("activation silu", &|g| {
            ops::activation(pick(&x, g), Activation::Silu).unwrap()
        });
        run("binary add", &|g| {
            ops::add(pick(&x, g), pick(&y, g)).unwrap()
        });
        run("binary mul", &|g| {
            ops::mul(pick(&x, g), pick(&y, g)).unwrap()
        });
        let (center, center_c) = param(&[c], seed + 2, &gpu);
        let (scale, scale_c) = param(&[n, c], seed + 3, &gpu);
        let (shift, shift_c) = param(&[c], seed + 4, &gpu);
        run("channel_affine", &|g| {
            let args = if g {
                AffineArgs {
                    center: Some(&center),
                    scale: Some(&scale),
                    shift: Some(&shift),
                }
            } else {
                AffineArgs {
                    center: Some(&center_c),
                    scale: Some(&scale_c),
                    shift: Some(&shift_c),
                }
            };
            ops::channel_affine(pick(&x, g), &args, Activation::Tanh).unwrap()
        });

        // group_norm.cu: applied, and folded into a convolution's prologue.
        let (gamma, gamma_c) = param(&[c], seed + 5, &gpu);
        let affine = |g: bool| {
            if g {
                AffineArgs {
                    scale: Some(&gamma),
                    shift: Some(&shift),
                    ..AffineArgs::default()
                }
            } else {
                AffineArgs {
                    scale: Some(&gamma_c),
                    shift: Some(&shift_c),
                    ..AffineArgs::default()
                }
            }
        };
        run("group_norm", &|g| {
            ops::group_norm(pick(&x, g), 4, 1e-6, &affine(g), Activation::Silu).unwrap()
        });

        // conv2d_tc.cu (_io16) with bias, residual and scale, on each tile and a split; the
        // prologue; depthwise; linear.
        let co = 40;
        let (wt, wt_c) = rounded_weights(&[3, 3, c, co], seed + 6, dtype, &gpu);
        let (bias, bias_c) = param(&[co], seed + 7, &gpu);
        let r = input(&[n, h, w, co], seed + 8, dtype, &gpu);
        let k = 9 * c;
        for plan in [
            ConvPlan::split(ConvTile::T64x64, k, 1),
            ConvPlan::split(ConvTile::T128x128, k, 1),
            ConvPlan::split(ConvTile::T64x64, k, 3),
        ] {
            gpu.force_conv_plan(Some(plan)).unwrap();
            run(&format!("conv2d 3x3 + residual, {plan:?}"), &|g| {
                let (wt, b) = if g { (&wt, &bias) } else { (&wt_c, &bias_c) };
                let f = ConvFusion {
                    residual: Some(pick(&r, g)),
                    scale: std::f32::consts::FRAC_1_SQRT_2,
                    ..ConvFusion::none()
                };
                ops::conv2d_fused(pick(&x, g), wt, Some(b), &f, &Conv2dParams::same(3)).unwrap()
            });
        }
        gpu.force_conv_plan(None).unwrap();
        // The prologue's output is an mma operand, rounded to the 16-bit type as the unfused
        // GroupNorm's stored output would be: the reference rounds it too.
        run("conv2d 3x3 with the GroupNorm prologue", &|g| {
            if g {
                let fold =
                    ops::group_norm_fold(&x.gpu, 4, 1e-6, &affine(g), Activation::Silu).unwrap();
                assert_eq!(fold.fold.dtype(), DType::F32);
                let f = ConvFusion {
                    norm: Some(&fold),
                    ..ConvFusion::none()
                };
                ops::conv2d_fused(&x.gpu, &wt, Some(&bias), &f, &Conv2dParams::same(3)).unwrap()
            } else {
                let gn = ops::group_norm(&x.cpu, 4, 1e-6, &affine(g), Activation::Silu).unwrap();
                let rounded =
                    Tensor::from_f32(&gn.to_vec_f32().unwrap(), gn.shape(), dtype, &Device::Cpu)
                        .unwrap();
                let gn = ops::cast(&rounded, DType::F32).unwrap();
                ops::conv2d(&gn, &wt_c, Some(&bias_c), &Conv2dParams::same(3)).unwrap()
            }
        });
        // 12 input channels: A runs cross taps, so A goes element by element instead of by cp.async.
        let x12 = input(&[n, h, w, 12], seed + 16, dtype, &gpu);
        let (w12, w12_c) = rounded_weights(&[3, 3, 12, co], seed + 17, dtype, &gpu);
        run("conv2d 3x3 over 12 channels", &|g| {
            let (wt, b) = if g { (&w12, &bias) } else { (&w12_c, &bias_c) };
            ops::conv2d(pick(&x12, g), wt, Some(b), &Conv2dParams::same(3)).unwrap()
        });
        // Packed 16-bit weights over 16-bit activations: the layers' case.
        run("conv2d 1x1 over packed weights", &|g| {
            let (w1, _) = rounded_weights(&[1, 1, c, co], seed + 9, dtype, &gpu);
            let w1 = if g {
                ops::cast(&w1, dtype).unwrap()
            } else {
                w1.to_device(&Device::Cpu).unwrap()
            };
            ops::conv2d(pick(&x, g), &w1, None, &Conv2dParams::same(1)).unwrap()
        });
        let (wd, wd_c) = param(&[3, 3, 1, c], seed + 10, &gpu);
        run("conv2d depthwise, stride 2", &|g| {
            let p = Conv2dParams {
                stride: 2,
                padding: Padding::same(1),
                groups: c,
            };
            ops::conv2d(pick(&x, g), if g { &wd } else { &wd_c }, None, &p).unwrap()
        });
        let rows = input(&[3, c], seed + 11, dtype, &gpu);
        let (wl, wl_c) = rounded_weights(&[co, c], seed + 12, dtype, &gpu);
        run("linear", &|g| {
            let (wl, b) = if g { (&wl, &bias) } else { (&wl_c, &bias_c) };
            ops::linear(pick(&rows, g), wl, Some(b)).unwrap()
        });

        // layout.cu
        run("concat_channels", &|g| {
            ops::concat_channels(pick(&x, g), pick(&y, g)).unwrap()
        });
        run("slice_channels", &|g| {
            ops::slice_channels(pick(&x, g), 5, 13).unwrap()
        });
        run("crop", &|g| ops::crop(pick(&x, g), 1, 2, 4, 3).unwrap());
        run("channel_mean", &|g| ops::channel_mean(pick(&x, g)).unwrap());

        // resample.cu
        let fir = [1.0, 3.0, 3.0, 1.0];
        run("fir_upsample2x", &|g| {
            ops::fir_upsample2x(pick(&x, g), &fir).unwrap()
        });
        run("fir_downsample2x", &|g| {
            ops::fir_downsample2x(pick(&x, g), &fir).unwrap()
        });
        let even = input(&[n, 4, 6, c], seed + 13, dtype, &gpu);
        for mode in [
            Resample2x::NearestUp,
            Resample2x::MeanDown,
            Resample2x::BilinearUpAligned,
        ] {
            run(&format!("resample2x {mode:?}"), &|g| {
                ops::resample2x(pick(&even, g), mode).unwrap()
            });
        }

        // attention.cu over 16-bit storage (20 channels: not a multiple of 8, so the FFMA kernel).
        let qkv = input(&[n, 4, 4, 60], seed + 14, dtype, &gpu);
        run("attention, FFMA kernel", &|g| {
            ops::attention(pick(&qkv, g)).unwrap()
        });
        // attention_tc.cu (_io16): probabilities rounded to the operand type, as at fp32 storage.
        let qkv = input(&[n, 9, 9, 3 * 48], seed + 15, dtype, &gpu);
        let want = ops::attention(&qkv.cpu).unwrap().to_vec_f32().unwrap();
        poison16(&gpu, want.len());
        let got = ops::attention(&qkv.gpu).unwrap();
        assert_eq!(got.dtype(), dtype);
        let got = got.to_vec_f32().unwrap();
        assert!(
            got.iter().all(|v| v.is_finite()),
            "flash attention: unwritten elements"
        );
        let rel = rel_err(&got, &want);
        println!("flash attention at {dtype}: rel {rel:.2e}");
        assert!(
            rel <= 1e-2 && rel > 0.0,
            "flash attention at {dtype}: rel {rel:.3e}"
        );

        // Activations of the other 16-bit type have no tensor-core kernel at this precision.
        let other = if dtype == DType::BF16 {
            DType::F16
        } else {
            DType::BF16
        };
        let xo = ops::cast(&x.gpu, other).unwrap();
        let e = ops::conv2d(&xo, &wt, Some(&bias), &Conv2dParams::same(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains(other.name()), "{e}");
        // Parameters stay f32: a 16-bit bias is an error naming it.
        let b16 = ops::cast(&bias, dtype).unwrap();
        let e = ops::conv2d(&x.gpu, &wt, Some(&b16), &Conv2dParams::same(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bias"), "{e}");
    }
    gpu.set_precision(Precision::Fp32).unwrap();
}
