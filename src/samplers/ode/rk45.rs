//! Dormand–Prince RK45 with SciPy's `RK45` step-size controller, initial-step heuristic and end-point
//! dense output: the solver behind the official probability-flow ODE samplers (CLD through
//! torchdiffeq's SciPy wrapper, LSGM through `solve_ivp`), reproduced so that the number of function
//! evaluations (NFE) matches theirs. State in f64, as there, wherever the [`OdeSpace`] keeps it: per
//! step the host reads one number, the error norm its step-size controller needs (three more before
//! the first step, for the initial step size).

use super::space::{checked_eval, HostSpace, OdeSpace, Tolerances};
use crate::error::{Error, Result};

const C: [f64; 6] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0];
const A: [[f64; 5]; 6] = [
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
];
const B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];
const E: [f64; 7] = [
    -71.0 / 57600.0,
    0.0,
    71.0 / 16695.0,
    -71.0 / 1920.0,
    17253.0 / 339200.0,
    -22.0 / 525.0,
    1.0 / 40.0,
];
/// Shampine's free 4th-order interpolant, rows = stages (with the FSAL stage).
const P: [[f64; 4]; 7] = [
    [
        1.0,
        -8048581381.0 / 2820520608.0,
        8663915743.0 / 2820520608.0,
        -12715105075.0 / 11282082432.0,
    ],
    [0.0, 0.0, 0.0, 0.0],
    [
        0.0,
        131558114200.0 / 32700410799.0,
        -68118460800.0 / 10900136933.0,
        87487479700.0 / 32700410799.0,
    ],
    [
        0.0,
        -1754552775.0 / 470086768.0,
        14199869525.0 / 1410260304.0,
        -10690763975.0 / 1880347072.0,
    ],
    [
        0.0,
        127303824393.0 / 49829197408.0,
        -318862633887.0 / 49829197408.0,
        701980252875.0 / 199316789632.0,
    ],
    [
        0.0,
        -282668133.0 / 205662961.0,
        2019193451.0 / 616988883.0,
        -1453857185.0 / 822651844.0,
    ],
    [
        0.0,
        40617522.0 / 29380423.0,
        -110615467.0 / 29380423.0,
        69997945.0 / 29380423.0,
    ],
];
const SAFETY: f64 = 0.9;
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 10.0;
const ERR_EXP: f64 = -1.0 / 5.0;

/// What a solve cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rk45Stats {
    pub nfev: usize,
    pub accepted: usize,
    pub rejected: usize,
}

/// Integrates dy/dt = f(t, y) from `t0` to `t1` (either direction) and returns y(t1) as SciPy's RK45
/// does for `t_eval = [t0, t1]` (the last step's dense output at t1), with the evaluation count.
pub fn solve(
    mut f: impl FnMut(f64, &[f64]) -> Result<Vec<f64>>,
    t0: f64,
    t1: f64,
    y0: &[f64],
    rtol: f64,
    atol: f64,
) -> Result<(Vec<f64>, Rk45Stats)> {
    let tol = Tolerances { atol, rtol };
    solve_in(&HostSpace, |t, y| f(t, y), t0, t1, y0.to_vec(), tol)
}

/// [`solve`] in `space`: `f` maps a point (the state as the model reads it) to the derivative.
pub fn solve_in<S: OdeSpace>(
    space: &S,
    mut f: impl FnMut(f64, &S::Point) -> Result<S::Vector>,
    t0: f64,
    t1: f64,
    y0: S::Vector,
    tol: Tolerances,
) -> Result<(S::Point, Rk45Stats)> {
    let Tolerances { atol, rtol } = tol;
    if !(rtol > 0.0 && atol > 0.0 && t0.is_finite() && t1.is_finite()) {
        return Err(Error::InvalidParam {
            op: "rk45",
            what: "rtol, atol, t0, t1",
            rule: "positive tolerances and finite end points",
            found: format!("{rtol}, {atol}, {t0}, {t1}"),
        });
    }
    let n = space.len(&y0);
    let mut stats = Rk45Stats::default();
    let mut eval = |t: f64, y: &S::Point, stats: &mut Rk45Stats| -> Result<S::Vector> {
        stats.nfev += 1;
        checked_eval("rk45", space, n, &mut f, t, y)
    };
    let rms = |sq_sum: f64| (sq_sum / n.max(1) as f64).sqrt();
    let direction = if t1 >= t0 { 1.0 } else { -1.0 };
    let mut y = y0;
    let mut fy = eval(t0, &space.point(&y, 0.0, &[])?, &mut stats)?;

    // Initial step (Hairer's heuristic, one extra evaluation), scaled by atol + rtol·|y0|.
    let span = (t1 - t0).abs();
    let d0 = rms(space.scaled_sq_sum(1.0, &[(1.0, &y)], [&y, &y], tol)?);
    let d1 = rms(space.scaled_sq_sum(1.0, &[(1.0, &fy)], [&y, &y], tol)?);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    }
    .min(span);
    let y1 = space.point(&y, h0 * direction, &[(1.0, &fy)])?;
    let f1 = eval(t0 + h0 * direction, &y1, &mut stats)?;
    let d2 = rms(space.scaled_sq_sum(1.0, &[(1.0, &f1), (-1.0, &fy)], [&y, &y], tol)?) / h0;
    let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / 5.0)
    };
    let mut h_abs = (100.0 * h0).min(h1).min(span);

    let mut t = t0;
    let mut point = None;
    // The step that reached t1: (t, y, its seven stage derivatives), for the dense output.
    let mut last: Option<(f64, S::Vector, [S::Vector; 6])> = None;
    while direction * (t - t1) < 0.0 {
        let next_up = if direction > 0.0 {
            f64_next_up(t)
        } else {
            f64_next_down(t)
        };
        let min_step = 10.0 * (next_up - t).abs();
        h_abs = h_abs.max(min_step);
        let mut rejected = false;
        let (t_new, y_new, p_new, f_new, stages) = loop {
            if h_abs < min_step {
                return Err(Error::InvalidParam {
                    op: "rk45",
                    what: "step size",
                    rule: "above the floating-point resolution (the ODE is too stiff here)",
                    found: format!("{h_abs:e} at t = {t}"),
                });
            }
            let mut t_new = t + h_abs * direction;
            if direction * (t_new - t1) > 0.0 {
                t_new = t1;
            }
            let h = t_new - t;
            h_abs = h.abs();
            // k_0 = f(y) (first same as last), k_1..k_5 the stages.
            let mut ks: Vec<S::Vector> = Vec::with_capacity(5);
            for s in 1..6 {
                let terms: Vec<(f64, &S::Vector)> = std::iter::once(&fy)
                    .chain(&ks)
                    .enumerate()
                    .map(|(j, k)| (A[s][j], k))
                    .collect();
                let stage = space.point(&y, h, &terms)?;
                ks.push(eval(t + C[s] * h, &stage, &mut stats)?);
            }
            let terms: Vec<(f64, &S::Vector)> = std::iter::once(&fy)
                .chain(&ks)
                .enumerate()
                .map(|(j, k)| (B[j], k))
                .collect();
            let (y_new, p_new) = space.step(&y, h, &terms)?;
            let f_new = eval(t + h, &p_new, &mut stats)?;
            let terms: Vec<(f64, &S::Vector)> = std::iter::once(&fy)
                .chain(&ks)
                .chain(std::iter::once(&f_new))
                .enumerate()
                .map(|(j, k)| (E[j], k))
                .collect();
            let err = rms(space.scaled_sq_sum(h, &terms, [&y, &y_new], tol)?);
            if !err.is_finite() {
                return Err(Error::NonFinite {
                    tensor: "ODE state".into(),
                    step: stats.accepted,
                });
            }
            if err < 1.0 {
                let mut factor = if err == 0.0 {
                    MAX_FACTOR
                } else {
                    MAX_FACTOR.min(SAFETY * err.powf(ERR_EXP))
                };
                if rejected {
                    factor = factor.min(1.0);
                }
                h_abs *= factor;
                stats.accepted += 1;
                break (t_new, y_new, p_new, f_new, ks);
            }
            h_abs *= MIN_FACTOR.max(SAFETY * err.powf(ERR_EXP));
            rejected = true;
            stats.rejected += 1;
        };
        let y_old = std::mem::replace(&mut y, y_new);
        let f_old = std::mem::replace(&mut fy, f_new);
        // Only the step that ends at t1 is interpolated; the others' stages are dropped at once.
        if direction * (t_new - t1) >= 0.0 {
            let Ok([k1, k2, k3, k4, k5]) = <[S::Vector; 5]>::try_from(stages) else {
                return Err(Error::InvalidParam {
                    op: "rk45",
                    what: "stages",
                    rule: "five per step",
                    found: "another count".into(),
                });
            };
            last = Some((t, y_old, [f_old, k1, k2, k3, k4, k5]));
        }
        t = t_new;
        point = Some(p_new);
    }
    let Some((t_old, y_old, k)) = last else {
        // t0 == t1: no step; the initial state.
        return Ok((point.map_or_else(|| space.point(&y, 0.0, &[]), Ok)?, stats));
    };
    // Dense output of the last step at t1: y_old + hd · Σ_s k_s Σ_j P[s][j] x^(j+1) (Shampine's
    // interpolant over the seven stages, k_6 = f(y_new) = fy).
    let hd = t - t_old;
    let x = (t1 - t_old) / hd;
    let powers = [x, x * x, x * x * x, x * x * x * x];
    let w: Vec<f64> = P
        .iter()
        .map(|row| row.iter().zip(&powers).map(|(p, pw)| p * pw).sum())
        .collect();
    let terms: Vec<(f64, &S::Vector)> = k
        .iter()
        .chain(std::iter::once(&fy))
        .zip(&w)
        .map(|(k, &w)| (w, k))
        .collect();
    Ok((space.point(&y_old, hd, &terms)?, stats))
}

fn f64_next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

fn f64_next_down(x: f64) -> f64 {
    -f64_next_up(-x)
}
