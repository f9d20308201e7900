//! LSGM's sigma^2(t), g^2(t) and mixed prediction through the host build of kernels/common/lsgm_sde.h,
//! against the reference fixtures (float32, official constant rounding and op order).

mod common;

use trilemma::samplers::lsgm::{mixed_eps, LsgmSde};
use trilemma::Error;

use common::{fixture_values as values, open_fixture as open, ulps_f32 as ulps};

#[test]
fn var_and_g2_match_the_reference() {
    let st = open("sampler_lsgm_sde_coefficients");
    let t = values(&st, "in.t");
    let sdes = [
        ("cifar10", LsgmSde::vp(0.1, 20.0, 0.0).unwrap()),
        (
            "cifar10_nll",
            LsgmSde::geometric(3e-5, 0.999, 3e-5).unwrap(),
        ),
    ];
    for (name, sde) in sdes {
        let (var, g2) = (
            values(&st, &format!("out.{name}.var")),
            values(&st, &format!("out.{name}.g2")),
        );
        for (i, &ti) in t.iter().enumerate() {
            // Same float32 constants and operations; expf/powf (glibc) and PyTorch's may differ by an ulp,
            // which 1 - (...) can turn into a few ulps of a small variance.
            assert!(
                ulps(sde.var(ti), var[i]) <= 4,
                "{name} var({ti}): {} vs {}",
                sde.var(ti),
                var[i]
            );
            assert!(
                ulps(sde.g2(ti), g2[i]) <= 2,
                "{name} g2({ti}): {} vs {}",
                sde.g2(ti),
                g2[i]
            );
        }
    }
}

#[test]
fn mixed_prediction_matches_the_reference() {
    let st = open("sampler_lsgm_mixed_score");
    let (z, eps, logit, want) = (
        values(&st, "in.z_t"),
        values(&st, "in.eps_pred"),
        values(&st, "in.mixing_logit"),
        values(&st, "out.eps"),
    );
    let t: f32 = st.metadata()["t"].parse().unwrap();
    let var = LsgmSde::vp(0.1, 20.0, 0.0).unwrap().var(t);
    let (c, hw) = (logit.len(), 16);
    let got: Vec<f32> = (0..z.len())
        .map(|i| mixed_eps(eps[i], z[i], logit[(i / hw) % c], var))
        .collect();
    assert!(
        common::rel_err(&got, &want) <= 1e-6,
        "rel {}",
        common::rel_err(&got, &want)
    );
    assert!(
        common::max_abs_err(&got, &want) <= 1e-6,
        "max {}",
        common::max_abs_err(&got, &want)
    );
}

#[test]
fn bad_sdes_are_errors() {
    for e in [
        LsgmSde::vp(0.0, 20.0, 0.0).unwrap_err(),
        LsgmSde::vp(0.1, 20.0, 1.5).unwrap_err(),
        LsgmSde::geometric(0.999, 3e-5, 0.0).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::InvalidParam { op: "lsgm sde", .. }),
            "{e}"
        );
    }
}
