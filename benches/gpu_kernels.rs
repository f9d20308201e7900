//! GPU kernel benchmarks. Memory roofline: a device-to-device copy (the bandwidth ceiling every
//! memory-bound kernel is measured against) and Philox normal generation (pure store bandwidth plus
//! integer and MUFU work), next to the CPU reference. Network kernels at NCSN++ CIFAR-10 sizes:
//! gpu_kernels/network.rs. Buffers are 256 MiB, far beyond L2 (50-60 MB), so every iteration
//! streams from HBM. Inputs are random, never zeros.
//!
//! Ids: copy/d2d/<MiB>MiB, randn/philox_<dtype>/<elements>, randn_cpu/philox_f32/<elements>; the
//! throughput criterion reports counts bytes read plus written (copy) or bytes written (randn).
//! Speed targets against PyTorch and the roofline: benches/targets.tsv, held by the GPU check.
//!     cargo bench --bench gpu_kernels -- --warm-up-time 1 --measurement-time 3

use std::time::Duration;

#[path = "common/gpu.rs"]
mod gpu;
#[path = "gpu_kernels/network.rs"]
mod network;

use gpu::{gpu_or_skip, time_gpu};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trilemma::ops::{randn, randn_into};
use trilemma::rng::{NoiseKey, NoiseStream};
use trilemma::{DType, Device, Tensor};

fn gpu_benches(c: &mut Criterion) {
    let Some(gpu) = gpu_or_skip() else {
        return;
    };
    const MIB: usize = 256;
    let n = MIB * (1 << 20) / 4;
    let src = randn(
        &[1, n],
        DType::F32,
        &gpu,
        NoiseKey::new(1, NoiseStream::Prior, 0),
        0,
    )
    .expect("randn");

    let mut g = c.benchmark_group("copy");
    g.throughput(Throughput::Bytes(2 * (n * 4) as u64));
    g.bench_function(format!("d2d/{MIB}MiB"), |b| {
        b.iter_custom(|iters| {
            time_gpu(&gpu, iters, || {
                // Allocation comes from the warm pool; the copy is the only device work.
                let dst = src.to_device(&gpu).expect("d2d copy");
                drop(dst);
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("randn");
    for dtype in DType::ALL {
        let elems = MIB * (1 << 20) / 4;
        let mut out = Tensor::zeros(&[64, elems / 64], dtype, &gpu).expect("alloc");
        g.throughput(Throughput::Bytes((elems * dtype.size_in_bytes()) as u64));
        g.bench_function(format!("philox_{dtype}/{elems}"), |b| {
            let mut step = 0;
            b.iter_custom(|iters| {
                time_gpu(&gpu, iters, || {
                    step += 1;
                    randn_into(&mut out, NoiseKey::new(7, NoiseStream::Step, step), 0)
                        .expect("randn");
                })
            })
        });
    }
    g.finish();
}

fn cpu_benches(c: &mut Criterion) {
    let elems = 1 << 20;
    let mut out = Tensor::zeros(&[16, elems / 16], DType::F32, &Device::Cpu).expect("alloc");
    let mut g = c.benchmark_group("randn_cpu");
    g.throughput(Throughput::Bytes((elems * 4) as u64));
    g.bench_function(format!("philox_f32/{elems}"), |b| {
        let mut step = 0;
        b.iter(|| {
            step += 1;
            randn_into(&mut out, NoiseKey::new(7, NoiseStream::Step, step), 0).expect("randn");
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500));
    targets = gpu_benches, network::network_kernels, cpu_benches
}
criterion_main!(benches);
