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
