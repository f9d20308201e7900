//! The ODE solvers' f64 vector ops (`ops::ode`, `kernels/ode.cu`), on every device: the CPU against a
//! float64 loop of the same rounded operations (bit for bit), the GPU against the CPU bit for bit for
//! the combinations (the kernel repeats them, no fma) and to 1e-12 relative for the error norm (only
//! its sum order differs: a fixed two-pass tree on the GPU, index order on the CPU).

use crate::common::devices::{devices, poison};
use crate::common::random_vec;
use trilemma::ops::ode::{combine, scaled_sq_sum, widen, MAX_TERMS};
use trilemma::tensor::WideVec;
use trilemma::{DType, Device, Tensor};

fn wide_random(n: usize, seed: u64) -> Vec<f64> {
    // f32 randoms times an irrational-ish factor: values with all 53 bits in use.
    random_vec(n, seed)
        .iter()
        .map(|&v| v as f64 * std::f64::consts::FRAC_1_SQRT_2)
        .collect()
}

fn on(dev: &Device, v: &[f64]) -> WideVec {
    WideVec::from_f64(v, dev).unwrap()
}

/// Leaves a NaN block of `n` doubles in a GPU's cache for the next f64 output of that size.
fn poison_wide(dev: &Device, n: usize) {
    if dev.is_cuda() {
        drop(WideVec::from_f64(&vec![f64::NAN; n.max(1)], dev).unwrap());
    }
}

#[test]
fn combinations_are_the_reference_loop_bit_for_bit_on_every_device() {
    let n = 3 * 5 * 7 * 4;
    let shape = [3, 5, 7, 4];
    let base = wide_random(n, 1);
    let ks: Vec<Vec<f64>> = (0..MAX_TERMS)
        .map(|j| wide_random(n, 10 + j as u64))
        .collect();
    let w = [0.3, -1.7, 2.25e-3, 0.9, -0.41, 1e-8, 3.5];
    let h = -0.0371;
    for dev in devices("combinations_are_the_reference_loop_bit_for_bit_on_every_device") {
        let b = on(&dev, &base);
        let kd: Vec<WideVec> = ks.iter().map(|k| on(&dev, k)).collect();
        for terms in 0..=MAX_TERMS {
            let t: Vec<(f64, &WideVec)> = w.iter().copied().zip(&kd).take(terms).collect();
            let want: Vec<f64> = (0..n)
                .map(|i| {
                    let mut acc = -0.0f64;
                    for (j, k) in ks.iter().enumerate().take(terms) {
                        acc += k[i] * w[j];
                    }
                    base[i] + h * acc
                })
                .collect();
            for keep_wide in [false, true] {
                poison(&dev, n);
                poison_wide(&dev, n);
                let (narrow, wide) = combine(&b, h, &t, &shape, keep_wide).unwrap();
                assert_eq!(narrow.shape(), shape);
                assert_eq!(narrow.device().is_cuda(), dev.is_cuda());
                let got = narrow.to_vec_f32().unwrap();
                let rounded: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                assert_eq!(got, rounded, "{terms} terms: narrow on {}", dev.describe());
                match wide {
                    Some(w) => {
                        assert!(keep_wide);
                        let got = w.to_vec_f64().unwrap();
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{terms} terms: wide on {}", dev.describe());
                    }
                    None => assert!(!keep_wide),
                }
            }
        }
    }
}

#[test]
fn widening_is_exact_on_every_device() {
    let v = random_vec(1000, 4);
    for dev in devices("widening_is_exact_on_every_device") {
        let t = Tensor::from_f32(&v, &[10, 100], DType::F32, &dev).unwrap();
        poison_wide(&dev, v.len());
        let w = widen(&t).unwrap().to_vec_f64().unwrap();
        assert!(w.iter().zip(&v).all(|(a, &b)| *a == b as f64));
    }
}

#[test]
fn the_error_norm_matches_the_reference_to_its_sum_order() {
    // Above 256 blocks × 256 threads, so the GPU's grid-stride loop and both passes are exercised.
    let n = 70_001;
    let (y, y_new) = (wide_random(n, 21), wide_random(n, 22));
    let ks: Vec<Vec<f64>> = (0..MAX_TERMS)
        .map(|j| wide_random(n, 30 + j as u64))
        .collect();
    let e = [
        -71.0 / 57600.0,
        0.0,
        71.0 / 16695.0,
        -71.0 / 1920.0,
        0.05,
        -0.04,
        0.025,
    ];
    let (h, atol, rtol) = (0.013, 1e-5, 1e-4);
    let want: f64 = (0..n)
        .map(|i| {
            let acc = ks.iter().zip(&e).fold(-0.0, |a, (k, w)| a + k[i] * w);
            let q = acc * h / (atol + y[i].abs().max(y_new[i].abs()) * rtol);
            q * q
        })
        .sum();
    assert!(want > 0.0);
    for dev in devices("the_error_norm_matches_the_reference_to_its_sum_order") {
        let kd: Vec<WideVec> = ks.iter().map(|k| on(&dev, k)).collect();
        let t: Vec<(f64, &WideVec)> = e.iter().copied().zip(&kd).collect();
        let (a, b) = (on(&dev, &y), on(&dev, &y_new));
        let got = scaled_sq_sum(h, &t, [&a, &b], atol, rtol).unwrap();
        let rel = (got - want).abs() / want;
        println!("error norm on {}: rel {rel:.2e}", dev.describe());
        if dev.is_cuda() {
            assert!(rel <= 1e-12, "rel {rel:.3e}");
        } else {
            assert_eq!(got.to_bits(), want.to_bits());
        }
        // A NaN in any derivative makes the norm NaN: the solver's non-finite check reads nothing
        // else. (A state is only ever non-finite through its derivatives.)
        let mut bad = ks[3].clone();
        bad[n / 2] = f64::NAN;
        let bad = on(&dev, &bad);
        let mut t_bad = t.clone();
        t_bad[3].1 = &bad;
        assert!(scaled_sq_sum(h, &t_bad, [&a, &b], atol, rtol)
            .unwrap()
            .is_nan());
    }
}

#[test]
fn bad_arguments_are_errors() {
    let v = on(&Device::Cpu, &[1.0, 2.0, 3.0]);
    let short = on(&Device::Cpu, &[1.0, 2.0]);
    let err = combine(&v, 0.1, &[(1.0, &short)], &[3], false).unwrap_err();
    assert!(err.to_string().contains("derivative"), "{err}");
    let err = combine(&v, 0.1, &[(1.0, &v)], &[4], false).unwrap_err();
    assert!(err.to_string().contains("element count"), "{err}");
    let eight: Vec<(f64, &WideVec)> = (0..8).map(|_| (1.0, &v)).collect();
    let err = combine(&v, 0.1, &eight, &[3], false).unwrap_err();
    assert!(err.to_string().contains("at most 7"), "{err}");
    let err = scaled_sq_sum(1.0, &[(1.0, &v)], [&v, &short], 1e-5, 1e-5).unwrap_err();
    assert!(err.to_string().contains("one length"), "{err}");
    let half = Tensor::from_f32(&[1.0, 2.0], &[2], DType::F16, &Device::Cpu).unwrap();
    assert!(widen(&half).unwrap_err().to_string().contains("f16"));
    if let Some(dev) = crate::common::gpu_or_skip("bad_arguments_are_errors (mixed devices)") {
        let g = on(&dev, &[1.0, 2.0, 3.0]);
        let err = combine(&v, 0.1, &[(1.0, &g)], &[3], false).unwrap_err();
        assert!(err.to_string().contains("cuda"), "{err}");
    }
}
