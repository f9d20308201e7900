//! The CUDA driver emulator's speed: ns per emulated thread for barrier-free kernels (SiLU, axpby) and
//! for the implicit-GEMM conv (barriers between its K steps, so its threads run as fibers), beside the
//! CPU backend's same op on the same inputs. A benchmark, not a test: it prints, it asserts nothing
//! about time. Run it twice to see what memcheck costs:
//!
//! ```sh
//! cargo bench --bench emulator                          # memcheck on (the default)
//! TRILEMMA_EMU_MEMCHECK=0 cargo bench --bench emulator  # the unchecked kernel build
//! ```
//!
//! On a machine with a real GPU set TRILEMMA_CUDA=emulator, or it measures nothing.

use std::time::Instant;

use trilemma::ops::{self, Activation, Conv2dParams};
use trilemma::{DType, Device, Tensor};

fn random(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed)) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::from_f32(&v, shape, DType::F32, dev).expect("upload")
}

/// Mean seconds per call over enough calls to fill about half a second, after one warm-up call.
fn time(dev: &Device, f: &mut dyn FnMut()) -> f64 {
    f();
    dev.synchronize().expect("sync");
    let mut iters = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        dev.synchronize().expect("sync");
        let s = t.elapsed().as_secs_f64();
        if s > 0.5 || iters >= 1 << 16 {
            return s / iters as f64;
        }
        iters *= 4;
    }
}

fn main() {
    trilemma::device::allow_emulator_fallback();
    let gpu = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("emulator bench: no emulated device ({e})");
            return;
        }
    };
    if !trilemma::device::is_emulated() {
        eprintln!("emulator bench: this process uses a real GPU; set TRILEMMA_CUDA=emulator");
        return;
    }
    let cpu = Device::Cpu;
    println!(
        "CUDA emulator, memcheck {}, {} worker threads",
        if trilemma_cuda_emu::memcheck() {
            "on"
        } else {
            "off"
        },
        rayon::current_num_threads()
    );
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>12} {:>9}",
        "op", "threads", "cpu ms", "emulated ms", "ns/thread", "emu/cpu"
    );
    let row = |id: &str, threads: u64, cpu_s: f64, emu_s: f64| {
        println!(
            "{id:<28} {threads:>10} {:>12.3} {:>12.3} {:>12.1} {:>8.1}x",
            cpu_s * 1e3,
            emu_s * 1e3,
            emu_s * 1e9 / threads as f64,
            emu_s / cpu_s
        );
    };
    // launch_1d: 256 threads per CTA, at most 32 CTAs per SM.
    let sms = trilemma::device::cuda_devices().expect("devices")[0].multiprocessors as u64;
    let grid_1d = |n: u64| n.div_ceil(256).clamp(1, sms * 32) * 256;

    let (n, h, w, c) = (4, 32, 32, 64);
    let len = (n * h * w * c) as u64;
    let (xc, xg) = (
        random(&[n, h, w, c], 1, &cpu),
        random(&[n, h, w, c], 1, &gpu),
    );
    let t_cpu = time(&cpu, &mut || {
        drop(ops::activation(&xc, Activation::Silu).unwrap())
    });
    let t_emu = time(&gpu, &mut || {
        drop(ops::activation(&xg, Activation::Silu).unwrap())
    });
    row("silu/b4_32x32_c64", grid_1d(len), t_cpu, t_emu);

    let (mut yc, mut yg) = (
        random(&[n, h, w, c], 2, &cpu),
        random(&[n, h, w, c], 2, &gpu),
    );
    let t_cpu = time(&cpu, &mut || ops::axpby(0.5, &xc, 0.25, &mut yc).unwrap());
    let t_emu = time(&gpu, &mut || ops::axpby(0.5, &xg, 0.25, &mut yg).unwrap());
    row("axpby/b4_32x32_c64", grid_1d(len), t_cpu, t_emu);

    let (n, h, w, c) = (2, 16, 16, 64);
    let (xc, xg) = (
        random(&[n, h, w, c], 3, &cpu),
        random(&[n, h, w, c], 3, &gpu),
    );
    let (wc, wg) = (
        random(&[3, 3, c, c], 4, &cpu),
        random(&[3, 3, c, c], 4, &gpu),
    );
    let (bc, bg) = (random(&[c], 5, &cpu), random(&[c], 5, &gpu));
    let p = Conv2dParams::same(3);
    let t_cpu = time(&cpu, &mut || {
        drop(ops::conv2d(&xc, &wc, Some(&bc), &p).unwrap())
    });
    let t_emu = time(&gpu, &mut || {
        drop(ops::conv2d(&xg, &wg, Some(&bg), &p).unwrap())
    });
    // Implicit GEMM: a CTA of 256 threads per 64 output pixels x 64 output channels.
    let m = (n * h * w) as u64;
    let conv_threads = m.div_ceil(64) * (c as u64).div_ceil(64) * 256;
    row("conv3x3/b2_16x16_c64", conv_threads, t_cpu, t_emu);
}
