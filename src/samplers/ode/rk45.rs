//! Dormand–Prince RK45 with SciPy's `RK45` step-size controller, initial-step heuristic and end-point
//! dense output: the solver behind the official probability-flow ODE samplers (CLD through
//! torchdiffeq's SciPy wrapper, LSGM through `solve_ivp`), reproduced so that the number of function
//! evaluations (NFE) matches theirs. State in f64, on the host, as there.

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

fn rms(a: impl Iterator<Item = f64>, n: usize) -> f64 {
    (a.map(|v| v * v).sum::<f64>() / n.max(1) as f64).sqrt()
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
    if !(rtol > 0.0 && atol > 0.0 && t0.is_finite() && t1.is_finite()) {
        return Err(Error::InvalidParam {
            op: "rk45",
            what: "rtol, atol, t0, t1",
            rule: "positive tolerances and finite end points",
            found: format!("{rtol}, {atol}, {t0}, {t1}"),
        });
    }
    let n = y0.len();
    let mut stats = Rk45Stats::default();
    let mut eval = |t: f64, y: &[f64], stats: &mut Rk45Stats| -> Result<Vec<f64>> {
        stats.nfev += 1;
        let d = f(t, y)?;
        if d.len() != n {
            return Err(Error::InvalidParam {
                op: "rk45",
                what: "right-hand side",
                rule: "the state's length",
                found: format!("{} values for a state of {n}", d.len()),
            });
        }
        Ok(d)
    };
    let direction = if t1 > t0 {
        1.0
    } else if t1 < t0 {
        -1.0
    } else {
        1.0
    };
    let mut y = y0.to_vec();
    let mut fy = eval(t0, &y, &mut stats)?;

    // Initial step (Hairer's heuristic, one extra evaluation).
    let span = (t1 - t0).abs();
    let scale: Vec<f64> = y.iter().map(|v| atol + v.abs() * rtol).collect();
    let d0 = rms(y.iter().zip(&scale).map(|(a, s)| a / s), n);
    let d1 = rms(fy.iter().zip(&scale).map(|(a, s)| a / s), n);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    }
    .min(span);
    let y1: Vec<f64> = y
        .iter()
        .zip(&fy)
        .map(|(a, d)| a + h0 * direction * d)
        .collect();
    let f1 = eval(t0 + h0 * direction, &y1, &mut stats)?;
    let d2 = rms(
        f1.iter()
            .zip(&fy)
            .zip(&scale)
            .map(|((a, b), s)| (a - b) / s),
        n,
    ) / h0;
    let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / 5.0)
    };
    let mut h_abs = (100.0 * h0).min(h1).min(span);

    let mut k: Vec<Vec<f64>> = vec![vec![0.0; n]; 7];
    let mut t = t0;
    let mut last: Option<(f64, Vec<f64>)> = None;
    while direction * (t - t1) < 0.0 {
        let next_up = if direction > 0.0 {
            f64_next_up(t)
        } else {
            f64_next_down(t)
        };
        let min_step = 10.0 * (next_up - t).abs();
        h_abs = h_abs.max(min_step);
        let mut rejected = false;
        let (t_new, y_new, f_new) = loop {
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
            k[0].copy_from_slice(&fy);
            for s in 1..6 {
                let ys: Vec<f64> = (0..n)
                    .map(|i| y[i] + h * (0..s).map(|j| k[j][i] * A[s][j]).sum::<f64>())
                    .collect();
                k[s] = eval(t + C[s] * h, &ys, &mut stats)?;
            }
            let y_new: Vec<f64> = (0..n)
                .map(|i| y[i] + h * (0..6).map(|j| k[j][i] * B[j]).sum::<f64>())
                .collect();
            let f_new = eval(t + h, &y_new, &mut stats)?;
            k[6].copy_from_slice(&f_new);
            let err = rms(
                (0..n).map(|i| {
                    let e = (0..7).map(|j| k[j][i] * E[j]).sum::<f64>() * h;
                    e / (atol + y[i].abs().max(y_new[i].abs()) * rtol)
                }),
                n,
            );
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
                break (t_new, y_new, f_new);
            }
            h_abs *= MIN_FACTOR.max(SAFETY * err.powf(ERR_EXP));
            rejected = true;
            stats.rejected += 1;
        };
        last = Some((t, std::mem::replace(&mut y, y_new)));
        t = t_new;
        fy = f_new;
    }
    let Some((t_old, y_old)) = last else {
        return Ok((y, stats));
    };
    // Dense output of the last step at t1: y_old + hd · Σ_j Q_j x^(j+1), Q = Kᵀ P.
    let hd = t - t_old;
    let x = (t1 - t_old) / hd;
    let powers = [x, x * x, x * x * x, x * x * x * x];
    let y_end = (0..n)
        .map(|i| {
            let mut acc = 0.0;
            for (j, pw) in powers.iter().enumerate() {
                let q: f64 = (0..7).map(|s| k[s][i] * P[s][j]).sum();
                acc += q * pw;
            }
            y_old[i] + hd * acc
        })
        .collect();
    Ok((y_end, stats))
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
