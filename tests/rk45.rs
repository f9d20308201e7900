//! RK45 against known solutions, with SciPy's evaluation counts (scipy 1.x `solve_ivp(method="RK45",
//! t_eval=[t0, t1])` on the same problems gives these NFE and end values).

use trilemma::samplers::rk45::solve;

#[test]
fn gaussian_decay_matches_scipy() {
    // y' = -2 t y, y(0) = 1: y(2) = exp(-4).
    let (y, st) = solve(
        |t, y| Ok(vec![-2.0 * t * y[0]]),
        0.0,
        2.0,
        &[1.0],
        1e-6,
        1e-6,
    )
    .unwrap();
    assert_eq!(st.nfev, 116, "{st:?}");
    assert!((y[0] - 0.018315925497409288).abs() < 1e-12, "{}", y[0]);
    assert!((y[0] - (-4.0f64).exp()).abs() < 1e-6);
}

#[test]
fn oscillator_matches_scipy_forward_and_backward() {
    let f = |_t: f64, y: &[f64]| Ok(vec![y[1], -y[0]]);
    let (y, st) = solve(f, 0.0, 10.0, &[1.0, 0.0], 1e-5, 1e-5).unwrap();
    assert_eq!(st.nfev, 146, "{st:?}");
    assert!(
        (y[0] - -0.8390245776995385).abs() < 1e-10 && (y[1] - 0.5440289395898465).abs() < 1e-10
    );
    let (y, st) = solve(f, 3.0, 0.0, &[3f64.cos(), -3f64.sin()], 1e-5, 1e-5).unwrap();
    assert_eq!(st.nfev, 50, "{st:?}");
    assert!(
        (y[0] - 0.9999904067172872).abs() < 1e-10 && (y[1] - 8.622808888358868e-06).abs() < 1e-10
    );
}

#[test]
fn bad_tolerances_and_failing_right_hand_sides_are_errors() {
    assert!(solve(|_, y| Ok(y.to_vec()), 0.0, 1.0, &[1.0], 0.0, 1e-6).is_err());
    let err = solve(|_, _| Ok(vec![f64::NAN]), 0.0, 1.0, &[1.0], 1e-6, 1e-6).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}
