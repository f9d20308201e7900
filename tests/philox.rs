//! Philox4x32-10 and the normal transform, through the host C++ build of kernels/common/philox.h: the
//! exact code the GPU kernel runs.

use trilemma::ops::{randn, randn_into};
use trilemma::rng::{philox4x32_10, NoiseKey, NoiseStream};
use trilemma::{DType, Device, Error, Tensor};

/// Random123's known-answer vectors (kat_vectors, philox4x32 10): counter, key, expected output.
const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
        [0xffffffff, 0xffffffff],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

#[test]
fn philox4x32_10_matches_random123_known_answers() {
    for (ctr, key, expected) in KAT {
        assert_eq!(
            philox4x32_10(ctr, key),
            expected,
            "ctr {ctr:08x?} key {key:08x?}"
        );
    }
}

fn cpu_randn(shape: &[usize], key: NoiseKey, first: u32) -> Vec<f32> {
    randn(shape, DType::F32, &Device::Cpu, key, first)
        .unwrap()
        .to_vec_f32()
        .unwrap()
}

#[test]
fn normals_have_unit_moments() {
    let z = cpu_randn(&[4, 250_000], NoiseKey::new(7, NoiseStream::Step, 3), 0);
    let n = z.len() as f64;
    let mean = z.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = z.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let kurt = z.iter().map(|&x| (x as f64 - mean).powi(4)).sum::<f64>() / n / var.powi(2);
    let within_1 = z.iter().filter(|x| x.abs() < 1.0).count() as f64 / n;
    // Standard errors for n = 1e6: mean 1e-3, variance 1.4e-3, kurtosis 2.4e-3, P(|z|<1) 4.7e-4;
    // bounds are about 5 standard errors.
    assert!(mean.abs() < 5e-3, "mean {mean}");
    assert!((var - 1.0).abs() < 7e-3, "variance {var}");
    assert!((kurt - 3.0).abs() < 2.5e-2, "kurtosis {kurt}");
    assert!(
        (within_1 - 0.682_689_5).abs() < 2.5e-3,
        "P(|z|<1) {within_1}"
    );
    assert!(z.iter().all(|x| x.is_finite()));
}

#[test]
fn noise_depends_only_on_seed_sample_step_and_element() {
    let key = NoiseKey::new(0xDEADBEEF_12345678, NoiseStream::Step, 11);
    // An odd per-sample size exercises the partial last Philox block.
    let whole = cpu_randn(&[8, 3, 5, 7], key, 0);
    let per = 3 * 5 * 7;
    // The same samples drawn as two shards, as two processes would.
    let lo = cpu_randn(&[3, 3, 5, 7], key, 0);
    let hi = cpu_randn(&[5, 3, 5, 7], key, 3);
    assert_eq!(&whole[..3 * per], &lo[..]);
    assert_eq!(&whole[3 * per..], &hi[..]);
    // One sample alone.
    assert_eq!(&whole[6 * per..7 * per], &cpu_randn(&[1, 105], key, 6)[..]);
    // Deterministic.
    assert_eq!(whole, cpu_randn(&[8, 3, 5, 7], key, 0));
}

#[test]
fn different_keys_give_different_noise() {
    let base = NoiseKey::new(1, NoiseStream::Step, 0);
    let a = cpu_randn(&[2, 64], base, 0);
    for other in [
        NoiseKey::new(2, NoiseStream::Step, 0),
        NoiseKey::new(1 << 32 | 1, NoiseStream::Step, 0), // high key word
        NoiseKey::new(1, NoiseStream::Prior, 0),
        NoiseKey::new(1, NoiseStream::Latent, 0),
        NoiseKey::new(1, NoiseStream::Step, 1),
    ] {
        let b = cpu_randn(&[2, 64], other, 0);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(
            same < 2,
            "{other:?} shares {same} of 128 values with {base:?}"
        );
    }
    // Sample 0 and sample 1 differ too.
    assert_ne!(&a[..64], &a[64..]);
}

#[test]
fn reduced_precision_noise_is_the_rounded_fp32_noise() {
    let key = NoiseKey::new(99, NoiseStream::Prior, 0);
    let f = cpu_randn(&[2, 33], key, 5);
    for dtype in [DType::BF16, DType::F16] {
        let r = randn(&[2, 33], dtype, &Device::Cpu, key, 5)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let expect = Tensor::from_f32(&f, &[2, 33], dtype, &Device::Cpu)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        assert_eq!(r, expect, "{dtype}");
    }
}

#[test]
fn randn_into_overwrites_every_element() {
    let key = NoiseKey::new(3, NoiseStream::Step, 2);
    let mut t = Tensor::full(f32::NAN, &[3, 10], DType::F32, &Device::Cpu).unwrap();
    randn_into(&mut t, key, 0).unwrap();
    let v = t.to_vec_f32().unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    assert_eq!(v, cpu_randn(&[3, 10], key, 0));
}

#[test]
fn randn_rejects_bad_arguments() {
    let key = NoiseKey::new(0, NoiseStream::Step, 0);
    let e = randn(&[], DType::F32, &Device::Cpu, key, 0).unwrap_err();
    assert!(
        matches!(e, Error::InvalidParam { what: "shape", .. }),
        "{e}"
    );
    let e = randn(&[4, 2], DType::F32, &Device::Cpu, key, u32::MAX - 1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParam {
                what: "first_sample + num_samples",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("randn"), "{e}");
}
