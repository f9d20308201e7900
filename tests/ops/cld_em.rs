//! CLD's Euler–Maruyama step op (`ops::cld_em_step`, `kernels/cld_em.cu`), on every device: with Philox noise on the CPU it equals the
//! tensor path bit for bit; on the GPU the fused kernel gives the CPU's bits with a noise tensor or no
//! noise (the denoising step), and the CPU's values within the normals' host/device ulps with
//! in-kernel Philox (relative L2 ≤ 1e-6).

use crate::common::devices::devices;
use crate::common::{max_abs_err, random_vec, rel_err};
use trilemma::ops::{cld_em_step, randn, CldEmCoefficients, UDraw};
use trilemma::rng::{NoiseKey, NoiseStream};
use trilemma::{DType, Device, Tensor};

const K: CldEmCoefficients = CldEmCoefficients {
    neg_ell: -1.7,
    neg_inv_svv: -2.3,
    a_xv: -0.02,
    c_vx: 0.01,
    c_vv: 1.003,
    c_vs: 0.04,
    diffusion: 0.11,
};

#[derive(Clone, Copy)]
enum Kind {
    Philox,
    Tensor,
    NoNoise,
}

/// The step on `dev` and on the CPU (with the noise as a tensor where there is noise).
fn pair(dev: &Device, kind: Kind) -> (Vec<f32>, Vec<f32>) {
    let shape = [2, 3, 5, 3]; // C = 3: Philox blocks straddle the halves
    let n: usize = shape.iter().product();
    let make =
        |seed| Tensor::from_f32(&random_vec(n, seed), &shape, DType::F32, &Device::Cpu).unwrap();
    let (x, v, a) = (make(1), make(2), make(3));
    let key = NoiseKey::new(9, NoiseStream::Step, 4);
    let z = randn(&[2, 3, 5, 6], DType::F32, &Device::Cpu, key, 6).unwrap();
    let cpu_noise = match kind {
        Kind::NoNoise => None,
        _ => Some(UDraw::Tensor(&z)),
    };
    let (wx, wv) = cld_em_step(&x, &v, &a, &K, cpu_noise).unwrap();
    let on = |t: &Tensor| t.to_device(dev).unwrap();
    let dz = on(&z);
    let noise = match kind {
        Kind::Philox => Some(UDraw::Philox {
            key,
            first_sample: 6,
        }),
        Kind::Tensor => Some(UDraw::Tensor(&dz)),
        Kind::NoNoise => None,
    };
    let (gx, gv) = cld_em_step(&on(&x), &on(&v), &on(&a), &K, noise).unwrap();
    let cat = |p: Tensor, q: Tensor| {
        let mut out = p.to_vec_f32().unwrap();
        out.extend(q.to_vec_f32().unwrap());
        out
    };
    (cat(gx, gv), cat(wx, wv))
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn em_step_matches_the_cpu_tensor_step_on_every_device() {
    for dev in devices("em_step_matches_the_cpu_tensor_step_on_every_device") {
        if !dev.is_cuda() {
            // Philox noise on the CPU equals the tensor path bit for bit.
            let (got, want) = pair(&dev, Kind::Philox);
            assert!(bits_equal(&got, &want));
            // The noiseless step differs from the noisy one only in v.
            let (quiet, _) = pair(&dev, Kind::NoNoise);
            let half = quiet.len() / 2;
            assert!(bits_equal(&quiet[..half], &want[..half]));
            assert!(!bits_equal(&quiet[half..], &want[half..]));
            continue;
        }
        // The fused kernel: the CPU's bits with a noise tensor or no noise.
        for kind in [Kind::Tensor, Kind::NoNoise] {
            let (got, want) = pair(&dev, kind);
            assert!(got.iter().all(|v| v.is_finite()), "unwritten elements");
            assert!(
                bits_equal(&got, &want),
                "max abs {:.3e}",
                max_abs_err(&got, &want)
            );
        }
        // In-kernel Philox: the normals' host/device ulps.
        let (got, want) = pair(&dev, Kind::Philox);
        let rel = rel_err(&got, &want);
        println!("em step, in-kernel Philox: rel {rel:.2e}");
        assert!(rel <= 1e-6, "rel {rel:.3e}");
    }
}

#[test]
fn em_step_shape_errors_name_the_tensor() {
    let t = |shape: &[usize]| Tensor::full(0.5, shape, DType::F32, &Device::Cpu).unwrap();
    let (x, bad) = (t(&[1, 2, 2, 3]), t(&[1, 2, 2, 4]));
    let err = cld_em_step(&x, &x, &bad, &K, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`alpha`"), "{err}");
    let z = t(&[1, 2, 2, 3]);
    let err = cld_em_step(&x, &x, &x, &K, Some(UDraw::Tensor(&z)))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`noise`"), "{err}");
}
