//! The classical fourth-order Runge–Kutta method on a uniform grid: the fixed-step alternative to the
//! adaptive RK45 for the probability-flow ODE, when a run must cost a known number of network
//! evaluations (4 per step) and every sample of a batch must follow the same time grid regardless of the
//! rest of the batch. State in f64, as in the adaptive solver, in any [`OdeSpace`]; nothing is read
//! back during the solve.

use super::space::{checked_eval, HostSpace, OdeSpace};
use crate::error::{Error, Result};

/// Integrates dy/dt = f(t, y) from `t0` to `t1` (either direction) in `steps` equal steps and returns
/// y(t1) with the number of evaluations of f (4 · steps).
pub fn solve(
    mut f: impl FnMut(f64, &[f64]) -> Result<Vec<f64>>,
    t0: f64,
    t1: f64,
    y0: &[f64],
    steps: usize,
) -> Result<(Vec<f64>, usize)> {
    solve_in(&HostSpace, |t, y| f(t, y), t0, t1, y0.to_vec(), steps)
}

/// [`solve`] in `space`: `f` maps a point (the state as the model reads it) to the derivative.
pub fn solve_in<S: OdeSpace>(
    space: &S,
    mut f: impl FnMut(f64, &S::Point) -> Result<S::Vector>,
    t0: f64,
    t1: f64,
    y0: S::Vector,
    steps: usize,
) -> Result<(S::Point, usize)> {
    if steps == 0 || !t0.is_finite() || !t1.is_finite() {
        return Err(Error::InvalidParam {
            op: "rk4",
            what: "steps, t0, t1",
            rule: "at least one step and finite end points",
            found: format!("{steps}, {t0}, {t1}"),
        });
    }
    let n = space.len(&y0);
    let mut eval = |t: f64, y: &S::Point| -> Result<S::Vector> {
        let d = checked_eval("rk4", space, n, &mut f, t, y)?;
        space.check_derivative(&d, t)?;
        Ok(d)
    };
    let h = (t1 - t0) / steps as f64;
    let mut point = space.point(&y0, 0.0, &[])?;
    let mut y = y0;
    for s in 0..steps {
        // The grid point is computed from the index (not accumulated), so the last step ends at t1.
        let t = t0 + (t1 - t0) * s as f64 / steps as f64;
        let k1 = eval(t, &point)?;
        let k2 = eval(t + 0.5 * h, &space.point(&y, 0.5 * h, &[(1.0, &k1)])?)?;
        let k3 = eval(t + 0.5 * h, &space.point(&y, 0.5 * h, &[(1.0, &k2)])?)?;
        let k4 = eval(t + h, &space.point(&y, h, &[(1.0, &k3)])?)?;
        let terms = [(1.0, &k1), (2.0, &k2), (2.0, &k3), (1.0, &k4)];
        (y, point) = space.step(&y, h / 6.0, &terms)?;
    }
    Ok((point, 4 * steps))
}
