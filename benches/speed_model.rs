//! The speed model's shapes on the GPU (`src/speed_model.rs`, table in `docs/kernels.md`): every main
//! NCSN++ CIFAR-10 convolution at batch 256 and 1 with the device at bf16 (the tensor-core kernels,
//! the launch plan the engine chooses), and the attention. Ids `model/...` as in
//! `benches/speed_model.tsv`; the PyTorch baseline (`tools/bench_pytorch.py`) times cuDNN / SDPA at
//! bf16 channels_last under the same ids, and the GPU check's report puts measured, predicted and
//! PyTorch side by side. Inputs are random, never zeros. Skips without a GPU (fails under
//! TRILEMMA_REQUIRE_GPU=1).
//!     cargo bench --bench speed_model -- --warm-up-time 1 --measurement-time 3

#[path = "common/gpu.rs"]
mod gpu;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gpu::{gpu_or_skip, time_gpu};
use trilemma::ops::{self, Conv2dParams};
use trilemma::rng::{NoiseKey, NoiseStream};
use trilemma::speed_model::{ATTENTION_SHAPES, CONV_SHAPES};
use trilemma::{DType, Device, Precision, Tensor};

fn random(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let key = NoiseKey::new(seed, NoiseStream::Prior, 0);
    ops::randn(shape, DType::F32, dev, key, 0).expect("random input")
}

fn speed_model(c: &mut Criterion) {
    let Some(gpu) = gpu_or_skip() else {
        return;
    };
    gpu.set_precision(Precision::Bf16)
        .expect("a GPU takes every precision");
    let mut g = c.benchmark_group("model");
    for (i, s) in CONV_SHAPES.iter().enumerate() {
        let seed = 10 * i as u64;
        // bf16 activations and packed bf16 weights: a `--precision bf16` network's convolution.
        let x = ops::cast(
            &random(&[s.batch, s.hw, s.hw, s.cin], seed, &gpu),
            DType::BF16,
        )
        .expect("bf16 activations");
        let w = ops::cast(
            &random(&[s.k, s.k, s.cin, s.cout], seed + 1, &gpu),
            DType::BF16,
        )
        .expect("packed weights");
        let b = random(&[s.cout], seed + 2, &gpu);
        let gemm = s.gemm();
        g.throughput(Throughput::Elements(
            2 * (gemm.m * gemm.cog * gemm.k) as u64,
        ));
        let id = s.id();
        let mut f = || drop(ops::conv2d(&x, &w, Some(&b), &Conv2dParams::same(s.k)).expect("conv"));
        g.bench_function(id.trim_start_matches("model/"), |bch| {
            bch.iter_custom(|iters| time_gpu(&gpu, iters, &mut f))
        });
    }
    for (i, a) in ATTENTION_SHAPES.iter().enumerate() {
        let l = a.hw * a.hw;
        let qkv = ops::cast(
            &random(
                &[a.batch, a.hw, a.hw, 3 * a.channels],
                1000 + i as u64,
                &gpu,
            ),
            DType::BF16,
        )
        .expect("bf16 activations");
        g.throughput(Throughput::Elements(
            (2 * 2 * a.batch * l * l * a.channels) as u64,
        ));
        let mut f = || drop(ops::attention(&qkv).expect("attention"));
        g.bench_function(a.id().trim_start_matches("model/"), |bch| {
            bch.iter_custom(|iters| time_gpu(&gpu, iters, &mut f))
        });
    }
    g.finish();
    gpu.set_precision(Precision::Fp32).expect("fp32");
}

criterion_group!(benches, speed_model);
criterion_main!(benches);
