//! CLD's SSCS half-step coefficients through the host build of kernels/common/cld_sscs.h, against the
//! reference fixture (float64, PyTorch in the official op order).

mod common;

use trilemma::io::safetensors::SafeTensors;
use trilemma::samplers::cld::CldSde;
use trilemma::Error;

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
