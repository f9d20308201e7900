//! Every CUDA op against the CPU reference on the same inputs and the same Philox noise. Outputs are
//! poisoned with NaN first, so an element the kernel does not write fails the comparison. Skips without
//! a GPU unless TRILEMMA_REQUIRE_GPU=1.

mod common;

use common::{gpu_or_skip, max_abs_err, random_vec, rel_err};
use trilemma::ops::{axpby, cast, randn, randn_into};
use trilemma::rng::{NoiseKey, NoiseStream};
use trilemma::{DType, Device, Error, Tensor};

fn poisoned(shape: &[usize], dtype: DType, dev: &Device) -> Tensor {
    Tensor::full(f32::NAN, shape, dtype, dev).unwrap()
}

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

#[test]
fn randn_cuda_matches_cpu_all_dtypes() {
    let Some(gpu) = gpu_or_skip("randn_cuda_matches_cpu_all_dtypes") else {
        return;
    };
    let key = NoiseKey::new(0x5EED_0000_0042, NoiseStream::Step, 17);
    // Odd per-sample size (partial Philox blocks, scalar stores), an aligned image batch (vector
    // stores), and one big enough that the capped grid strides.
    for shape in [vec![5, 3, 7, 11], vec![4, 6, 32, 32], vec![3, 3, 512, 512]] {
        for dtype in DType::ALL {
            let mut out = poisoned(&shape, dtype, &gpu);
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
fn randn_cuda_shards_reproduce_the_whole_batch() {
    let Some(gpu) = gpu_or_skip("randn_cuda_shards_reproduce_the_whole_batch") else {
        return;
    };
    let key = NoiseKey::new(7, NoiseStream::Prior, 0);
    let whole = randn(&[6, 3, 8, 8], DType::F32, &gpu, key, 0)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let a = randn(&[2, 3, 8, 8], DType::F32, &gpu, key, 0)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let b = randn(&[4, 3, 8, 8], DType::F32, &gpu, key, 2)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert_eq!(&whole[..a.len()], &a[..]);
    assert_eq!(&whole[a.len()..], &b[..]);
}

#[test]
fn axpby_cuda_is_bit_identical_to_cpu() {
    let Some(gpu) = gpu_or_skip("axpby_cuda_is_bit_identical_to_cpu") else {
        return;
    };
    for n in [1usize, 1000, 1 << 20] {
        let x = random_vec(n, 11);
        let y = random_vec(n, 12);
        for dtype in DType::ALL {
            let (a, b) = (0.731f32, -0.25f32);
            let xc = Tensor::from_f32(&x, &[n], dtype, &Device::Cpu).unwrap();
            let mut yc = Tensor::from_f32(&y, &[n], dtype, &Device::Cpu).unwrap();
            let xg = xc.to_device(&gpu).unwrap();
            let mut yg = yc.to_device(&gpu).unwrap();
            axpby(a, &xc, b, &mut yc).unwrap();
            axpby(a, &xg, b, &mut yg).unwrap();
            let (g, c) = (yg.to_vec_f32().unwrap(), yc.to_vec_f32().unwrap());
            // Same fp32 operations in the same order with no contraction: exact equality.
            assert!(
                g.iter().zip(&c).all(|(g, c)| g.to_bits() == c.to_bits()),
                "n={n} {dtype}: rel {}",
                rel_err(&g, &c)
            );
        }
    }
}

#[test]
fn cast_cuda_is_bit_identical_to_cpu() {
    let Some(gpu) = gpu_or_skip("cast_cuda_is_bit_identical_to_cpu") else {
        return;
    };
    let mut x = random_vec(4099, 13);
    x.extend_from_slice(&[70000.0, -70000.0, 1e-8, 1.0 + 2f32.powi(-8), 3.0e38]);
    let n = x.len();
    for from in DType::ALL {
        for to in DType::ALL {
            let c = Tensor::from_f32(&x, &[n], from, &Device::Cpu).unwrap();
            let g = c.to_device(&gpu).unwrap();
            let want = cast(&c, to).unwrap().to_vec_f32().unwrap();
            let got = cast(&g, to).unwrap().to_vec_f32().unwrap();
            assert_eq!(cast(&g, to).unwrap().dtype(), to);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(g, w)| g.to_bits() == w.to_bits()),
                "{from}->{to}"
            );
        }
    }
}

#[test]
fn copies_round_trip_exactly() {
    let Some(gpu) = gpu_or_skip("copies_round_trip_exactly") else {
        return;
    };
    for n in [0usize, 1, 3, 513, 100_003] {
        let x = random_vec(n, n as u64);
        for dtype in DType::ALL {
            let host = Tensor::from_f32(&x, &[n], dtype, &Device::Cpu).unwrap();
            let dev = host.to_device(&gpu).unwrap();
            let dev2 = dev.to_device(&gpu).unwrap(); // device-to-device
            drop(dev);
            let back = dev2.to_device(&Device::Cpu).unwrap();
            assert_eq!(
                back.to_vec_f32().unwrap(),
                host.to_vec_f32().unwrap(),
                "n={n} {dtype}"
            );
        }
    }
}

#[test]
fn a_loop_of_same_shapes_makes_no_driver_allocations_after_its_first_step() {
    let Some(gpu) =
        gpu_or_skip("a_loop_of_same_shapes_makes_no_driver_allocations_after_its_first_step")
    else {
        return;
    };
    let Device::Cuda(dev) = &gpu else {
        unreachable!()
    };
    let key = |step| NoiseKey::new(1, NoiseStream::Step, step);
    let mut x = randn(&[8, 6, 32, 32], DType::F32, &gpu, key(0), 0).unwrap();
    let step = |x: &mut Tensor, s: u32| {
        let z = randn(&[8, 6, 32, 32], DType::F32, &gpu, key(s), 0).unwrap();
        axpby(0.1, &z, 0.9, x).unwrap();
    };
    step(&mut x, 1);
    let before = dev.pool_stats();
    for s in 2..50 {
        step(&mut x, s);
    }
    gpu.synchronize().unwrap();
    let after = dev.pool_stats();
    assert_eq!(
        after.driver_allocs, before.driver_allocs,
        "{before:?} -> {after:?}"
    );
    assert!(
        after.cache_hits >= before.cache_hits + 48,
        "{before:?} -> {after:?}"
    );
    assert!(x.to_vec_f32().unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn mixing_devices_is_an_error() {
    let Some(gpu) = gpu_or_skip("mixing_devices_is_an_error") else {
        return;
    };
    let x = Tensor::full(1.0, &[4], DType::F32, &Device::Cpu).unwrap();
    let mut y = Tensor::full(1.0, &[4], DType::F32, &gpu).unwrap();
    let e = axpby(1.0, &x, 1.0, &mut y).unwrap_err();
    assert!(
        matches!(e, Error::DeviceMismatch { op: "axpby", .. }),
        "{e}"
    );
}

#[test]
fn out_of_memory_is_an_error_not_a_crash() {
    let Some(gpu) = gpu_or_skip("out_of_memory_is_an_error_not_a_crash") else {
        return;
    };
    let Device::Cuda(dev) = &gpu else {
        unreachable!()
    };
    // One GiB more than the whole device has.
    let elems = (dev.info().total_memory + (1 << 30)) / 4;
    match Tensor::zeros(&[elems], DType::F32, &gpu) {
        Err(Error::OutOfMemory {
            requested, total, ..
        }) => assert!(requested > total, "{requested} <= {total}"),
        Err(other) => panic!("expected OutOfMemory, got {other:?}"),
        Ok(_) => panic!("an allocation larger than the device succeeded"),
    }
    // The device is still usable afterwards.
    let t = Tensor::full(2.0, &[16], DType::F32, &gpu).unwrap();
    assert_eq!(t.to_vec_f32().unwrap(), vec![2.0; 16]);
    let z = Tensor::zeros(&[1000], DType::BF16, &gpu).unwrap();
    assert_eq!(z.to_vec_f32().unwrap(), vec![0.0; 1000]);
}

#[test]
fn finite_watch_names_the_first_bad_step_on_both_devices() {
    use trilemma::ops::FiniteWatch;
    let good = Tensor::full(0.5, &[4, 3], DType::F32, &Device::Cpu).unwrap();
    let mut bad_values = vec![0.5f32; 12];
    bad_values[7] = f32::NAN;
    let bad = Tensor::from_f32(&bad_values, &[4, 3], DType::F32, &Device::Cpu).unwrap();
    let expect_step_5 = |e: Error| {
        let msg = e.to_string();
        assert!(msg.contains("`v`") && msg.contains("step 5"), "{msg}");
    };
    // CPU: the check itself fails, at the bad step.
    let mut w = FiniteWatch::new(&["x", "v"]);
    w.check(&good, "x", 3).unwrap();
    expect_step_5(w.check(&bad, "v", 5).unwrap_err());
    assert!(
        w.check(&good, "u", 1).is_err(),
        "an unknown name is an error"
    );
    // GPU: the checks queue; finish reports the first bad step.
    let Some(gpu) = gpu_or_skip("finite_watch_names_the_first_bad_step_on_both_devices") else {
        return;
    };
    let (good, bad) = (good.to_device(&gpu).unwrap(), bad.to_device(&gpu).unwrap());
    let mut w = FiniteWatch::new(&["x", "v"]);
    w.check(&good, "x", 3).unwrap();
    w.check(&bad, "v", 5).unwrap();
    w.check(&bad, "x", 7).unwrap();
    w.check(&bad, "v", 9).unwrap();
    expect_step_5(w.finish().unwrap_err());
    let mut w = FiniteWatch::new(&["x"]);
    w.check(&good, "x", 1).unwrap();
    w.finish().unwrap();
}
