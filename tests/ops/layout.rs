//! The layout ops (`kernels/layout.cu`): channel concat and slice, crops, NCHW ↔ NHWC, per-channel
//! means and DDGAN's PixelNorm. On every device: the CPU against the moves themselves (index by index)
//! and float64 sums, every GPU against the CPU bit for bit (data movement; the sums in f64 in the same
//! order).

use trilemma::ops;
use trilemma::{DType, Device, Tensor};

use crate::common::devices::{devices, on, on_every_device, Agree};
use crate::common::random_vec;

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(&random_vec(n, seed), shape, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn layout_ops_match_their_reference_on_every_device() {
    let devices = devices("layout_ops_match_their_reference_on_every_device");
    let (n, h, w, ca, cb) = (2, 5, 3, 7, 4);
    let a = tensor(&[n, h, w, ca], 11);
    let b = tensor(&[n, h, w, cb], 12);
    let (av, bv) = (a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap());
    let exact = |want: Vec<f32>| move |out: &Tensor| assert_eq!(out.to_vec_f32().unwrap(), want);
    let pixels = n * h * w;
    let concat: Vec<f32> = (0..pixels)
        .flat_map(|p| {
            av[p * ca..(p + 1) * ca]
                .iter()
                .chain(&bv[p * cb..(p + 1) * cb])
        })
        .copied()
        .collect();
    on_every_device(
        &devices,
        "concat",
        Agree::Exact,
        |d| ops::concat_channels(&on(d, &a), &on(d, &b)).unwrap(),
        exact(concat),
    );
    for (start, len) in [(0, 7), (2, 3), (6, 1)] {
        let slice: Vec<f32> = (0..pixels)
            .flat_map(|p| &av[p * ca + start..p * ca + start + len])
            .copied()
            .collect();
        on_every_device(
            &devices,
            &format!("slice {start}+{len}"),
            Agree::Exact,
            |d| ops::slice_channels(&on(d, &a), start, len).unwrap(),
            exact(slice),
        );
    }
    let (top, left, ho, wo) = (1, 1, 3, 2);
    let mut crop = Vec::new();
    for s in 0..n {
        for y in top..top + ho {
            for x in left..left + wo {
                let p = (s * h + y) * w + x;
                crop.extend_from_slice(&av[p * ca..(p + 1) * ca]);
            }
        }
    }
    on_every_device(
        &devices,
        "crop",
        Agree::Exact,
        |d| ops::crop(&on(d, &a), top, left, ho, wo).unwrap(),
        exact(crop),
    );
    let mut nchw = vec![0f32; av.len()];
    for s in 0..n {
        for p in 0..h * w {
            for c in 0..ca {
                nchw[(s * ca + c) * h * w + p] = av[(s * h * w + p) * ca + c];
            }
        }
    }
    on_every_device(
        &devices,
        "nhwc -> nchw",
        Agree::Exact,
        |d| ops::nhwc_to_nchw(&on(d, &a)).unwrap(),
        exact(nchw),
    );
    on_every_device(
        &devices,
        "nchw -> nhwc",
        Agree::Exact,
        |d| ops::nchw_to_nhwc(&ops::nhwc_to_nchw(&on(d, &a)).unwrap()).unwrap(),
        exact(av.clone()),
    );
    let means: Vec<f32> = (0..n * ca)
        .map(|i| {
            let (s, c) = (i / ca, i % ca);
            let sum: f64 = (0..h * w)
                .map(|p| av[(s * h * w + p) * ca + c] as f64)
                .sum();
            (sum / (h * w) as f64) as f32
        })
        .collect();
    on_every_device(
        &devices,
        "channel mean",
        Agree::Exact,
        |d| ops::channel_mean(&on(d, &a)).unwrap(),
        exact(means),
    );
    // DDGAN's PixelNorm of z [rows, nz]: f64 sums in the same order on both devices, bit-identical.
    // Rows of 1 and of an odd width; batch 1 and 3.
    for (rows, nz) in [(1, 100), (3, 37), (2, 1)] {
        let z = tensor(&[rows, nz], 13 + nz as u64);
        let zv = z.to_vec_f32().unwrap();
        on_every_device(
            &devices,
            &format!("pixel norm {rows}x{nz}"),
            Agree::Exact,
            |d| ops::pixel_norm(&on(d, &z)).unwrap(),
            |out| {
                let got = out.to_vec_f32().unwrap();
                for (r, row) in zv.chunks(nz).enumerate() {
                    let ms: f64 = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / nz as f64;
                    let norm = (ms + 1e-8).sqrt();
                    for (k, &v) in row.iter().enumerate() {
                        let want = v as f64 / norm;
                        let g = got[r * nz + k] as f64;
                        assert!(
                            (g - want).abs() <= 1e-6 * want.abs().max(1.0),
                            "pixel norm {rows}x{nz}"
                        );
                    }
                }
            },
        );
    }
}
