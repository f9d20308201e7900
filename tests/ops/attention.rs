//! Single-head attention over positions (`kernels/attention.cu`). Each case runs on every device: the
//! CPU against a direct float64 softmax(q·kᵀ/√c)·v (relative L2 ≤ 1e-5), every GPU against the CPU
//! (relative L2 ≤ 1e-4, max abs ≤ 1e-4 × max |CPU|: an online softmax in another order).

use trilemma::ops;
use trilemma::{DType, Device, Tensor};

use crate::common::devices::{devices, on, on_every_device, Agree};
use crate::common::{max_abs_err, random_vec, rel_err};

/// softmax(q·kᵀ·c^-½)·v of packed `[n, p, 3c]` q|k|v, in f64.
fn attention_ref(qkv: &[f32], n: usize, p: usize, c: usize) -> Vec<f64> {
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
    want
}

#[test]
fn attention_matches_direct_loops_on_every_device() {
    let devices = devices("attention_matches_direct_loops_on_every_device");
    // A position count that is not a multiple of the CPU's block, NCSN++'s 16x16 attention at c = 256,
    // an odd position count and width, and c > 512.
    for (shape, seed) in [
        ([2, 37, 1, 3 * 8], 7),
        ([2, 16, 16, 768], 90),
        ([3, 5, 7, 3 * 37], 91),
        ([1, 4, 4, 3 * 600], 92),
    ] {
        let [n, h, w, c3] = shape;
        let v = random_vec(shape.iter().product(), seed);
        let qkv = Tensor::from_f32(&v, &shape, DType::F32, &Device::Cpu).unwrap();
        let want = attention_ref(&v, n, h * w, c3 / 3);
        let case = format!("attention {shape:?}");
        on_every_device(
            &devices,
            &case,
            Agree::Fp32,
            |d| ops::attention(&on(d, &qkv)).unwrap(),
            |y| {
                let r: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                let out = y.to_vec_f32().unwrap();
                let rel = rel_err(&out, &r);
                let abs = max_abs_err(&out, &r);
                assert!(rel <= 1e-5, "{case}: rel {rel:.3e} (max abs {abs:.3e})");
            },
        );
    }
}

/// The bf16 and fp16 precisions run the tensor-core kernel (`kernels/attention_tc.cu`) wherever c is a
/// multiple of 8: every partial tile it has (positions not a multiple of the 64-query and 64-key
/// blocks, c below one 64-wide chunk of q·k and not a multiple of it, several 128-column output
/// slices with a short last one), softmaxes flat and peaked (q scaled by 3: the running max moves
/// between key blocks), outputs poisoned. Bounds:
/// - against a float64 softmax(q·kᵀ/√c)·v of the operands rounded as the kernel rounds them (q, k, v),
///   relative L2 ≤ 2u (u = 2^-8 for bf16, 2^-11 for fp16, the unit roundoff): what is left is the
///   rounding of the probabilities to the operand type before P·V (each weight off by ≤ u relatively,
///   and the same rounded weights divided out) and fp32 accumulation;
/// - against the fp32 CPU, relative L2 ≤ 1e-2 (the reduced-precision standard), and above 1e-6, which
///   proves the rounded path ran.
///
/// Where c is not a multiple of 8 the launcher keeps the fp32 kernel: GPU fp32 agreement (≤ 1e-4).
#[test]
fn attention_at_bf16_and_fp16_runs_on_tensor_cores_within_the_rounding_bounds() {
    use trilemma::Precision;
    let Some(gpu) = crate::common::gpu_or_skip(
        "attention_at_bf16_and_fp16_runs_on_tensor_cores_within_the_rounding_bounds",
    ) else {
        return;
    };
    // (n, positions, c, q scale, seed)
    let cases = [
        (2, 37, 24, 1.0, 700),
        (2, 256, 256, 1.0, 701),
        (2, 256, 256, 3.0, 702),
        (1, 81, 136, 3.0, 703),
        (1, 16, 600, 1.0, 704),
        (3, 35, 37, 1.0, 705),
    ];
    for (n, p, c, q_scale, seed) in cases {
        let mut v = random_vec(n * p * 3 * c, seed);
        for row in v.chunks_mut(3 * c) {
            row[..c].iter_mut().for_each(|q| *q *= q_scale);
        }
        let qkv = Tensor::from_f32(&v, &[n, p, 1, 3 * c], DType::F32, &Device::Cpu).unwrap();
        let cpu = ops::attention(&qkv).unwrap().to_vec_f32().unwrap();
        for precision in [Precision::Bf16, Precision::Fp16] {
            gpu.set_precision(precision).unwrap();
            crate::common::devices::poison(&gpu, n * p * c);
            let got = ops::attention(&on(&gpu, &qkv))
                .unwrap()
                .to_vec_f32()
                .unwrap();
            let case =
                format!("attention n {n}, positions {p}, c {c}, q x{q_scale} at {precision}");
            assert!(
                got.iter().all(|x| x.is_finite()),
                "{case}: unwritten (NaN) elements"
            );
            let (rel_cpu, abs_cpu) = (rel_err(&got, &cpu), max_abs_err(&got, &cpu));
            if c % 8 != 0 {
                eprintln!("{case} (fp32 kernel): rel {rel_cpu:.2e}, max abs {abs_cpu:.2e} against the CPU");
                assert!(rel_cpu <= 1e-4, "{case}: rel {rel_cpu:.3e} against the CPU");
                continue;
            }
            let rounded: Vec<f32> = v
                .iter()
                .map(|&x| crate::conv2d::round_operand(precision, x))
                .collect();
            let want: Vec<f32> = attention_ref(&rounded, n, p, c)
                .iter()
                .map(|&x| x as f32)
                .collect();
            let u = if precision == Precision::Bf16 {
                2f64.powi(-8)
            } else {
                2f64.powi(-11)
            };
            let rel = rel_err(&got, &want);
            eprintln!(
                "{case}: rel {rel:.2e} against the rounded operands' float64 softmax, rel {rel_cpu:.2e} \
                 (max abs {abs_cpu:.2e}) against the fp32 CPU"
            );
            assert!(
                rel <= 2.0 * u,
                "{case}: rel {rel:.3e} > 2u = {:.3e}",
                2.0 * u
            );
            assert!(
                rel_cpu <= 1e-2 && rel_cpu > 1e-6,
                "{case}: rel {rel_cpu:.3e} against the fp32 CPU"
            );
        }
    }
    gpu.set_precision(Precision::Fp32).unwrap();
}
