//! RK45 against known solutions, with SciPy's evaluation counts (scipy 1.x `solve_ivp(method="RK45",
//! t_eval=[t0, t1])` on the same problems gives these NFE and end values).

use trilemma::samplers::ode::rk45::solve;

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

#[test]
fn fixed_step_rk4_is_fourth_order_on_a_known_solution() {
    // y' = -2 t y, y(0) = 1 on [0, 2]: y(2) = exp(-4). Halving the step divides the error by ~16.
    let err = |steps| {
        let (y, nfe) = trilemma::samplers::ode::rk4::solve(
            |t, y| Ok(vec![-2.0 * t * y[0]]),
            0.0,
            2.0,
            &[1.0],
            steps,
        )
        .unwrap();
        assert_eq!(nfe, 4 * steps);
        (y[0] - (-4.0f64).exp()).abs()
    };
    let (e50, e100) = (err(50), err(100));
    println!("rk4 errors: 50 steps {e50:.3e}, 100 steps {e100:.3e}");
    assert!(e100 < 1e-7, "{e100:.3e}");
    let ratio = e50 / e100;
    assert!((14.0..18.0).contains(&ratio), "ratio {ratio}");
    // Backward integration returns to the start.
    let (y, _) = trilemma::samplers::ode::rk4::solve(
        |_t, y| Ok(vec![y[1], -y[0]]),
        3.0,
        0.0,
        &[3f64.cos(), -3f64.sin()],
        200,
    )
    .unwrap();
    assert!((y[0] - 1.0).abs() < 1e-8 && y[1].abs() < 1e-8, "{y:?}");
    assert!(
        trilemma::samplers::ode::rk4::solve(|_, y| Ok(y.to_vec()), 0.0, 1.0, &[1.0], 0).is_err()
    );
    let err = trilemma::samplers::ode::rk4::solve(|_, _| Ok(vec![f64::NAN]), 0.0, 1.0, &[1.0], 3)
        .unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}
