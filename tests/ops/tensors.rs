//! Tensors on a device: copies, the caching allocator's reuse, mixing devices, running out of memory,
//! and the constructors' checks.

use trilemma::ops::{axpby, randn};
use trilemma::rng::{NoiseKey, NoiseStream};
use trilemma::{DType, Device, Error, Tensor};

use crate::common::{gpu_or_skip, random_vec};

#[test]
fn tensor_constructors_validate_lengths() {
    let e = Tensor::from_f32(&[1.0, 2.0, 3.0], &[2, 2], DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::InvalidParam { .. }), "{e}");
    let e = Tensor::full(0.0, &[usize::MAX, 3], DType::F32, &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("fits in usize"), "{e}");
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
