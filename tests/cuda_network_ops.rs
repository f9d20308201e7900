//! The CUDA network ops against the CPU backend on fresh random inputs (odd sizes, several groupings,
//! per-channel and per-sample vectors, every activation). Before each op a NaN-filled block of the
//! output's size is allocated and dropped, so the device's caching allocator hands that block to the
//! op's output (same size class, last freed): an element the kernel does not write stays NaN and
//! fails the comparison. Skips without a GPU unless TRILEMMA_REQUIRE_GPU=1.
//!
//! Tolerance: fp32, relative L2 ≤ 1e-4 and max abs ≤ 1e-4 × max |reference| (the GPU standard). The
//! kernels repeat the CPU twins' operation order, so the data-movement ops and the resamplers are exact
//! and the others differ by the activation's libm ulps or the order of the f64 statistics sums; the
//! measured errors are printed.

mod common;

use common::{gpu_or_skip, max_abs_err, random_vec, rel_err};
use trilemma::backend::geometry::{Activation, BinaryOp, Resample2x};
use trilemma::ops::{self, AffineArgs};
use trilemma::{DType, Device, Tensor};

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(&random_vec(n, seed), shape, DType::F32, &Device::Cpu).unwrap()
}

/// Leaves a NaN block of `len` f32 in the device's cache for the next allocation of that size.
fn poison(gpu: &Device, len: usize) {
    drop(Tensor::full(f32::NAN, &[len.max(1)], DType::F32, gpu).unwrap());
}

fn check(case: &str, got: &Tensor, want: &Tensor, exact: bool) {
    assert_eq!(got.shape(), want.shape(), "{case}: shape");
    let (g, w) = (got.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
    assert!(
        g.iter().all(|v| v.is_finite()),
        "{case}: unwritten (NaN) elements"
    );
    let (rel, max) = (rel_err(&g, &w), max_abs_err(&g, &w));
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    println!("{case}: rel {rel:.2e}, max abs {max:.2e}");
    if exact {
        assert!(max == 0.0, "{case}: not bit-exact (max abs {max:.3e})");
    } else {
        assert!(rel <= 1e-4, "{case}: rel {rel:.3e}");
        assert!(max <= 1e-4 * scale.max(1.0), "{case}: max abs {max:.3e}");
    }
}

fn on(gpu: &Device, t: &Tensor) -> Tensor {
    t.to_device(gpu).unwrap()
}

const ACTIVATIONS: [Activation; 9] = [
    Activation::Identity,
    Activation::Silu,
    Activation::Elu,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::SoftClamp(5.0),
    Activation::Exp,
];

#[test]
fn pointwise_ops_match_cpu() {
    let Some(gpu) = gpu_or_skip("pointwise_ops_match_cpu") else {
        return;
    };
    let x = tensor(&[3, 7, 5, 13], 1);
    let y = tensor(&[3, 7, 5, 13], 2);
    for act in ACTIVATIONS {
        poison(&gpu, 3 * 7 * 5 * 13);
        let got = ops::activation(&on(&gpu, &x), act).unwrap();
        let exact = matches!(
            act,
            Activation::Identity | Activation::Relu | Activation::LeakyRelu(_)
        );
        check(
            &format!("activation {act:?}"),
            &got,
            &ops::activation(&x, act).unwrap(),
            exact,
        );
    }
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
        poison(&gpu, 3 * 7 * 5 * 13);
        let got = ops::binary(&on(&gpu, &x), &on(&gpu, &y), op).unwrap();
        check(
            &format!("binary {op:?}"),
            &got,
            &ops::binary(&x, &y, op).unwrap(),
            true,
        );
    }
}

#[test]
fn channel_affine_and_group_norm_match_cpu() {
    let Some(gpu) = gpu_or_skip("channel_affine_and_group_norm_match_cpu") else {
        return;
    };
    let (n, h, w, c) = (3, 9, 7, 24);
    let x = tensor(&[n, h, w, c], 3);
    let per_channel = [tensor(&[c], 4), tensor(&[c], 5), tensor(&[c], 6)];
    let per_sample = [tensor(&[n, c], 7), tensor(&[n, c], 8), tensor(&[n, c], 9)];
    for (label, vecs) in [("per channel", &per_channel), ("per sample", &per_sample)] {
        let dv: Vec<Tensor> = vecs.iter().map(|v| on(&gpu, v)).collect();
        for act in [Activation::Identity, Activation::Silu, Activation::Elu] {
            // Every subset of the three vectors for the affine; scale/shift subsets for GroupNorm.
            for mask in 0..8u32 {
                fn pick(ts: &[Tensor], mask: u32, i: usize) -> Option<&Tensor> {
                    (mask & (1 << i) != 0).then(|| &ts[i])
                }
                let cpu_args = AffineArgs {
                    center: pick(vecs, mask, 0),
                    scale: pick(vecs, mask, 1),
                    shift: pick(vecs, mask, 2),
                };
                let gpu_args = AffineArgs {
                    center: pick(&dv, mask, 0),
                    scale: pick(&dv, mask, 1),
                    shift: pick(&dv, mask, 2),
                };
                poison(&gpu, n * h * w * c);
                let got = ops::channel_affine(&on(&gpu, &x), &gpu_args, act).unwrap();
                let want = ops::channel_affine(&x, &cpu_args, act).unwrap();
                check(
                    &format!("channel_affine {label} mask {mask} {act:?}"),
                    &got,
                    &want,
                    act == Activation::Identity,
                );
                if mask & 1 == 0 {
                    for groups in [1, 4, 8, 24] {
                        poison(&gpu, n * h * w * c);
                        let got =
                            ops::group_norm(&on(&gpu, &x), groups, 1e-6, &gpu_args, act).unwrap();
                        let want = ops::group_norm(&x, groups, 1e-6, &cpu_args, act).unwrap();
                        check(
                            &format!("group_norm {label} mask {mask} groups {groups} {act:?}"),
                            &got,
                            &want,
                            false,
                        );
                    }
                }
            }
        }
    }
    // A group larger than the CTA (many strides per thread) and an offset mean (cancellation).
    let big: Vec<f32> = random_vec(2 * 32 * 32 * 64, 10)
        .iter()
        .map(|v| v + 30.0)
        .collect();
    let big = Tensor::from_f32(&big, &[2, 32, 32, 64], DType::F32, &Device::Cpu).unwrap();
    let none = AffineArgs {
        center: None,
        scale: None,
        shift: None,
    };
    poison(&gpu, big.elem_count());
    check(
        "group_norm 32 groups of 2048, mean 30",
        &ops::group_norm(&on(&gpu, &big), 32, 1e-6, &none, Activation::Silu).unwrap(),
        &ops::group_norm(&big, 32, 1e-6, &none, Activation::Silu).unwrap(),
        false,
    );
}

#[test]
fn layout_ops_match_cpu_exactly() {
    let Some(gpu) = gpu_or_skip("layout_ops_match_cpu_exactly") else {
        return;
    };
    let a = tensor(&[2, 5, 3, 7], 11);
    let b = tensor(&[2, 5, 3, 4], 12);
    let (ga, gb) = (on(&gpu, &a), on(&gpu, &b));
    poison(&gpu, 2 * 5 * 3 * 11);
    check(
        "concat",
        &ops::concat_channels(&ga, &gb).unwrap(),
        &ops::concat_channels(&a, &b).unwrap(),
        true,
    );
    for (start, len) in [(0, 7), (2, 3), (6, 1)] {
        poison(&gpu, 2 * 5 * 3 * len);
        check(
            &format!("slice {start}+{len}"),
            &ops::slice_channels(&ga, start, len).unwrap(),
            &ops::slice_channels(&a, start, len).unwrap(),
            true,
        );
    }
    poison(&gpu, 2 * 3 * 2 * 7);
    check(
        "crop",
        &ops::crop(&ga, 1, 1, 3, 2).unwrap(),
        &ops::crop(&a, 1, 1, 3, 2).unwrap(),
        true,
    );
    poison(&gpu, a.elem_count());
    check(
        "nhwc -> nchw",
        &ops::nhwc_to_nchw(&ga).unwrap(),
        &ops::nhwc_to_nchw(&a).unwrap(),
        true,
    );
    poison(&gpu, a.elem_count());
    check(
        "nchw -> nhwc",
        &ops::nchw_to_nhwc(&ga).unwrap(),
        &ops::nchw_to_nhwc(&a).unwrap(),
        true,
    );
    poison(&gpu, 2 * 7);
    check(
        "channel mean",
        &ops::channel_mean(&ga).unwrap(),
        &ops::channel_mean(&a).unwrap(),
        true,
    );
    // DDGAN's PixelNorm of z [rows, nz]: f64 sums in the same order on both devices, bit-identical.
    // Rows of 1 and of an odd width; batch 1 and 3.
    for (rows, nz) in [(1, 100), (3, 37), (2, 1)] {
        let z = tensor(&[rows, nz], 13 + nz as u64);
        poison(&gpu, rows * nz);
        check(
            &format!("pixel norm {rows}x{nz}"),
            &ops::pixel_norm(&on(&gpu, &z)).unwrap(),
            &ops::pixel_norm(&z).unwrap(),
            true,
        );
    }
}

#[test]
fn resamplers_match_cpu_exactly() {
    let Some(gpu) = gpu_or_skip("resamplers_match_cpu_exactly") else {
        return;
    };
    let x = tensor(&[2, 6, 10, 5], 13);
    let gx = on(&gpu, &x);
    for mode in [
        Resample2x::NearestUp,
        Resample2x::MeanDown,
        Resample2x::BilinearUpAligned,
    ] {
        let want = ops::resample2x(&x, mode).unwrap();
        poison(&gpu, want.elem_count());
        check(
            &format!("resample2x {mode:?}"),
            &ops::resample2x(&gx, mode).unwrap(),
            &want,
            true,
        );
    }
    let fir = ops::fir_kernel_2d(&[1.0, 3.0, 3.0, 1.0], 1.0);
    let fir_up = ops::fir_kernel_2d(&[1.0, 3.0, 3.0, 1.0], 4.0);
    let fir_up_x = ops::fir_upsample2x(&x, &[1.0, 3.0, 3.0, 1.0]).unwrap();
    poison(&gpu, fir_up_x.elem_count());
    check(
        "fir up 2x",
        &ops::fir_upsample2x(&gx, &[1.0, 3.0, 3.0, 1.0]).unwrap(),
        &fir_up_x,
        true,
    );
    let fir_down_x = ops::fir_downsample2x(&x, &[1.0, 3.0, 3.0, 1.0]).unwrap();
    poison(&gpu, fir_down_x.elem_count());
    check(
        "fir down 2x",
        &ops::fir_downsample2x(&gx, &[1.0, 3.0, 3.0, 1.0]).unwrap(),
        &fir_down_x,
        true,
    );
    // Asymmetric padding with a crop, and a non-separable 3x3 kernel.
    let odd: Vec<f32> = random_vec(9, 14);
    for (k, up, down, pad) in [
        (&fir, 1, 1, (1, 2)),
        (&fir_up, 2, 1, (2, 1)),
        (&odd, 1, 2, (1, 1)),
        (&odd, 2, 2, (-1, 0)),
    ] {
        let want = ops::upfirdn2d(&x, k, up, down, pad).unwrap();
        poison(&gpu, want.elem_count());
        check(
            &format!("upfirdn2d up {up} down {down} pad {pad:?}"),
            &ops::upfirdn2d(&gx, k, up, down, pad).unwrap(),
            &want,
            true,
        );
    }
}

#[test]
fn conv2d_and_linear_match_cpu() {
    let Some(gpu) = gpu_or_skip("conv2d_and_linear_match_cpu") else {
        return;
    };
    use trilemma::ops::{Conv2dParams, Padding};
    let pad = |top, bottom, left, right| Padding {
        top,
        bottom,
        left,
        right,
    };
    // (input [n, h, w, ci], kernel, co, stride, padding, groups): "same" 3x3 with more channels than
    // one tile (K and N loops), 1x1, stride 2 with asymmetric padding (NCSN++'s conv-down), grouped,
    // depthwise (its own kernel), depthwise stride 2, and a channel multiplier (groups = ci < co).
    let cases = [
        ([2, 9, 11, 70], 3, 130, 1, Padding::same(1), 1),
        ([3, 8, 8, 33], 1, 17, 1, Padding::same(0), 1),
        ([2, 16, 16, 24], 3, 40, 2, pad(0, 1, 0, 1), 1),
        ([2, 7, 9, 12], 3, 18, 1, Padding::same(1), 3),
        ([2, 10, 10, 48], 5, 48, 1, Padding::same(2), 48),
        ([1, 9, 9, 16], 3, 16, 2, Padding::same(1), 16),
        ([2, 6, 6, 8], 3, 24, 1, Padding::same(1), 8),
    ];
    for (i, (shape, k, co, stride, padding, groups)) in cases.into_iter().enumerate() {
        let x = tensor(&shape, 20 + i as u64);
        let w = tensor(&[k, k, shape[3] / groups, co], 40 + i as u64);
        let b = tensor(&[co], 60 + i as u64);
        let p = Conv2dParams {
            stride,
            padding,
            groups,
        };
        for bias in [None, Some(&b)] {
            let want = ops::conv2d(&x, &w, bias, &p).unwrap();
            let gb = bias.map(|b| on(&gpu, b));
            poison(&gpu, want.elem_count());
            let got = ops::conv2d(&on(&gpu, &x), &on(&gpu, &w), gb.as_ref(), &p).unwrap();
            check(
                &format!(
                    "conv2d {shape:?} k{k} co{co} s{stride} g{groups} bias {}",
                    bias.is_some()
                ),
                &got,
                &want,
                false,
            );
        }
    }
    for (rows, in_f, out_f) in [(5, 33, 70), (64, 128, 512), (1, 7, 3)] {
        let x = tensor(&[rows, in_f], 80);
        let w = tensor(&[out_f, in_f], 81);
        let b = tensor(&[out_f], 82);
        for bias in [None, Some(&b)] {
            let want = ops::linear(&x, &w, bias).unwrap();
            let gb = bias.map(|b| on(&gpu, b));
            poison(&gpu, want.elem_count());
            let got = ops::linear(&on(&gpu, &x), &on(&gpu, &w), gb.as_ref()).unwrap();
            check(
                &format!("linear {rows}x{in_f} -> {out_f} bias {}", bias.is_some()),
                &got,
                &want,
                false,
            );
        }
    }
}

#[test]
fn attention_matches_cpu() {
    let Some(gpu) = gpu_or_skip("attention_matches_cpu") else {
        return;
    };
    // NCSN++'s 16x16 attention at c = 256, an odd position count and width, and c > 512.
    for (shape, seed) in [
        ([2, 16, 16, 768], 90),
        ([3, 5, 7, 3 * 37], 91),
        ([1, 4, 4, 3 * 600], 92),
    ] {
        let qkv = tensor(&shape, seed);
        let want = ops::attention(&qkv).unwrap();
        poison(&gpu, want.elem_count());
        check(
            &format!("attention {shape:?}"),
            &ops::attention(&on(&gpu, &qkv)).unwrap(),
            &want,
            false,
        );
    }
}
