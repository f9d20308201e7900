//! DDGAN's posterior coefficients through the host build of kernels/common/ddgan_schedule.h, against
//! the reference fixture (PyTorch, official op order) and the values of the DDGAN specification.

mod common;

use trilemma::samplers::ddgan::PosteriorCoefficients;
use trilemma::Error;

fn fixture(name: &str) -> Vec<f32> {
    common::fixture_values(&common::open_fixture("sampler_ddgan_posterior_step"), name)
}

#[test]
fn coefficients_match_the_reference_fixture() {
    let c = PosteriorCoefficients::new(4, 0.1, 20.0).unwrap();
    // +, -, *, / and sqrt are correctly rounded in both: bit-identical.
    assert_eq!(c.coef1, fixture("out.coef1"));
    assert_eq!(c.coef2, fixture("out.coef2"));
    // logf (glibc) and PyTorch's log may differ by an ulp.
    for (i, (a, b)) in c.log_var.iter().zip(fixture("out.log_var")).enumerate() {
        assert!(common::ulps_f32(*a, b) <= 1, "log_var[{i}]: {a} vs {b}");
    }
}

#[test]
fn coefficients_match_the_specification_tables() {
    // specs: DDGAN §1.2, float32 values the official code produces (T = 4 and T = 2), printed with more
    // digits than an f32 literal holds, so compared in f64.
    let c = PosteriorCoefficients::new(4, 0.1, 20.0).unwrap();
    let want1 = [1.000_000_1f64, 0.665_778_46, 0.269_190_85, 0.057_821_56];
    let want2 = [0.0f64, 0.201_576_26, 0.193_000_87, 0.111_852_22];
    let want_std = [0.0f64, 0.663_942_1, 0.940_320_37, 0.991_998_37];
    for i in 0..4 {
        let (c1, c2, sd) = (c.coef1[i] as f64, c.coef2[i] as f64, c.noise_std(i) as f64);
        assert!((c1 - want1[i]).abs() <= 1e-7, "coef1[{i}] {c1}");
        assert!((c2 - want2[i]).abs() <= 1e-7, "coef2[{i}] {c2}");
        assert!((sd - want_std[i]).abs() <= 1e-6, "std[{i}] {sd}");
    }
    assert_eq!(
        c.coef2[0], 0.0,
        "the last step is the generator's prediction"
    );
    let c2 = PosteriorCoefficients::new(2, 0.1, 20.0).unwrap();
    assert!((c2.coef1[1] as f64 - 0.280_350_54).abs() <= 1e-7);
    assert!((c2.coef2[1] as f64 - 0.021_587_43).abs() <= 1e-7);
    assert!((c2.noise_std(1) as f64 - 0.959_613_5).abs() <= 1e-6);
}

#[test]
fn bad_schedules_are_errors() {
    for (t, lo, hi) in [
        (0, 0.1, 20.0),
        (65, 0.1, 20.0),
        (4, 0.0, 20.0),
        (4, 20.0, 0.1),
        (4, 0.1, f64::NAN),
    ] {
        let e = PosteriorCoefficients::new(t, lo, hi).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParam {
                    op: "ddgan schedule",
                    ..
                }
            ),
            "{e}"
        );
    }
}
