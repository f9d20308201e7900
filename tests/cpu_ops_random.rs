//! CPU network ops on fresh random inputs against direct float64 loops, over the geometries the fixtures
//! do not reach: asymmetric padding (the non-FIR pyramid downsampler), 1×1 stride 2 (NVAE's factorized
//! reduce), grouped convs, non-square images, the output-channel split of low-resolution convs, thread
//! counts from 1 to 4, attention over a non-multiple-of-block position count, per-sample affines.
//! Tolerance: relative L2 ≤ 1e-5 (fp32 accumulation against f64).

mod common;

use common::{max_abs_err, random_vec, rel_err};
use trilemma::ops::{self, Activation, AffineArgs, Conv2dParams, Padding};
use trilemma::{DType, Device, Tensor};

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

fn conv_case(c: Case, seed: u64) {
    let x = random_vec(c.n * c.h * c.w * c.ci, seed);
    let w = random_vec(c.k * c.k * (c.ci / c.groups) * c.co, seed + 1);
    let b = random_vec(c.co, seed + 2);
    let (want, ho, wo) = conv_ref(&x, &w, &b, c);
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let y = pool.install(|| {
            ops::conv2d(
                &t(&x, &[c.n, c.h, c.w, c.ci]),
                &t(&w, &[c.k, c.k, c.ci / c.groups, c.co]),
                Some(&t(&b, &[c.co])),
                &Conv2dParams {
                    stride: c.stride,
                    padding: c.pad,
                    groups: c.groups,
                },
            )
            .unwrap()
        });
        assert_eq!(y.shape(), [c.n, ho, wo, c.co], "{c:?}");
        assert_close(
            &format!("{c:?} on {threads} threads"),
            &y.to_vec_f32().unwrap(),
            &want,
        );
    }
}

#[test]
fn conv2d_matches_direct_loops_over_geometries() {
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
    for (i, c) in cases.into_iter().enumerate() {
        conv_case(c, 100 + 10 * i as u64);
    }
}

#[test]
fn attention_matches_direct_loops() {
    let (n, p, c) = (2, 37, 8);
    let qkv = random_vec(n * p * 3 * c, 7);
    let y = ops::attention(&t(&qkv, &[n, p, 1, 3 * c])).unwrap();
    let mut want = vec![0.0f64; n * p * c];
    for s in 0..n {
        let at = |i: usize, part: usize, d: usize| qkv[(s * p + i) * 3 * c + part * c + d] as f64;
        for i in 0..p {
            let logits: Vec<f64> = (0..p)
                .map(|j| (0..c).map(|d| at(i, 0, d) * at(j, 1, d)).sum::<f64>() / (c as f64).sqrt())
                .collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..c {
                want[(s * p + i) * c + d] = (0..p).map(|j| e[j] / z * at(j, 2, d)).sum();
            }
        }
    }
    assert_close("attention", &y.to_vec_f32().unwrap(), &want);
}

#[test]
fn group_norm_with_per_sample_affine_matches_direct_loops() {
    let (n, h, w, c, groups) = (3, 5, 3, 12, 4);
    let x: Vec<f32> = random_vec(n * h * w * c, 11)
        .iter()
        .map(|v| v * 3.0 + 5.0)
        .collect();
    let gamma = random_vec(n * c, 12);
    let beta = random_vec(n * c, 13);
    let y = ops::group_norm(
        &t(&x, &[n, h, w, c]),
        groups,
        1e-6,
        &AffineArgs {
            center: None,
            scale: Some(&t(&gamma, &[n, c])),
            shift: Some(&t(&beta, &[n, c])),
        },
        Activation::Silu,
    )
    .unwrap();
    let cg = c / groups;
    let mut want = vec![0.0f64; x.len()];
    for s in 0..n {
        for g in 0..groups {
            let vals: Vec<f64> = (0..h * w)
                .flat_map(|p| (0..cg).map(move |i| (p, g * cg + i)))
                .map(|(p, ch)| x[(s * h * w + p) * c + ch] as f64)
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            for p in 0..h * w {
                for ch in g * cg..(g + 1) * cg {
                    let i = (s * h * w + p) * c + ch;
                    let v = (x[i] as f64 - mean) / (var + 1e-6).sqrt() * gamma[s * c + ch] as f64
                        + beta[s * c + ch] as f64;
                    want[i] = v / (1.0 + (-v).exp());
                }
            }
        }
    }
    assert_close("group_norm", &y.to_vec_f32().unwrap(), &want);
}

#[test]
fn bad_op_arguments_are_errors_not_panics() {
    let x = t(&random_vec(2 * 4 * 4 * 6, 1), &[2, 4, 4, 6]);
    let w = t(&random_vec(3 * 3 * 4 * 8, 2), &[3, 3, 4, 8]);
    let err = ops::conv2d(&x, &w, None, &Conv2dParams::same(3)).unwrap_err();
    assert!(err.to_string().contains("in/groups"), "{err}");
    let err =
        ops::group_norm(&x, 4, 1e-6, &AffineArgs::default(), Activation::Identity).unwrap_err();
    assert!(err.to_string().contains("divisor"), "{err}");
    let x5 = t(&random_vec(2 * 4 * 4 * 5, 3), &[2, 4, 4, 5]);
    let err = ops::attention(&x5).unwrap_err();
    assert!(err.to_string().contains("multiple of 3"), "{err}");
    let err = ops::upfirdn2d(&x, &[1.0; 16], 1, 2, (-3, -3)).unwrap_err();
    assert!(err.to_string().contains("padding"), "{err}");
    let bf = ops::cast(&x, DType::BF16).unwrap();
    let err = ops::activation(&bf, Activation::Silu).unwrap_err();
    assert!(err.to_string().contains("f32"), "{err}");
}
