//! The probability-flow drifts (`ops::cld_ode_drift`, `ops::lsgm_ode_drift`, `kernels/ode_drift.cu`),
//! on every device: the CPU against a loop of the official formulas in their f32/f64 operation order
//! (bit for bit), the GPU against the CPU bit for bit (the kernels repeat the rounded operations, no
//! fma), every output element written (poisoned first).

use crate::common::devices::{devices, on};
use crate::common::random_vec;
use trilemma::ops::{cld_ode_drift, lsgm_ode_drift, CldOdeDrift, LsgmOdeDrift};
use trilemma::tensor::WideVec;
use trilemma::{DType, Device, Tensor};

fn poison_wide(dev: &Device, n: usize) {
    if dev.is_cuda() {
        drop(WideVec::from_f64(&vec![f64::NAN; n], dev).unwrap());
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn cld_drift_is_the_official_formula_bit_for_bit_on_every_device() {
    let (b, h, w, c) = (2, 3, 4, 3);
    let u = random_vec(b * h * w * 2 * c, 1);
    let alpha = random_vec(b * h * w * c, 2);
    let (m_inv, beta, f) = (4.0f64, 4.3, 1.0);
    let k = CldOdeDrift {
        svv: 0.37,
        neg_ell: -2.9,
        a_xv: m_inv * beta,
        neg_b: -beta,
        c_vv: f * m_inv * beta,
        c_vs: 2.0 * f * beta,
    };
    let mut want = vec![0.0f64; u.len()];
    for p in 0..b * h * w {
        for ch in 0..c {
            let (x, v) = (u[p * 2 * c + ch] as f64, u[p * 2 * c + c + ch]);
            let s = (-v) / k.svv + alpha[p * c + ch] * k.neg_ell;
            want[p * 2 * c + ch] = -(m_inv * beta * v as f64);
            want[p * 2 * c + c + ch] =
                -(-beta * x - f * m_inv * beta * v as f64) + (2.0 * f * beta) * s as f64 * 0.5;
        }
    }
    let ut = Tensor::from_f32(&u, &[b, h, w, 2 * c], DType::F32, &Device::Cpu).unwrap();
    let at = Tensor::from_f32(&alpha, &[b, h, w, c], DType::F32, &Device::Cpu).unwrap();
    for dev in devices("cld_drift_is_the_official_formula_bit_for_bit_on_every_device") {
        poison_wide(&dev, u.len());
        let got = cld_ode_drift(&on(&dev, &ut), &on(&dev, &at), &k).unwrap();
        assert_eq!(got.device().is_cuda(), dev.is_cuda());
        assert_eq!(
            bits(&got.to_vec_f64().unwrap()),
            bits(&want),
            "{}",
            dev.describe()
        );
    }
}

#[test]
fn lsgm_drift_is_the_official_formula_bit_for_bit_on_every_device() {
    let (b, h, w, c) = (2, 4, 3, 5);
    let z = random_vec(b * h * w * c, 3);
    let eps = random_vec(b * h * w * c, 4);
    // Mixing weights in (0, 1), and 1 (no mixed prediction) on the last channel.
    let mut mix: Vec<f32> = random_vec(c, 5).iter().map(|v| 0.5 + 0.2 * v).collect();
    mix[c - 1] = 1.0;
    let k = LsgmOdeDrift {
        ft: -3.1,
        half_g2: 3.1,
        sd: 0.83,
    };
    let want: Vec<f64> = (0..z.len())
        .map(|i| {
            let a = mix[i % c];
            let e = (1.0 - a) * (k.sd * z[i]) + a * eps[i];
            (-(k.ft * z[i] + k.half_g2 * e / k.sd)) as f64
        })
        .collect();
    let shape = [b, h, w, c];
    let zt = Tensor::from_f32(&z, &shape, DType::F32, &Device::Cpu).unwrap();
    let et = Tensor::from_f32(&eps, &shape, DType::F32, &Device::Cpu).unwrap();
    let mt = Tensor::from_f32(&mix, &[c], DType::F32, &Device::Cpu).unwrap();
    for dev in devices("lsgm_drift_is_the_official_formula_bit_for_bit_on_every_device") {
        poison_wide(&dev, z.len());
        let got = lsgm_ode_drift(&on(&dev, &zt), &on(&dev, &et), &on(&dev, &mt), &k).unwrap();
        assert_eq!(
            bits(&got.to_vec_f64().unwrap()),
            bits(&want),
            "{}",
            dev.describe()
        );
    }
}

#[test]
fn mismatched_drift_inputs_are_errors() {
    let t = |shape: &[usize]| {
        let n = shape.iter().product();
        Tensor::from_f32(&random_vec(n, 9), shape, DType::F32, &Device::Cpu).unwrap()
    };
    let k = CldOdeDrift {
        svv: 1.0,
        neg_ell: -1.0,
        a_xv: 1.0,
        neg_b: -1.0,
        c_vv: 1.0,
        c_vs: 1.0,
    };
    let err = cld_ode_drift(&t(&[1, 2, 2, 5]), &t(&[1, 2, 2, 3]), &k).unwrap_err();
    assert!(err.to_string().contains("u"), "{err}");
    let l = LsgmOdeDrift {
        ft: -1.0,
        half_g2: 1.0,
        sd: 0.5,
    };
    let err = lsgm_ode_drift(&t(&[1, 2, 2, 3]), &t(&[1, 2, 2, 3]), &t(&[4]), &l).unwrap_err();
    assert!(err.to_string().contains("mix"), "{err}");
    let err = lsgm_ode_drift(&t(&[1, 2, 2, 3]), &t(&[1, 2, 3, 3]), &t(&[3]), &l).unwrap_err();
    assert!(err.to_string().contains("eps"), "{err}");
}
