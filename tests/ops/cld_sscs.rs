//! CLD's SSCS half step (`kernels/cld_sscs.cu`): its coefficients through the host build of
//! kernels/common/cld_sscs.h against the reference fixture (float64, PyTorch in the official op
//! order), then the op on every device: with Philox noise on the CPU it equals the tensor path bit for
//! bit; a GPU's fused kernel gives the CPU's bits with a noise tensor and its values within the
//! normals' host/device ulps with in-kernel Philox.

use crate::common;
use crate::common::devices::devices;

use trilemma::io::safetensors::SafeTensors;
use trilemma::samplers::cld::CldSde;
use trilemma::{Device, Error};

fn f64s(st: &SafeTensors, name: &str) -> Vec<f64> {
    assert_eq!(st.entry(name).unwrap().dtype, "F64", "{name}");
    st.bytes_of(name)
        .unwrap()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn half_step_coefficients_match_the_reference_fixture() {
    let st = common::open_fixture("sampler_cld_sscs_coefficients");
    let (taus, dts) = (f64s(&st, "in.tau"), f64s(&st, "in.dt_half"));
    for preset in ["cifar10", "celeba_post_paper"] {
        let sde = CldSde::released(preset).unwrap();
        let want = f64s(&st, &format!("out.{preset}"));
        for (row, (&tau, &dt)) in taus.iter().zip(&dts).enumerate() {
            let c = sde.sscs_half_step(tau, dt).unwrap();
            let got = [c.e1, c.cxx, c.cxv, c.cvx, c.cvv, c.l11, c.l21, c.l22];
            for (k, (&g, &w)) in got.iter().zip(&want[row * 8..row * 8 + 8]).enumerate() {
                // float64 in both, same formulas; exp/sqrt may differ in the last bits.
                assert!(
                    (g - w).abs() <= 1e-13 * w.abs() + 1e-18,
                    "{preset} row {row} col {k}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    let sde = CldSde::released("cifar10").unwrap();
    for (tau, dt) in [(-0.1, 0.01), (0.5, 0.0), (0.99, 0.02), (f64::NAN, 0.01)] {
        let e = sde.sscs_half_step(tau, dt).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParam {
                    op: "sscs half step",
                    ..
                }
            ),
            "{e}"
        );
    }
    assert!(CldSde::released("stl10").is_err());
}

/// The half step at τ = 0.3, Δt = 0.01 of an SDE with β = 4, M⁻¹ = 4.
fn half_step() -> trilemma::samplers::cld::SscsHalfStep {
    let sde = CldSde {
        beta0: 4.0,
        beta1: 0.0,
        m_inv: 4.0,
        sscs_num_stab: 0.0,
    };
    sde.sscs_half_step(0.3, 0.01).unwrap()
}

/// The half step of random x, v on `dev` with Philox noise (fused on the GPU) or a noise tensor, and
/// the CPU's unfused step with the same noise as a tensor.
fn sscs_pair(dev: &Device, philox: bool) -> (Vec<f32>, Vec<f32>) {
    use common::random_vec;
    use trilemma::ops::{cld_sscs_half_step, randn, UDraw};
    use trilemma::rng::{NoiseKey, NoiseStream};
    use trilemma::{DType, Tensor};
    let k = half_step();
    let shape = [3, 5, 4, 3]; // C = 3 as CIFAR's x: Philox blocks straddle the x and v halves
    let n: usize = shape.iter().product();
    let make =
        |seed| Tensor::from_f32(&random_vec(n, seed), &shape, DType::F32, &Device::Cpu).unwrap();
    let (x, v) = (make(5), make(6));
    let key = NoiseKey::new(123, NoiseStream::Step, 7);
    let z = randn(&[3, 5, 4, 6], DType::F32, &Device::Cpu, key, 11).unwrap();
    let (wx, wv) = cld_sscs_half_step(&x, &v, &k, UDraw::Tensor(&z)).unwrap();
    let (dx, dv, dz) = (
        x.to_device(dev).unwrap(),
        v.to_device(dev).unwrap(),
        z.to_device(dev).unwrap(),
    );
    let noise = if philox {
        UDraw::Philox {
            key,
            first_sample: 11,
        }
    } else {
        UDraw::Tensor(&dz)
    };
    let (gx, gv) = cld_sscs_half_step(&dx, &dv, &k, noise).unwrap();
    let cat = |a: Tensor, b: Tensor| {
        let mut v = a.to_vec_f32().unwrap();
        v.extend(b.to_vec_f32().unwrap());
        v
    };
    (cat(gx, gv), cat(wx, wv))
}

#[test]
fn half_step_matches_the_cpu_tensor_step_on_every_device() {
    for dev in devices("half_step_matches_the_cpu_tensor_step_on_every_device") {
        if !dev.is_cuda() {
            // Philox noise on the CPU equals the tensor path bit for bit.
            let (got, want) = sscs_pair(&dev, true);
            assert!(got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            continue;
        }
        // With the noise as a tensor: the same rounded operations, bit for bit.
        let (got, want) = sscs_pair(&dev, false);
        assert!(got.iter().all(|v| v.is_finite()), "unwritten elements");
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "tensor noise: max abs {:.3e}",
            common::max_abs_err(&got, &want)
        );
        // Philox in the kernel: the device's normals differ from glibc's by a few ulp.
        let (got, want) = sscs_pair(&dev, true);
        let rel = common::rel_err(&got, &want);
        println!("sscs half step, in-kernel Philox: rel {rel:.2e}");
        assert!(rel <= 1e-6, "rel {rel:.3e}");
    }
}

#[test]
fn half_step_shape_errors_name_the_tensor() {
    use trilemma::ops::{cld_sscs_half_step, UDraw};
    use trilemma::{DType, Tensor};
    let k = half_step();
    let t = |shape: &[usize]| Tensor::full(0.5, shape, DType::F32, &Device::Cpu).unwrap();
    let (x, v) = (t(&[1, 2, 2, 3]), t(&[1, 2, 2, 3]));
    for (xx, vv, z, needle) in [
        (&x, &t(&[1, 2, 2, 4]), t(&[1, 2, 2, 6]), "`v`"),
        (&x, &v, t(&[1, 2, 2, 3]), "`noise`"),
        (&t(&[2, 3]), &t(&[2, 3]), t(&[2, 6]), "NHWC"),
    ] {
        let err = cld_sscs_half_step(xx, vv, &k, UDraw::Tensor(&z))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}
