//! The network kernels at NCSN++ CIFAR-10 sizes (batch 8, 32×32, 128 channels; attention at 16×16 with
//! 256 channels), on random inputs. Memory-bound kernels report bytes (one read of the input and one
//! write of the output: the least traffic the op needs, so GB/s compares with the copy roofline);
//! conv and attention report FLOPs (2 per multiply-add) as elements.
//! Ids: kernel/<op>/<shape>; the tensor-core convolutions kernel/conv3x3_<precision>/<shape> and
//! attention kernel/attention_<precision>/<shape>.

use criterion::{Criterion, Throughput};
use trilemma::ops::{self, Activation, AffineArgs, Conv2dParams};
use trilemma::{DType, Device, Precision, Tensor};

fn random(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed)) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::from_f32(&v, shape, DType::F32, dev).expect("upload")
}

pub fn network_kernels(c: &mut Criterion) {
    let Some(gpu) = super::gpu_or_skip() else {
        return;
    };
    let (n, h, w, ch) = (8, 32, 32, 128);
    let len = n * h * w * ch;
    let x = random(&[n, h, w, ch], 1, &gpu);
    let (scale, shift) = (random(&[ch], 2, &gpu), random(&[ch], 3, &gpu));
    let shape = format!("b{n}_{h}x{w}_c{ch}");
    let mut g = c.benchmark_group("kernel");

    let mut bench = |id: String, tp: Throughput, f: &mut dyn FnMut()| {
        g.throughput(tp);
        g.bench_function(id, |b| {
            b.iter_custom(|iters| super::time_gpu(&gpu, iters, &mut *f))
        });
    };
    bench(
        format!("activation_silu/{shape}"),
        Throughput::Bytes(2 * 4 * len as u64),
        &mut || drop(ops::activation(&x, Activation::Silu).expect("silu")),
    );
    let affine = AffineArgs {
        center: None,
        scale: Some(&scale),
        shift: Some(&shift),
    };
    bench(
        format!("group_norm_silu/{shape}_g32"),
        Throughput::Bytes(2 * 4 * len as u64),
        &mut || drop(ops::group_norm(&x, 32, 1e-6, &affine, Activation::Silu).expect("gn")),
    );
    bench(
        format!("fir_down2x/{shape}"),
        Throughput::Bytes(4 * (len + len / 4) as u64),
        &mut || drop(ops::fir_downsample2x(&x, &[1.0, 3.0, 3.0, 1.0]).expect("fir")),
    );
    let wt = random(&[3, 3, ch, ch], 4, &gpu);
    let bias = random(&[ch], 5, &gpu);
    bench(
        format!("conv3x3/{shape}"),
        Throughput::Elements((2 * len * ch * 9) as u64),
        &mut || drop(ops::conv2d(&x, &wt, Some(&bias), &Conv2dParams::same(3)).expect("conv")),
    );
    // The tensor-core convolutions (kernels/conv2d_tc.cu), one id per precision, with the weights in
    // the type the kernel reads (a layer's packed copy: no cast inside the timing); the device's
    // setting goes back to fp32 afterwards.
    for precision in [
        Precision::Tf32x3,
        Precision::Tf32,
        Precision::Bf16,
        Precision::Fp16,
    ] {
        gpu.set_precision(precision)
            .expect("a GPU takes every precision");
        let packed = ops::cast(&wt, precision.weight_dtype()).expect("packed weights");
        bench(
            format!("conv3x3_{precision}/{shape}"),
            Throughput::Elements((2 * len * ch * 9) as u64),
            &mut || {
                drop(ops::conv2d(&x, &packed, Some(&bias), &Conv2dParams::same(3)).expect("conv"))
            },
        );
    }
    gpu.set_precision(Precision::Fp32).expect("fp32");
    let (p, ca) = (16 * 16, 256);
    let qkv = random(&[n, 16, 16, 3 * ca], 6, &gpu);
    bench(
        format!("attention/b{n}_16x16_c{ca}"),
        Throughput::Elements((2 * 2 * n * p * p * ca) as u64),
        &mut || drop(ops::attention(&qkv).expect("attention")),
    );
    // The tensor-core attention (kernels/attention_tc.cu) runs at these precisions.
    for precision in [Precision::Bf16, Precision::Fp16] {
        gpu.set_precision(precision)
            .expect("a GPU takes every precision");
        bench(
            format!("attention_{precision}/b{n}_16x16_c{ca}"),
            Throughput::Elements((2 * 2 * n * p * p * ca) as u64),
            &mut || drop(ops::attention(&qkv).expect("attention")),
        );
    }
    gpu.set_precision(Precision::Fp32).expect("fp32");
    g.finish();
}
