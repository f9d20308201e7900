//! CPU forward of every network (the CPU backend is the fallback that samples small models), with the
//! rate in GFLOP/s: criterion's "elem/s" here counts FLOPs (2 per multiply-add of conv, dense and
//! attention matmuls, as torch.utils.flop_counter counts them for the PyTorch baseline).
//!
//! - cpu_forward/<model>_<part>/b<B>: the converted small test models (tests/models).
//! - cpu_forward/net/<family>/<preset>/b1: released networks (DDGAN CIFAR-10, CLD CIFAR-10, LSGM MNIST
//!   score network) at batch 1 with random weights (timing only), the ids of the PyTorch baseline's
//!   `net/<family>/<preset>/b1/fp32` (`tools/bench_pytorch.py --device cpu --modes fp32 --quick`).
//! - cpu_gemm/sgemm_1thread/<n>: the machine's single-core f32 GEMM rate (matrixmultiply), the yardstick
//!   for the conv-heavy block below.
//! - cpu_conv/3x3_c128_32x32/b1/<threads>: one NCSN++ 3×3 conv at CIFAR-10 width, on one core and on all.
//!
//!     cargo bench --bench cpu_networks -- --warm-up-time 1 --measurement-time 5
//!
//! Results: docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use trilemma::io::safetensors::SafeTensors;
use trilemma::models::released::RELEASED_NETWORKS;
use trilemma::models::{Family, Model};
use trilemma::ops::{self, Conv2dParams};
use trilemma::Part;
use trilemma::{DType, Device, Tensor};

fn source_dir() -> PathBuf {
    std::env::var_os("TRILEMMA_SOURCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Values in [-1, 1) from a fixed LCG: benchmark inputs are random, never zeros.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// FLOPs of one call of `f`, counted by the ops.
fn flops_of(f: &mut impl FnMut()) -> u64 {
    ops::reset_flop_count();
    f();
    ops::flops_counted()
}

fn small_models(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu_forward");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let models = source_dir().join("tests").join("models");
    let calls: [(&str, &str, Option<Part>); 5] = [
        ("cld_small", "score", None),
        ("ddgan_small", "generator", None),
        ("lsgm_small", "score", Some(Part::Score)),
        ("lsgm_small", "encoder", Some(Part::Encoder)),
        ("lsgm_small", "decoder", Some(Part::Decoder)),
    ];
    for (model, part, lsgm_part) in calls {
        let dir = models.join(model);
        let m = Model::load(&dir, &Device::Cpu).expect("load test model");
        let inputs = SafeTensors::open(dir.join(format!("forward_{part}.inputs.safetensors")))
            .expect("inputs");
        let mut run = || {
            m.forward_safetensors(&inputs, lsgm_part).expect("forward");
        };
        let flops = flops_of(&mut run);
        let batch = inputs
            .entries()
            .values()
            .find(|e| e.shape.len() == 4)
            .map(|e| e.shape[0])
            .unwrap_or(1);
        g.throughput(Throughput::Elements(flops));
        g.bench_function(
            BenchmarkId::new(format!("{model}_{part}"), format!("b{batch}")),
            |b| b.iter(&mut run),
        );
    }
    g.finish();
}

fn released(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu_forward");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for released in RELEASED_NETWORKS {
        let (id, family) = (format!("net/{}/b1", released.id()), released.family);
        let net = released
            .build_random(1, &Device::Cpu)
            .expect("build released network");
        let a = net.arch();
        let (cin, size) = (a.in_channels, a.image_size);
        let x = Tensor::from_f32(
            &random(cin * size * size, 2),
            &[1, cin, size, size],
            DType::F32,
            &Device::Cpu,
        )
        .expect("x");
        let z = a.zemb.map(|(nz, _, _)| {
            Tensor::from_f32(&random(nz, 3), &[1, nz], DType::F32, &Device::Cpu).expect("z")
        });
        let t = if family == Family::Ddgan { 2.0 } else { 0.5 };
        let mut run = || {
            net.forward(&x, &[t], z.as_ref()).expect("forward");
        };
        let flops = flops_of(&mut run);
        g.throughput(Throughput::Elements(flops));
        g.bench_function(&id, |b| b.iter(&mut run));
    }
    g.finish();
}

fn gemm_and_conv(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread pool");

    // Single-core GEMM rate: C = A·B with n×n matrices as one GEMM call on one thread.
    let n = 512;
    let a = Tensor::from_f32(&random(n * n, 4), &[n, n], DType::F32, &Device::Cpu).expect("a");
    let b = Tensor::from_f32(&random(n * n, 5), &[n, n], DType::F32, &Device::Cpu).expect("b");
    let mut g = c.benchmark_group("cpu_gemm");
    g.sample_size(20);
    g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    g.bench_function(format!("sgemm_1thread/{n}"), |bch| {
        bch.iter(|| one.install(|| ops::linear(&a, &b, None).expect("gemm")))
    });
    g.finish();

    // NCSN++'s most common conv at CIFAR-10 width: 3×3, 128 → 128 channels, 32×32, batch 1.
    let x = Tensor::from_f32(
        &random(32 * 32 * 128, 6),
        &[1, 32, 32, 128],
        DType::F32,
        &Device::Cpu,
    )
    .expect("x");
    let w = Tensor::from_f32(
        &random(128 * 9 * 128, 7),
        &[3, 3, 128, 128],
        DType::F32,
        &Device::Cpu,
    )
    .expect("w");
    let p = Conv2dParams::same(3);
    let flops = 2 * (32 * 32 * 128 * 9 * 128) as u64;
    let mut g = c.benchmark_group("cpu_conv");
    g.sample_size(20);
    g.throughput(Throughput::Elements(flops));
    g.bench_function("3x3_c128_32x32/b1/1thread", |bch| {
        bch.iter(|| one.install(|| ops::conv2d(&x, &w, None, &p).expect("conv")))
    });
    g.bench_function(
        format!("3x3_c128_32x32/b1/{}threads", rayon::current_num_threads()),
        |bch| bch.iter(|| ops::conv2d(&x, &w, None, &p).expect("conv")),
    );
    g.finish();
}

criterion_group!(benches, gemm_and_conv, small_models, released);
criterion_main!(benches);
