//! Op tests written once and run on every device present: the CPU against the op's reference, then the
//! GPU under test (a real one, or the CUDA driver emulator) against the CPU on the same inputs.

use trilemma::{DType, Device, Tensor};

use super::{gpu_or_skip, max_abs_err, rel_err};

/// The CPU, then the GPU under test when there is one ([`gpu_or_skip`]: the emulator without a CUDA
/// driver; a failure under `TRILEMMA_REQUIRE_GPU=1` when there is none).
pub fn devices(test: &str) -> Vec<Device> {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu_or_skip(test));
    devices
}

/// How a GPU output must agree with the CPU's on the same inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Agree {
    /// Bit for bit: the kernel repeats the CPU twin's rounded operations in the same order.
    Exact,
    /// The GPU fp32 standard: relative L2 ≤ 1e-4 and max abs ≤ 1e-4 × max(1, max |CPU|) (libm ulps,
    /// a different summation order).
    Fp32,
}

/// Leaves a NaN block of `len` f32 values in a GPU's cache, so the next allocation of that size (the
/// op's output: same size class, last freed) starts as NaN and an element the kernel does not write
/// fails the comparison. Nothing on the CPU, whose outputs are always written whole.
pub fn poison(dev: &Device, len: usize) {
    if dev.is_cuda() {
        drop(Tensor::full(f32::NAN, &[len.max(1)], DType::F32, dev).unwrap());
    }
}

/// `got` against the CPU's `want`: the same shape, every element written, and `agree`.
pub fn check_against_cpu(case: &str, got: &Tensor, want: &Tensor, agree: Agree) {
    assert_eq!(got.shape(), want.shape(), "{case}: shape");
    let (g, w) = (got.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
    assert!(
        g.iter().all(|v| v.is_finite()),
        "{case}: unwritten (NaN) elements"
    );
    let (rel, max) = (rel_err(&g, &w), max_abs_err(&g, &w));
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    println!("{case}: rel {rel:.2e}, max abs {max:.2e}");
    match agree {
        Agree::Exact => assert!(max == 0.0, "{case}: not bit-exact (max abs {max:.3e})"),
        Agree::Fp32 => {
            assert!(rel <= 1e-4, "{case}: rel {rel:.3e}");
            assert!(max <= 1e-4 * scale.max(1.0), "{case}: max abs {max:.3e}");
        }
    }
}

/// Runs `op` (given the device, it copies its inputs there) on every device of `devices`: first the CPU,
/// whose output `cpu_check` checks against the op's own reference, then each GPU, with its output
/// poisoned and compared with the CPU's by `agree`. Returns the CPU's output.
pub fn on_every_device(
    devices: &[Device],
    case: &str,
    agree: Agree,
    op: impl Fn(&Device) -> Tensor,
    cpu_check: impl FnOnce(&Tensor),
) -> Tensor {
    let want = op(&Device::Cpu);
    cpu_check(&want);
    for dev in devices.iter().filter(|d| d.is_cuda()) {
        poison(dev, want.elem_count());
        let got = op(dev);
        assert!(got.device().is_cuda(), "{case}: the output left the GPU");
        check_against_cpu(&format!("{case} (gpu)"), &got, &want, agree);
    }
    want
}

/// A copy of `t` on `dev`.
pub fn on(dev: &Device, t: &Tensor) -> Tensor {
    t.to_device(dev).unwrap()
}
