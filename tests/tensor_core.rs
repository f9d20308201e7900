//! The tensor-core building blocks of `kernels/common/tensor_core.cuh` (mma.sync, ldmatrix, cp.async)
//! through the one-warp kernels of `tests/emulator_kernels/tensor_core_check.cu`, against expectations
//! written from the PTX ISA here: ldmatrix's register layouts element by element, one mma tile per
//! operand type against a scalar GEMM of the operands rounded as the type rounds them, and cp.async's
//! zero-fill and groups. On the emulator the building blocks are its twins; on a GPU (the GPU check)
//! the same test checks the instructions, so a twin that drifts from the hardware fails there.

mod common;

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg};
use trilemma::Device;

struct Warp {
    stream: Arc<CudaStream>,
    module: Arc<CudaModule>,
}

impl Warp {
    fn f(&self, name: &str) -> CudaFunction {
        self.module.load_function(name).unwrap()
    }
}

fn warp(test: &str) -> Option<Warp> {
    let Device::Cuda(dev) = common::gpu_or_skip(test)? else {
        unreachable!("gpu_or_skip returns a GPU")
    };
    if trilemma::device::is_emulated() {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            trilemma_cuda_emu::register(trilemma::kernels::emulated::selftest_modules()).unwrap()
        });
    }
    let (_, image) = trilemma::kernels::TEST_FATBINS
        .iter()
        .find(|(m, _)| *m == "tensor_core_check")
        .expect("the test kernels are built with the kernels");
    let stream = Arc::clone(dev.stream());
    let module = stream
        .context()
        .load_module(cudarc::nvrtc::Ptx::from_binary(image.to_vec()))
        .unwrap();
    Some(Warp { stream, module })
}

fn one_warp() -> LaunchConfig {
    LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (32, 1, 1),
        shared_mem_bytes: 0,
    }
}

#[test]
fn ldmatrix_fills_registers_as_the_ptx_isa_lays_them_out() {
    let Some(w) = warp("ldmatrix_fills_registers_as_the_ptx_isa_lays_them_out") else {
        return;
    };
    // Four 8x8 matrices whose every element names itself: 0x1000·matrix + 0x10·row + column.
    let elem = |j: usize, r: usize, c: usize| (0x1000 * j + 0x10 * r + c) as u16;
    let m: Vec<u16> = (0..256).map(|i| elem(i / 64, (i / 8) % 8, i % 8)).collect();
    let m_dev = w.stream.clone_htod(&m).unwrap();
    let mut out = w
        .stream
        .clone_htod(&vec![0xdead_beefu32; 6 * 32 * 4])
        .unwrap();
    // SAFETY: (const uint16_t* [256], uint32_t* [6·32·4]), one warp, as the kernel reads and writes.
    unsafe {
        w.stream
            .launch_builder(&w.f("ldmatrix_layouts"))
            .arg(&m_dev)
            .arg(&mut out)
            .launch(one_warp())
    }
    .unwrap();
    let out = w.stream.clone_dtoh(&out).unwrap();
    for (v, (count, trans)) in [
        (1, false),
        (2, false),
        (4, false),
        (1, true),
        (2, true),
        (4, true),
    ]
    .into_iter()
    .enumerate()
    {
        for lane in 0..32 {
            for reg in 0..4 {
                let got = out[(v * 32 + lane) * 4 + reg];
                let want = if reg >= count {
                    0
                } else {
                    // PTX ISA, ldmatrix: lane holds row lane/4, columns 2(lane%4) + {0, 1} of matrix
                    // `reg`; .trans: rows 2(lane%4) + {0, 1}, column lane/4. Lower index low.
                    let (g, t) = (lane / 4, lane % 4);
                    let (lo, hi) = if trans {
                        (elem(reg, 2 * t, g), elem(reg, 2 * t + 1, g))
                    } else {
                        (elem(reg, g, 2 * t), elem(reg, g, 2 * t + 1))
                    };
                    u32::from(lo) | (u32::from(hi) << 16)
                };
                assert_eq!(
                    got,
                    want,
                    "x{count}{} lane {lane} reg {reg}: {got:#010x}, expected {want:#010x}",
                    if trans { ".trans" } else { "" }
                );
            }
        }
    }
}

/// `x` rounded as an operand type rounds it: bf16 and fp16 to nearest even, TF32 to nearest with ties
/// away from zero (cvt.rna).
fn round_bf16(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}
fn round_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}
fn round_tf32(x: f32) -> f32 {
    f32::from_bits(x.to_bits().wrapping_add(0x1000) & 0xffff_e000)
}

#[test]
fn one_mma_tile_per_operand_type_equals_a_scalar_gemm() {
    let Some(w) = warp("one_mma_tile_per_operand_type_equals_a_scalar_gemm") else {
        return;
    };
    // (kernel kind, K, how the operands are rounded, tolerance on ‖d − ref‖/‖ref‖): the reference
    // multiplies the rounded operands exactly (f64) and adds C; the tile accumulates in fp32, so 1e-6
    // covers its rounding. 3xTF32 rounds nothing on purpose: its reference is the fp32 operands
    // themselves, reached to fp32 accuracy (1e-5, the CPU fp32 tolerance).
    type Case = (i32, usize, fn(f32) -> f32, f64, &'static str);
    let cases: [Case; 4] = [
        (0, 16, round_bf16, 1e-6, "bf16"),
        (1, 16, round_f16, 1e-6, "f16"),
        (2, 8, round_tf32, 1e-6, "tf32"),
        (3, 8, |x| x, 1e-5, "3xtf32"),
    ];
    for (seed, (kind, k, round, tol, name)) in cases.into_iter().enumerate() {
        let a = common::random_vec(16 * k, 11 + seed as u64);
        let b = common::random_vec(k * 8, 23 + seed as u64);
        let c = common::random_vec(16 * 8, 37 + seed as u64);
        let (a_dev, b_dev, c_dev) = (
            w.stream.clone_htod(&a).unwrap(),
            w.stream.clone_htod(&b).unwrap(),
            w.stream.clone_htod(&c).unwrap(),
        );
        // Poisoned: an element the tile does not write stays NaN.
        let mut d_dev = w.stream.clone_htod(&vec![f32::NAN; 16 * 8]).unwrap();
        // SAFETY: (int, const float* a[16·k], const float* b[k·8], const float* c[128], float* d[128]),
        // one warp, as the kernel reads and writes.
        unsafe {
            w.stream
                .launch_builder(&w.f("mma_tile"))
                .arg(&kind)
                .arg(&a_dev)
                .arg(&b_dev)
                .arg(&c_dev)
                .arg(&mut d_dev)
                .launch(one_warp())
        }
        .unwrap();
        let d = w.stream.clone_dtoh(&d_dev).unwrap();
        let mut want = vec![0f32; 16 * 8];
        for i in 0..16 {
            for j in 0..8 {
                let mut s = f64::from(c[i * 8 + j]);
                for kk in 0..k {
                    s += f64::from(round(a[i * k + kk])) * f64::from(round(b[kk * 8 + j]));
                }
                want[i * 8 + j] = s as f32;
            }
        }
        let rel = common::rel_err(&d, &want);
        let max = common::max_abs_err(&d, &want);
        assert!(
            rel <= tol,
            "{name}: rel-L2 {rel:.3e} > {tol:.0e} (max abs {max:.3e})"
        );
        if kind == 2 {
            // Plain TF32 is not fp32-accurate: against the unrounded operands it is off by about
            // 2^-11 relative, which 3xTF32 above removes.
            let mut exact = vec![0f32; 16 * 8];
            for i in 0..16 {
                for j in 0..8 {
                    let mut s = f64::from(c[i * 8 + j]);
                    for kk in 0..k {
                        s += f64::from(a[i * k + kk]) * f64::from(b[kk * 8 + j]);
                    }
                    exact[i * 8 + j] = s as f32;
                }
            }
            let off = common::rel_err(&d, &exact);
            assert!(
                off > 1e-5,
                "tf32 agrees with fp32 to {off:.3e}: were the operands rounded?"
            );
        }
    }
}

#[test]
fn cp_async_zero_fills_and_lands_by_group() {
    let Some(w) = warp("cp_async_zero_fills_and_lands_by_group") else {
        return;
    };
    let src: Vec<f32> = (0..128).map(|i| 1.0 + i as f32).collect();
    let src_dev = w.stream.clone_htod(&src).unwrap();
    // Group 0 copies the first 64 floats clipped to n = 37: words 37..64 are zero-filled.
    let n = 37u32;
    let mut dst = w.stream.clone_htod(&vec![f32::NAN; 256]).unwrap();
    // SAFETY: (const float* src[128], unsigned n, float* dst[256]), one warp.
    unsafe {
        w.stream
            .launch_builder(&w.f("cp_async_groups"))
            .arg(&src_dev)
            .arg(&n)
            .arg(&mut dst)
            .launch(one_warp())
    }
    .unwrap();
    let dst = w.stream.clone_dtoh(&dst).unwrap();
    let want = |i: usize| if (37..64).contains(&i) { 0.0 } else { src[i] };
    let (after_both, after_first) = dst.split_at(128);
    for (i, &v) in after_both.iter().enumerate() {
        assert_eq!(v, want(i), "word {i} after both waits");
    }
    // After waiting for group 0 only: its words have landed.
    for (i, &v) in after_first[..64].iter().enumerate() {
        assert_eq!(v, want(i), "word {i} after the group-0 wait");
    }
    if trilemma::device::is_emulated() {
        // The emulator lands a copy at the wait that covers it, never earlier: group 1's words still
        // hold the kernel's -1 fill (on a GPU they may have landed already).
        for (i, &v) in after_first.iter().enumerate().skip(64) {
            assert_eq!(v, -1.0, "word {i} landed before its wait");
        }
    }
}
