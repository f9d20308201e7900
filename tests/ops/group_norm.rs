//! GroupNorm with its affine map and activation fused (`kernels/group_norm.cu`), and the channel
//! affine it shares the affine arguments with (`kernels/pointwise.cu`). On every device: the CPU
//! against a direct float64 loop (relative L2 ≤ 1e-5), every GPU against the CPU over every subset of
//! the affine vectors, per channel and per sample, several groupings and activations (relative L2 ≤
//! 1e-4, max abs ≤ 1e-4 × max |CPU|: f64 statistics summed in another order, libm ulps; the identity
//! affine bit for bit).

use trilemma::backend::geometry::Activation;
use trilemma::ops::{self, AffineArgs};
use trilemma::{DType, Device, Tensor};

use crate::common::devices::{devices, on, on_every_device, Agree};
use crate::common::{max_abs_err, random_vec, rel_err};

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(&random_vec(n, seed), shape, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn group_norm_with_per_sample_affine_matches_direct_loops_on_every_device() {
    let devices = devices("group_norm_with_per_sample_affine_matches_direct_loops_on_every_device");
    let (n, h, w, c, groups) = (3, 5, 3, 12, 4);
    let x: Vec<f32> = random_vec(n * h * w * c, 11)
        .iter()
        .map(|v| v * 3.0 + 5.0)
        .collect();
    let gamma = random_vec(n * c, 12);
    let beta = random_vec(n * c, 13);
    let t =
        |v: &[f32], shape: &[usize]| Tensor::from_f32(v, shape, DType::F32, &Device::Cpu).unwrap();
    let (xt, gt, bt) = (t(&x, &[n, h, w, c]), t(&gamma, &[n, c]), t(&beta, &[n, c]));
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
    on_every_device(
        &devices,
        "group_norm per-sample affine",
        Agree::Fp32,
        |d| {
            let (gd, bd) = (on(d, &gt), on(d, &bt));
            let args = AffineArgs {
                center: None,
                scale: Some(&gd),
                shift: Some(&bd),
            };
            ops::group_norm(&on(d, &xt), groups, 1e-6, &args, Activation::Silu).unwrap()
        },
        |y| {
            let r: Vec<f32> = want.iter().map(|&v| v as f32).collect();
            let out = y.to_vec_f32().unwrap();
            let (rel, abs) = (rel_err(&out, &r), max_abs_err(&out, &r));
            assert!(rel <= 1e-5, "group_norm: rel {rel:.3e} (max abs {abs:.3e})");
        },
    );
}

#[test]
fn channel_affine_and_group_norm_match_the_cpu_on_every_device() {
    let devices = devices("channel_affine_and_group_norm_match_the_cpu_on_every_device");
    let (n, h, w, c) = (3, 9, 7, 24);
    let x = tensor(&[n, h, w, c], 3);
    let per_channel = [tensor(&[c], 4), tensor(&[c], 5), tensor(&[c], 6)];
    let per_sample = [tensor(&[n, c], 7), tensor(&[n, c], 8), tensor(&[n, c], 9)];
    fn pick(ts: &[Tensor], mask: u32, i: usize) -> Option<&Tensor> {
        (mask & (1 << i) != 0).then(|| &ts[i])
    }
    for (label, vecs) in [("per channel", &per_channel), ("per sample", &per_sample)] {
        for act in [Activation::Identity, Activation::Silu, Activation::Elu] {
            // Every subset of the three vectors for the affine; scale/shift subsets for GroupNorm.
            for mask in 0..8u32 {
                let with_args = |d: &Device, f: &dyn Fn(&Tensor, &AffineArgs<'_>) -> Tensor| {
                    let dv: Vec<Tensor> = vecs.iter().map(|v| on(d, v)).collect();
                    let args = AffineArgs {
                        center: pick(&dv, mask, 0),
                        scale: pick(&dv, mask, 1),
                        shift: pick(&dv, mask, 2),
                    };
                    f(&on(d, &x), &args)
                };
                let agree = match act {
                    Activation::Identity => Agree::Exact,
                    _ => Agree::Fp32,
                };
                on_every_device(
                    &devices,
                    &format!("channel_affine {label} mask {mask} {act:?}"),
                    agree,
                    |d| with_args(d, &|x, a| ops::channel_affine(x, a, act).unwrap()),
                    |_| {},
                );
                if mask & 1 == 0 {
                    for groups in [1, 4, 8, 24] {
                        on_every_device(
                            &devices,
                            &format!("group_norm {label} mask {mask} groups {groups} {act:?}"),
                            Agree::Fp32,
                            |d| {
                                with_args(d, &|x, a| {
                                    ops::group_norm(x, groups, 1e-6, a, act).unwrap()
                                })
                            },
                            |_| {},
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
    on_every_device(
        &devices,
        "group_norm 32 groups of 2048, mean 30",
        Agree::Fp32,
        |d| ops::group_norm(&on(d, &big), 32, 1e-6, &none, Activation::Silu).unwrap(),
        |_| {},
    );
}
