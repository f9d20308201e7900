//! Philox normals (`kernels/philox_normal.cu`): Philox4x32-10 and the normal transform through the
//! host C++ build of `kernels/common/philox.h` (the exact code the GPU kernel runs), then `randn` on
//! every device against the CPU's draw: the Philox words are bit-identical, the normals agree to the
//! ulps by which CUDA's and glibc's logf, sqrtf and sincospi differ.

use trilemma::ops::{randn, randn_into};
use trilemma::rng::{philox4x32_10, NoiseKey, NoiseStream};
use trilemma::{DType, Device, Error, Tensor};

use crate::common::devices::devices;
use crate::common::{max_abs_err, rel_err};

/// Distance in units in the last place of `dtype` between two values that dtype represents.
fn ulps(a: f32, b: f32, dtype: DType) -> u32 {
    let key = |x: f32| -> i64 {
        let bits = match dtype {
            DType::F32 => x.to_bits() as i64,
            DType::BF16 => half::bf16::from_f32(x).to_bits() as i64,
            DType::F16 => half::f16::from_f32(x).to_bits() as i64,
        };
        let sign = match dtype {
            DType::F32 => 1 << 31,
            _ => 1 << 15,
        };
        if bits & sign != 0 {
            -(bits & (sign - 1))
        } else {
            bits
        }
    };
    (key(a) - key(b)).unsigned_abs() as u32
}

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
fn randn_into_overwrites_every_element_on_every_device() {
    let key = NoiseKey::new(3, NoiseStream::Step, 2);
    for dev in devices("randn_into_overwrites_every_element_on_every_device") {
        let mut t = Tensor::full(f32::NAN, &[3, 10], DType::F32, &dev).unwrap();
        randn_into(&mut t, key, 0).unwrap();
        let v = t.to_vec_f32().unwrap();
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{dev:?}: unwritten elements"
        );
        if !dev.is_cuda() {
            assert_eq!(v, cpu_randn(&[3, 10], key, 0));
        }
    }
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

#[test]
fn randn_matches_the_cpu_on_every_device_in_all_dtypes() {
    let devices = devices("randn_matches_the_cpu_on_every_device_in_all_dtypes");
    let key = NoiseKey::new(0x5EED_0000_0042, NoiseStream::Step, 17);
    // Odd per-sample size (partial Philox blocks, scalar stores), an aligned image batch (vector
    // stores), and one big enough that the capped grid strides.
    for shape in [vec![5, 3, 7, 11], vec![4, 6, 32, 32], vec![3, 3, 512, 512]] {
        for (dtype, gpu) in DType::ALL
            .into_iter()
            .flat_map(|d| devices.iter().filter(|g| g.is_cuda()).map(move |g| (d, g)))
        {
            let mut out = Tensor::full(f32::NAN, &shape, dtype, gpu).unwrap();
            randn_into(&mut out, key, 9).unwrap();
            let got = out.to_vec_f32().unwrap();
            let want = randn(&shape, dtype, &Device::Cpu, key, 9)
                .unwrap()
                .to_vec_f32()
                .unwrap();
            assert!(
                got.iter().all(|x| x.is_finite()),
                "{shape:?} {dtype}: unwritten (NaN) elements"
            );
            // The Philox words are bit-identical; logf, sqrtf and sincospi may differ by a few fp32 ulp
            // between CUDA and glibc, so fp32 normals agree to ~1e-6 relative and reduced precision
            // values are equal or one ulp apart (a rounding boundary crossed), rarely.
            let worst = got
                .iter()
                .zip(&want)
                .map(|(&g, &w)| ulps(g, w, dtype))
                .max()
                .unwrap();
            let differing = got.iter().zip(&want).filter(|(g, w)| g != w).count();
            match dtype {
                DType::F32 => {
                    assert!(
                        rel_err(&got, &want) <= 1e-6,
                        "{shape:?}: rel {}",
                        rel_err(&got, &want)
                    );
                    assert!(
                        max_abs_err(&got, &want) <= 1e-5,
                        "{shape:?}: max {}",
                        max_abs_err(&got, &want)
                    );
                    assert!(worst <= 8, "{shape:?}: {worst} ulp");
                }
                _ => {
                    assert!(worst <= 1, "{shape:?} {dtype}: {worst} ulp");
                    assert!(
                        differing * 1000 <= got.len(),
                        "{shape:?} {dtype}: {differing} of {} differ",
                        got.len()
                    );
                }
            }
        }
    }
}

#[test]
fn randn_shards_reproduce_the_whole_batch_on_every_device() {
    let key = NoiseKey::new(7, NoiseStream::Prior, 0);
    for dev in devices("randn_shards_reproduce_the_whole_batch_on_every_device") {
        let whole = randn(&[6, 3, 8, 8], DType::F32, &dev, key, 0)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let a = randn(&[2, 3, 8, 8], DType::F32, &dev, key, 0)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let b = randn(&[4, 3, 8, 8], DType::F32, &dev, key, 2)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        assert_eq!(&whole[..a.len()], &a[..]);
        assert_eq!(&whole[a.len()..], &b[..]);
    }
}
