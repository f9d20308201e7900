//! The classical fourth-order Runge–Kutta method on a uniform grid: the fixed-step alternative to the
//! adaptive RK45 for the probability-flow ODE, when a run must cost a known number of network
//! evaluations (4 per step) and every sample of a batch must follow the same time grid regardless of the
//! rest of the batch. State in f64, as in the adaptive solver.

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
    if steps == 0 || !t0.is_finite() || !t1.is_finite() {
        return Err(Error::InvalidParam {
            op: "rk4",
            what: "steps, t0, t1",
            rule: "at least one step and finite end points",
            found: format!("{steps}, {t0}, {t1}"),
        });
    }
    let n = y0.len();
    let mut eval = |t: f64, y: &[f64]| -> Result<Vec<f64>> {
        let d = f(t, y)?;
        if d.len() != n {
            return Err(Error::InvalidParam {
                op: "rk4",
                what: "right-hand side",
                rule: "the state's length",
                found: d.len().to_string(),
            });
        }
        if let Some(i) = d.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidParam {
                op: "rk4",
                what: "right-hand side",
                rule: "finite values",
                found: format!("non-finite value at element {i}, t = {t}"),
            });
        }
        Ok(d)
    };
    let h = (t1 - t0) / steps as f64;
    let mut y = y0.to_vec();
    let shifted = |y: &[f64], k: &[f64], a: f64| -> Vec<f64> {
        y.iter().zip(k).map(|(&y, &k)| y + a * k).collect()
    };
    for s in 0..steps {
        // The grid point is computed from the index (not accumulated), so the last step ends at t1.
        let t = t0 + (t1 - t0) * s as f64 / steps as f64;
        let k1 = eval(t, &y)?;
        let k2 = eval(t + 0.5 * h, &shifted(&y, &k1, 0.5 * h))?;
        let k3 = eval(t + 0.5 * h, &shifted(&y, &k2, 0.5 * h))?;
        let k4 = eval(t + h, &shifted(&y, &k3, h))?;
        for i in 0..n {
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
    Ok((y, 4 * steps))
}
