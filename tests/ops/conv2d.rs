//! 2-D convolution and `linear` (`kernels/conv2d.cu`: the implicit GEMM, the depthwise kernel, and
//! `linear` as a 1×1 convolution). Each case runs on every device: the CPU against a direct float64 loop
//! (relative L2 ≤ 1e-5, fp32 accumulation against f64; on 1, 2 and 4 threads), every GPU against the
//! CPU (relative L2 ≤ 1e-4, max abs ≤ 1e-4 × max |CPU|: fp32 sums in another order).
//!
//! The geometries: asymmetric padding (the non-FIR pyramid downsampler and NCSN++'s conv-down), 1×1
//! stride 2 (NVAE's factorized reduce), grouped convs, depthwise with and without stride, a channel
//! multiplier, non-square images, more channels than one GEMM tile, the CPU's output-channel split of
//! low-resolution convs.

use trilemma::ops::{self, Conv2dParams, Padding};
use trilemma::{DType, Device, Tensor};

use crate::common::devices::{devices, on, on_every_device, Agree};
use crate::common::{max_abs_err, random_vec, rel_err};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_f32(data, shape, DType::F32, &Device::Cpu).unwrap()
}

fn assert_close(what: &str, out: &[f32], reference: &[f64]) {
    let r: Vec<f32> = reference.iter().map(|&v| v as f32).collect();
    let rel = rel_err(out, &r);
    let abs = max_abs_err(out, &r);
    assert!(rel <= 1e-5, "{what}: rel {rel:.3e} (max abs {abs:.3e})");
}

#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    h: usize,
    w: usize,
    ci: usize,
    co: usize,
    k: usize,
    stride: usize,
    pad: Padding,
    groups: usize,
}

/// Direct conv in f64: x NHWC, w HWIO [k, k, ci/g, co].
fn conv_ref(x: &[f32], w: &[f32], b: &[f32], c: Case) -> (Vec<f64>, usize, usize) {
    let ho = (c.h + c.pad.top + c.pad.bottom - c.k) / c.stride + 1;
    let wo = (c.w + c.pad.left + c.pad.right - c.k) / c.stride + 1;
    let (cig, cog) = (c.ci / c.groups, c.co / c.groups);
    let mut out = vec![0.0f64; c.n * ho * wo * c.co];
    for n in 0..c.n {
        for oy in 0..ho {
            for ox in 0..wo {
                for o in 0..c.co {
                    let grp = o / cog;
                    let mut acc = b[o] as f64;
                    for ky in 0..c.k {
                        for kx in 0..c.k {
                            let iy = (oy * c.stride + ky) as isize - c.pad.top as isize;
                            let ix = (ox * c.stride + kx) as isize - c.pad.left as isize;
                            if iy < 0 || ix < 0 || iy as usize >= c.h || ix as usize >= c.w {
                                continue;
                            }
                            for i in 0..cig {
                                let xv = x[((n * c.h + iy as usize) * c.w + ix as usize) * c.ci
                                    + grp * cig
                                    + i];
                                let wv = w[((ky * c.k + kx) * cig + i) * c.co + o];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    out[((n * ho + oy) * wo + ox) * c.co + o] = acc;
                }
            }
        }
    }
    (out, ho, wo)
}

/// An fp32 operand as a precision's tensor-core kernel rounds it (3xtf32 and fp32 keep it).
pub(crate) fn round_operand(p: trilemma::Precision, v: f32) -> f32 {
    use trilemma::Precision;
    match p {
        Precision::Bf16 => half::bf16::from_f32(v).to_f32(),
        Precision::Fp16 => half::f16::from_f32(v).to_f32(),
        Precision::Tf32 => f32::from_bits(v.to_bits().wrapping_add(0x1000) & 0xffff_e000),
        Precision::Fp32 | Precision::Tf32x3 => v,
    }
}

/// One case with and without bias on every device; the CPU also on 1, 2 and 4 threads.
fn conv_case(devices: &[Device], c: Case, seed: u64) {
    let x = random_vec(c.n * c.h * c.w * c.ci, seed);
    let w = random_vec(c.k * c.k * (c.ci / c.groups) * c.co, seed + 1);
    let b = random_vec(c.co, seed + 2);
    let zeros = vec![0.0f32; c.co];
    let (xt, wt, bt) = (
        t(&x, &[c.n, c.h, c.w, c.ci]),
        t(&w, &[c.k, c.k, c.ci / c.groups, c.co]),
        t(&b, &[c.co]),
    );
    let p = Conv2dParams {
        stride: c.stride,
        padding: c.pad,
        groups: c.groups,
    };
    for bias in [Some(&bt), None] {
        let (want, ho, wo) = conv_ref(&x, &w, if bias.is_some() { &b } else { &zeros }, c);
        let case = format!("{c:?} bias {}", bias.is_some());
        on_every_device(
            devices,
            &case,
            Agree::Fp32,
            |d| {
                let bd = bias.map(|b| on(d, b));
                ops::conv2d(&on(d, &xt), &on(d, &wt), bd.as_ref(), &p).unwrap()
            },
            |y| {
                assert_eq!(y.shape(), [c.n, ho, wo, c.co], "{c:?}");
                assert_close(&case, &y.to_vec_f32().unwrap(), &want);
            },
        );
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let y = pool.install(|| ops::conv2d(&xt, &wt, bias, &p).unwrap());
            assert_close(
                &format!("{case} on {threads} threads"),
                &y.to_vec_f32().unwrap(),
                &want,
            );
        }
    }
}

#[test]
fn conv2d_matches_direct_loops_on_every_device() {
    let devices = devices("conv2d_matches_direct_loops_on_every_device");
    let p = Padding::same;
    let cases = [
        // The non-FIR pyramid downsampler: zero row/column added below/right, stride 2, valid 3×3.
        Case {
            n: 2,
            h: 8,
            w: 6,
            ci: 6,
            co: 10,
            k: 3,
            stride: 2,
            pad: Padding {
                top: 0,
                bottom: 1,
                left: 0,
                right: 1,
            },
            groups: 1,
        },
        // NVAE's factorized reduce: 1×1 stride 2.
        Case {
            n: 3,
            h: 7,
            w: 6,
            ci: 8,
            co: 5,
            k: 1,
            stride: 2,
            pad: p(0),
            groups: 1,
        },
        // A low-resolution wide conv: one pixel block, output channels split across threads (130 = 2 × 65).
        Case {
            n: 1,
            h: 4,
            w: 5,
            ci: 24,
            co: 130,
            k: 3,
            stride: 1,
            pad: p(1),
            groups: 1,
        },
        // Many pixel blocks (batch 2 at 24×20 = 960 pixels).
        Case {
            n: 2,
            h: 24,
            w: 20,
            ci: 5,
            co: 7,
            k: 3,
            stride: 1,
            pad: p(1),
            groups: 1,
        },
        // Grouped with more than one channel per group, non-square, stride 2.
        Case {
            n: 2,
            h: 9,
            w: 5,
            ci: 12,
            co: 6,
            k: 3,
            stride: 2,
            pad: p(1),
            groups: 3,
        },
        // Depthwise 5×5 with stride 2 (MBConv in a down cell).
        Case {
            n: 1,
            h: 10,
            w: 7,
            ci: 9,
            co: 9,
            k: 5,
            stride: 2,
            pad: p(2),
            groups: 9,
        },
        // Pointwise (no im2col) with an odd pixel count.
        Case {
            n: 3,
            h: 3,
            w: 5,
            ci: 17,
            co: 11,
            k: 1,
            stride: 1,
            pad: p(0),
            groups: 1,
        },
    ];
    let pad = |top, bottom, left, right| Padding {
        top,
        bottom,
        left,
        right,
    };
    // (input [n, h, w, ci], kernel, co, stride, padding, groups): "same" 3x3 with more channels than
    // one tile (K and N loops), 1x1, stride 2 with asymmetric padding (NCSN++'s conv-down), grouped,
    // depthwise (its own kernel), depthwise stride 2, and a channel multiplier (groups = ci < co).
    let gpu_cases = [
        ([2, 9, 11, 70], 3, 130, 1, Padding::same(1), 1),
        ([3, 8, 8, 33], 1, 17, 1, Padding::same(0), 1),
        ([2, 16, 16, 24], 3, 40, 2, pad(0, 1, 0, 1), 1),
        ([2, 7, 9, 12], 3, 18, 1, Padding::same(1), 3),
        ([2, 10, 10, 48], 5, 48, 1, Padding::same(2), 48),
        ([1, 9, 9, 16], 3, 16, 2, Padding::same(1), 16),
        ([2, 6, 6, 8], 3, 24, 1, Padding::same(1), 8),
    ];
    let more = gpu_cases
        .into_iter()
        .map(|([n, h, w, ci], k, co, stride, pad, groups)| Case {
            n,
            h,
            w,
            ci,
            co,
            k,
            stride,
            pad,
            groups,
        });
    for (i, c) in cases.into_iter().chain(more).enumerate() {
        conv_case(&devices, c, 100 + 10 * i as u64);
    }
}

#[test]
fn linear_matches_direct_loops_on_every_device() {
    let devices = devices("linear_matches_direct_loops_on_every_device");
    for (rows, in_f, out_f) in [(5, 33, 70), (64, 128, 512), (1, 7, 3)] {
        let (xv, wv, bv) = (
            random_vec(rows * in_f, 80),
            random_vec(out_f * in_f, 81),
            random_vec(out_f, 82),
        );
        let (x, w, b) = (
            t(&xv, &[rows, in_f]),
            t(&wv, &[out_f, in_f]),
            t(&bv, &[out_f]),
        );
        for bias in [None, Some(&b)] {
            let want: Vec<f64> = (0..rows * out_f)
                .map(|i| {
                    let (r, o) = (i / out_f, i % out_f);
                    let dot: f64 = (0..in_f)
                        .map(|k| xv[r * in_f + k] as f64 * wv[o * in_f + k] as f64)
                        .sum();
                    dot + bias.map_or(0.0, |_| bv[o] as f64)
                })
                .collect();
            let case = format!("linear {rows}x{in_f} -> {out_f} bias {}", bias.is_some());
            on_every_device(
                &devices,
                &case,
                Agree::Fp32,
                |d| {
                    let bd = bias.map(|b| on(d, b));
                    ops::linear(&on(d, &x), &on(d, &w), bd.as_ref()).unwrap()
                },
                |y| assert_close(&case, &y.to_vec_f32().unwrap(), &want),
            );
        }
    }
}

/// The tensor-core convolutions (`kernels/conv2d_tc.cu`) at every precision, on a GPU device of their
/// own (the precision is a device-wide setting). Each rounded precision is held to two references: a
/// float64 loop over the operands rounded as the precision rounds them (rel-L2 ≤ 1e-5: the kernel
/// rounds exactly its operands and accumulates in fp32), and the fp32 CPU (≤ 1e-2, the tolerance of
/// the reduced precisions; and > 1e-6, so the rounded path did run). 3xTF32 is held to the unrounded
/// loop at ≤ 1e-5 and fp32 FFMA to the GPU fp32 standard. The geometries leave partial tiles in all
/// three GEMM dimensions (M = 126, 72 output channels, K = 180), stride 2 with asymmetric padding
/// and groups, and exact 64-wide tiles.
#[test]
fn conv2d_on_tensor_cores_matches_the_cpu_at_every_precision() {
    use trilemma::Precision;
    let Some(gpu) =
        crate::common::gpu_or_skip("conv2d_on_tensor_cores_matches_the_cpu_at_every_precision")
    else {
        return;
    };
    let cases = [
        Case {
            n: 2,
            h: 9,
            w: 7,
            ci: 20,
            co: 72,
            k: 3,
            stride: 1,
            pad: Padding::same(1),
            groups: 1,
        },
        Case {
            n: 1,
            h: 8,
            w: 8,
            ci: 32,
            co: 16,
            k: 3,
            stride: 2,
            pad: Padding {
                top: 0,
                bottom: 1,
                left: 0,
                right: 1,
            },
            groups: 2,
        },
        Case {
            n: 4,
            h: 4,
            w: 4,
            ci: 64,
            co: 64,
            k: 1,
            stride: 1,
            pad: Padding::same(0),
            groups: 1,
        },
        // Output channels in no whole 16-byte chunk of 16-bit weights (36: the fp32 ones still are;
        // 30: neither): the weight tile goes element by element instead of by cp.async.
        Case {
            n: 1,
            h: 5,
            w: 6,
            ci: 12,
            co: 36,
            k: 3,
            stride: 1,
            pad: Padding::same(1),
            groups: 1,
        },
        Case {
            n: 1,
            h: 5,
            w: 6,
            ci: 12,
            co: 30,
            k: 3,
            stride: 1,
            pad: Padding::same(1),
            groups: 1,
        },
    ];
    for (seed, c) in cases.into_iter().enumerate() {
        let seed = 500 + 10 * seed as u64;
        let x = random_vec(c.n * c.h * c.w * c.ci, seed);
        let w = random_vec(c.k * c.k * (c.ci / c.groups) * c.co, seed + 1);
        let b = random_vec(c.co, seed + 2);
        let (xt, wt, bt) = (
            t(&x, &[c.n, c.h, c.w, c.ci]),
            t(&w, &[c.k, c.k, c.ci / c.groups, c.co]),
            t(&b, &[c.co]),
        );
        let p = Conv2dParams {
            stride: c.stride,
            padding: c.pad,
            groups: c.groups,
        };
        let cpu = ops::conv2d(&xt, &wt, Some(&bt), &p)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        for precision in Precision::ALL {
            gpu.set_precision(precision).unwrap();
            crate::common::devices::poison(&gpu, cpu.len());
            let (xg, wg, bg) = (on(&gpu, &xt), on(&gpu, &wt), on(&gpu, &bt));
            let got = ops::conv2d(&xg, &wg, Some(&bg), &p)
                .unwrap()
                .to_vec_f32()
                .unwrap();
            let case = format!("{c:?} at {precision}");
            // The weights already in the precision's 16-bit type (a layer's packed copy) give the
            // same bits: the kernel rounds an f32 weight exactly as the cast does.
            let packed = precision.weight_dtype();
            if packed != DType::F32 {
                crate::common::devices::poison(&gpu, cpu.len());
                let w16 = ops::cast(&wg, packed).unwrap();
                let again = ops::conv2d(&xg, &w16, Some(&bg), &p)
                    .unwrap()
                    .to_vec_f32()
                    .unwrap();
                assert!(
                    again
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{case}: {packed} weights differ from f32 weights rounded in the call"
                );
            }
            let (rel_cpu, abs_cpu) = (rel_err(&got, &cpu), max_abs_err(&got, &cpu));
            eprintln!("{case}: rel {rel_cpu:.2e}, max abs {abs_cpu:.2e} against the fp32 CPU");
            match precision {
                Precision::Fp32 => assert!(
                    rel_cpu <= 1e-4,
                    "{case}: rel {rel_cpu:.3e} against the CPU (max abs {abs_cpu:.3e})"
                ),
                _ => {
                    let xr: Vec<f32> = x.iter().map(|&v| round_operand(precision, v)).collect();
                    let wr: Vec<f32> = w.iter().map(|&v| round_operand(precision, v)).collect();
                    let (want, _, _) = conv_ref(&xr, &wr, &b, c);
                    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                    let rel = rel_err(&got, &want);
                    assert!(
                        rel <= 1e-5,
                        "{case}: rel {rel:.3e} against the rounded operands' float64 loop"
                    );
                    if precision != Precision::Tf32x3 {
                        assert!(
                            rel_cpu <= 1e-2 && rel_cpu > 1e-6,
                            "{case}: rel {rel_cpu:.3e} against the fp32 CPU (max abs {abs_cpu:.3e})"
                        );
                    }
                }
            }
        }
    }
    // A 16-bit weight where no kernel reads one is an error naming it: on the CPU, and at a GPU
    // precision whose weights are another type.
    let (xt, wt) = (
        t(&random_vec(2 * 4 * 4 * 8, 1), &[2, 4, 4, 8]),
        t(&random_vec(9 * 8 * 8, 2), &[3, 3, 8, 8]),
    );
    let w16 = ops::cast(&wt, DType::BF16).unwrap();
    let e = ops::conv2d(&xt, &w16, None, &Conv2dParams::same(3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("weight") && e.contains("bf16"), "{e}");
    gpu.set_precision(Precision::Fp16).unwrap();
    let e = ops::conv2d(
        &on(&gpu, &xt),
        &on(&gpu, &w16),
        None,
        &Conv2dParams::same(3),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("weight") && e.contains("bf16"), "{e}");
    gpu.set_precision(Precision::Fp32).unwrap();
    assert!(Device::Cpu.set_precision(Precision::Bf16).is_err());
    assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
    assert!("fp8".parse::<Precision>().is_err());
}

/// Every CTA tile and split-K the launcher can choose, forced on each precision's kernels, with the
/// fused epilogue `(conv + bias + per-image bias + residual) · scale`: fp32 within 1e-4 of the CPU's
/// `conv2d_fused` (itself within 1e-5 of a float64 loop), the rounded precisions within 1e-5 of a
/// float64 loop over their rounded operands (3xtf32: over the fp32 operands). The shapes leave partial
/// tiles in M, N and K for both tiles, and a split whose last slice is short. Outputs are poisoned
/// first, so an unwritten element fails.
#[test]
fn conv2d_every_tile_and_split_with_the_fused_epilogue_matches_the_cpu() {
    use trilemma::ops::{ConvFusion, ConvPlan, ConvTile};
    use trilemma::Precision;
    let Some(gpu) = crate::common::gpu_or_skip(
        "conv2d_every_tile_and_split_with_the_fused_epilogue_matches_the_cpu",
    ) else {
        return;
    };
    let cases = [
        // M = 198, N = 136, K = 216 (13.5 K steps).
        Case {
            n: 2,
            h: 9,
            w: 11,
            ci: 24,
            co: 136,
            k: 3,
            stride: 1,
            pad: Padding::same(1),
            groups: 1,
        },
        // Two groups of 16 → 16 channels, stride 2, asymmetric padding: M = 16, K = 144 per group.
        Case {
            n: 1,
            h: 8,
            w: 8,
            ci: 32,
            co: 32,
            k: 3,
            stride: 2,
            pad: Padding {
                top: 0,
                bottom: 1,
                left: 0,
                right: 1,
            },
            groups: 2,
        },
    ];
    let scale = std::f32::consts::FRAC_1_SQRT_2;
    for (seed, c) in cases.into_iter().enumerate() {
        let seed = 900 + 10 * seed as u64;
        let x = random_vec(c.n * c.h * c.w * c.ci, seed);
        let w = random_vec(c.k * c.k * (c.ci / c.groups) * c.co, seed + 1);
        let b = random_vec(c.co, seed + 2);
        let ho = (c.h + c.pad.top + c.pad.bottom - c.k) / c.stride + 1;
        let wo = (c.w + c.pad.left + c.pad.right - c.k) / c.stride + 1;
        let r = random_vec(c.n * ho * wo * c.co, seed + 3);
        let sb = random_vec(c.n * c.co, seed + 4);
        let sbt = t(&sb, &[c.n, c.co]);
        let (xt, wt, bt, rt) = (
            t(&x, &[c.n, c.h, c.w, c.ci]),
            t(&w, &[c.k, c.k, c.ci / c.groups, c.co]),
            t(&b, &[c.co]),
            t(&r, &[c.n, ho, wo, c.co]),
        );
        let p = Conv2dParams {
            stride: c.stride,
            padding: c.pad,
            groups: c.groups,
        };
        // The CPU reference against the float64 loop.
        let fused_ref = |xs: &[f32], ws: &[f32]| -> Vec<f32> {
            let (y, _, _) = conv_ref(xs, ws, &b, c);
            y.iter()
                .zip(&r)
                .enumerate()
                .map(|(i, (&y, &r))| {
                    let (img, o) = (i / (ho * wo * c.co), i % c.co);
                    ((y + sb[img * c.co + o] as f64 + r as f64) * scale as f64) as f32
                })
                .collect()
        };
        let fused = |xd: &Tensor, wd: &Tensor, bd: &Tensor, sbd: &Tensor, rd: &Tensor| {
            let f = ConvFusion {
                sample_bias: Some(sbd),
                residual: Some(rd),
                scale,
                ..ConvFusion::none()
            };
            ops::conv2d_fused(xd, wd, Some(bd), &f, &p)
        };
        let cpu = fused(&xt, &wt, &bt, &sbt, &rt)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let exact = fused_ref(&x, &w);
        let rel = rel_err(&cpu, &exact);
        assert!(rel <= 1e-5, "{c:?}: CPU conv2d_residual rel {rel:.3e}");
        let k = c.k * c.k * c.ci / c.groups;
        let plans = [
            ConvPlan::split(ConvTile::T64x64, k, 1),
            ConvPlan::split(ConvTile::T64x64, k, 3),
            ConvPlan::split(ConvTile::T128x128, k, 1),
            ConvPlan::split(ConvTile::T128x128, k, 2),
        ];
        let (xg, wg, bg, rg) = (on(&gpu, &xt), on(&gpu, &wt), on(&gpu, &bt), on(&gpu, &rt));
        let sbg = on(&gpu, &sbt);
        for precision in Precision::ALL {
            gpu.set_precision(precision).unwrap();
            let want = match precision {
                Precision::Fp32 => cpu.clone(),
                _ => {
                    let xr: Vec<f32> = x.iter().map(|&v| round_operand(precision, v)).collect();
                    let wr: Vec<f32> = w.iter().map(|&v| round_operand(precision, v)).collect();
                    fused_ref(&xr, &wr)
                }
            };
            let tol = if precision == Precision::Fp32 {
                1e-4
            } else {
                1e-5
            };
            for plan in plans {
                gpu.force_conv_plan(Some(plan)).unwrap();
                crate::common::devices::poison(&gpu, cpu.len());
                let got = fused(&xg, &wg, &bg, &sbg, &rg);
                let case = format!("{c:?} at {precision} with {plan:?}");
                if precision == Precision::Fp32 && plan.tile == ConvTile::T128x128 {
                    let e = got
                        .expect_err("the FFMA kernel has no 128x128 tile")
                        .to_string();
                    assert!(e.contains("128x128") && e.contains("fp32"), "{case}: {e}");
                    continue;
                }
                let got = got.unwrap().to_vec_f32().unwrap();
                let (rel, abs) = (rel_err(&got, &want), max_abs_err(&got, &want));
                eprintln!("{case}: rel {rel:.2e}, max abs {abs:.2e}");
                assert!(rel <= tol, "{case}: rel {rel:.3e} (max abs {abs:.3e})");
            }
        }
        gpu.force_conv_plan(None).unwrap();
        gpu.set_precision(Precision::Fp32).unwrap();
    }
    // A residual of the wrong shape is an error naming it.
    let c = cases[0];
    let xt = t(
        &random_vec(c.n * c.h * c.w * c.ci, 1),
        &[c.n, c.h, c.w, c.ci],
    );
    let wt = t(&random_vec(9 * c.ci * c.co, 2), &[3, 3, c.ci, c.co]);
    let bad = t(&random_vec(c.co, 3), &[1, 1, 1, c.co]);
    let e = ops::conv2d_residual(&xt, &wt, None, &bad, 1.0, &Conv2dParams::same(3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("residual"), "{e}");
    let e = ops::conv2d_residual(&xt, &wt, None, &bad, f32::NAN, &Conv2dParams::same(3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("residual") || e.contains("scale"), "{e}");
    let f = ops::ConvFusion {
        sample_bias: Some(&bad),
        ..ops::ConvFusion::none()
    };
    let e = ops::conv2d_fused(&xt, &wt, None, &f, &Conv2dParams::same(3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("per-image bias"), "{e}");
    assert!(Device::Cpu
        .force_conv_plan(Some(ConvPlan::split(ConvTile::T64x64, 16, 1)))
        .is_err());
}

/// A convolution with the GroupNorm + activation prologue (`conv2d_fused` with a `group_norm_fold`)
/// equals GroupNorm, then the convolution, bit for bit on each device: the prologue applies the same
/// operations to the same bits (CPU; every GPU precision with the 64 × 64, 128 × 128 and split-K plans,
/// where the unfused and fused runs take the same plan). Large shifts make a padding tap that leaked
/// act(shift) instead of 0 visible. Per-channel affine (GroupNorm) and per-sample (AdaGN) both; the
/// GPU within 1e-4 of the CPU at fp32.
#[test]
fn conv2d_with_a_group_norm_prologue_equals_group_norm_then_the_conv() {
    use trilemma::ops::{ConvFusion, ConvPlan, ConvTile};
    use trilemma::Precision;
    let (n, h, w, c, co, groups) = (2, 9, 7, 32, 40, 8);
    let x = t(&random_vec(n * h * w * c, 71), &[n, h, w, c]);
    let wt = t(&random_vec(9 * c * co, 72), &[3, 3, c, co]);
    let bias = t(&random_vec(co, 73), &[co]);
    let gamma = t(&random_vec(c, 74), &[c]);
    let beta: Vec<f32> = random_vec(c, 75).iter().map(|v| 3.0 + 2.0 * v).collect();
    let beta = t(&beta, &[c]);
    let gamma_s = t(&random_vec(n * c, 76), &[n, c]);
    let beta_s = t(&random_vec(n * c, 77), &[n, c]);
    let p = Conv2dParams::same(3);
    let act = ops::Activation::Silu;
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let gpu = crate::common::gpu_or_skip(
        "conv2d_with_a_group_norm_prologue_equals_group_norm_then_the_conv",
    );
    for (label, scale, shift) in [
        ("per-channel", &gamma, &beta),
        ("per-sample", &gamma_s, &beta_s),
    ] {
        let run = |d: &Device| -> (Vec<f32>, Vec<f32>) {
            let (xd, wd, bd) = (on(d, &x), on(d, &wt), on(d, &bias));
            let args = ops::AffineArgs {
                center: None,
                scale: Some(&on(d, scale)),
                shift: Some(&on(d, shift)),
            };
            let normed = ops::group_norm(&xd, groups, 1e-6, &args, act).unwrap();
            let unfused = ops::conv2d(&normed, &wd, Some(&bd), &p).unwrap();
            let fold = ops::group_norm_fold(&xd, groups, 1e-6, &args, act).unwrap();
            assert_eq!(fold.fold.shape(), [n, c, 4]);
            let f = ConvFusion {
                norm: Some(&fold),
                ..ConvFusion::none()
            };
            crate::common::devices::poison(d, n * h * w * co);
            let fused = ops::conv2d_fused(&xd, &wd, Some(&bd), &f, &p).unwrap();
            (unfused.to_vec_f32().unwrap(), fused.to_vec_f32().unwrap())
        };
        let (cpu_unfused, cpu_fused) = run(&Device::Cpu);
        assert_eq!(bits(&cpu_fused), bits(&cpu_unfused), "{label}: CPU");
        let Some(gpu) = &gpu else {
            continue;
        };
        let k = 9 * c;
        for precision in Precision::ALL {
            gpu.set_precision(precision).unwrap();
            let mut plans = vec![None, Some(ConvPlan::split(ConvTile::T64x64, k, 3))];
            if precision != Precision::Fp32 {
                plans.push(Some(ConvPlan::split(ConvTile::T128x128, k, 1)));
            }
            for plan in plans {
                gpu.force_conv_plan(plan).unwrap();
                let (unfused, fused) = run(gpu);
                let case = format!("{label} at {precision} with {plan:?}");
                assert_eq!(bits(&fused), bits(&unfused), "{case}: fused vs unfused");
                if precision == Precision::Fp32 {
                    let rel = rel_err(&fused, &cpu_fused);
                    eprintln!("{case}: rel {rel:.2e} against the CPU");
                    assert!(rel <= 1e-4, "{case}: rel {rel:.3e} against the CPU");
                }
            }
        }
        gpu.force_conv_plan(None).unwrap();
        gpu.set_precision(Precision::Fp32).unwrap();
    }
    // A fold of another tensor's shape is an error naming it.
    let other = t(&random_vec(n * h * w * 16, 78), &[n, h, w, 16]);
    let args = ops::AffineArgs {
        center: None,
        scale: None,
        shift: None,
    };
    let fold = ops::group_norm_fold(&other, 4, 1e-6, &args, act).unwrap();
    let f = ConvFusion {
        norm: Some(&fold),
        ..ConvFusion::none()
    };
    let e = ops::conv2d_fused(&x, &wt, None, &f, &p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("GroupNorm fold"), "{e}");
}

/// The layers' packed weights (`trilemma::nn::PackedWeight`): at bf16 and fp16 a `Conv2d` and a `Dense`
/// hand the kernels a 16-bit copy of their weight, made on the first call and kept (the same tensor on
/// the second), and compute the same bits as the op on the f32 weight; at fp32, on the CPU and for a
/// depthwise convolution (an f32 kernel) the weight itself.
#[test]
fn layers_pack_their_weights_once_per_16_bit_precision() {
    use trilemma::nn::layers::{Conv2d, Dense};
    use trilemma::nn::PackedWeight;
    use trilemma::Precision;
    let Some(gpu) =
        crate::common::gpu_or_skip("layers_pack_their_weights_once_per_16_bit_precision")
    else {
        return;
    };
    let (n, h, w, ci, co) = (2, 5, 4, 8, 16);
    let x = on(&gpu, &t(&random_vec(n * h * w * ci, 41), &[n, h, w, ci]));
    let conv = |groups: usize, co: usize, seed: u64| Conv2d {
        weight: on(
            &gpu,
            &t(
                &random_vec(9 * ci / groups * co, seed),
                &[3, 3, ci / groups, co],
            ),
        ),
        bias: Some(on(&gpu, &t(&random_vec(co, seed + 1), &[co]))),
        params: Conv2dParams {
            groups,
            ..Conv2dParams::same(3)
        },
        in_ch: ci,
        out_ch: co,
        packed: PackedWeight::default(),
    };
    let (plain, depthwise) = (conv(1, co, 42), conv(ci, ci, 44));
    let rows = t(&random_vec(3 * ci, 46), &[3, ci]);
    let dense = Dense {
        weight: on(&gpu, &t(&random_vec(co * ci, 47), &[co, ci])),
        bias: on(&gpu, &t(&random_vec(co, 48), &[co])),
        packed: PackedWeight::default(),
    };
    let rows = on(&gpu, &rows);
    let bits = |t: &Tensor| -> Vec<u32> {
        t.to_vec_f32()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    for precision in [Precision::Bf16, Precision::Fp16, Precision::Fp32] {
        gpu.set_precision(precision).unwrap();
        let first = plain.operand_weight().unwrap();
        assert_eq!(first.dtype(), precision.weight_dtype(), "{precision}");
        assert!(
            std::ptr::eq(first, plain.operand_weight().unwrap()),
            "{precision}: the copy is made once"
        );
        if precision == Precision::Fp32 {
            assert!(std::ptr::eq(first, &plain.weight));
        }
        let direct = ops::conv2d(&x, &plain.weight, plain.bias.as_ref(), &plain.params).unwrap();
        assert_eq!(
            bits(&plain.forward(&x).unwrap()),
            bits(&direct),
            "{precision}"
        );
        assert!(std::ptr::eq(
            depthwise.operand_weight().unwrap(),
            &depthwise.weight
        ));
        let direct = ops::conv2d(
            &x,
            &depthwise.weight,
            depthwise.bias.as_ref(),
            &depthwise.params,
        )
        .unwrap();
        assert_eq!(
            bits(&depthwise.forward(&x).unwrap()),
            bits(&direct),
            "{precision}"
        );
        let direct = ops::linear(&rows, &dense.weight, Some(&dense.bias)).unwrap();
        assert_eq!(
            bits(&dense.forward(&rows).unwrap()),
            bits(&direct),
            "{precision}"
        );
        assert_eq!(
            dense.packed.operand(&dense.weight, false).unwrap().dtype(),
            precision.weight_dtype()
        );
    }
    let cpu = PackedWeight::default();
    let wt = t(&random_vec(9, 49), &[9]);
    assert!(std::ptr::eq(cpu.operand(&wt, false).unwrap(), &wt));
}
