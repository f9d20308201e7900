"""CLD-SGM sampling math (critically-damped Langevin diffusion), independent of the score network.

Written from the CLD specification (specs/cld.md §1-§2) and checked against nv-tlabs/CLD-SGM
(`sde_lib.py`, `sampling.py`, `models/utils.py`) by tools/tests/test_samplers.py.

State u = cat([x, v], dim=1) (x first). Time conventions: the samplers run in reverse time
tau in [0, 1 - eps]; the kernel, beta and the network always receive forward time t = 1 - tau.

The score network is any callable `net(u_f32, t_f32) -> alpha` with u [B, 2C, H, W] float32,
t [B] float32 (forward time) and alpha [B, C, H, W] float32 (v-shaped). The mixed score is
s = -v / Sigma_vv(t) - ell_t * alpha.

Precision follows the official code exactly (the arithmetic below keeps its operation order so that
results agree to the last bit or close to it):
- beta, int beta, the kernel (Sigma_xx, Sigma_xv, Sigma_vv, ell_t) and the SSCS coefficients are
  float64; they are rounded to float32 where they multiply a float32 state (a 0-dim float64 tensor
  times a float32 tensor rounds the scalar to float32 and multiplies in float32).
- Euler-Maruyama / denoising drift is float64 (beta is a per-sample float64 tensor), so the EM state
  becomes float64 after its first step.
- The probability-flow ODE keeps a float64 state in the solver; every right-hand side casts the
  state and tau to float32 before evaluating the float64 drift (torchdiffeq scipy wrapper).

All functions that need Gaussian noise take it as an argument.
"""
from dataclasses import dataclass

import numpy as np
import torch

# --------------------------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CLDConfig:
    """One released configuration (configs/default_* + specific_*, plus main.py defaults)."""
    beta0: float  # intercept of the linear beta(t) = beta0 + beta1 t
    beta1: float  # slope
    numerical_eps: float  # added to Sigma_xx and Sigma_vv
    m_inv: float = 4.0  # M^-1
    gamma: float = 0.04  # HSM initial velocity variance factor: var0v = gamma / m_inv
    sampling_eps: float = 1e-3
    rtol: float = 1e-5  # sampling_rtol
    atol: float = 1e-5  # sampling_atol
    sscs_num_stab: float = 0.0

    @property
    def f(self):
        """Gamma (critical damping: Gamma^2 = 4M), computed as 2/sqrt(M^-1) in float64."""
        return 2.0 / np.sqrt(self.m_inv)

    @property
    def g(self):
        """1 / Gamma."""
        return 1.0 / self.f

    @property
    def var0v(self):
        """HSM initial velocity variance gamma*M (= 0.01 for every released config)."""
        return self.gamma / self.m_inv


CONFIGS = {
    "cifar10": CLDConfig(beta0=4.0, beta1=0.0, numerical_eps=1e-9),
    "celeba_paper": CLDConfig(beta0=4.0, beta1=0.0, numerical_eps=1e-6),
    "celeba_post_paper": CLDConfig(beta0=0.1, beta1=6.9, numerical_eps=1e-6),
}


def _bdim(t):
    """[B] -> [B, 1, 1, 1]; 0-dim stays 0-dim."""
    return t if t.dim() == 0 else t[:, None, None, None]


def beta(cfg, t):
    """beta(t) = beta0 + beta1 t (float64 in, float64 out)."""
    return cfg.beta0 + cfg.beta1 * t


def beta_int(cfg, t):
    """int_0^t beta = beta0 t + beta1 t^2 / 2."""
    return cfg.beta0 * t + 0.5 * cfg.beta1 * t ** 2


# --------------------------------------------------------------------------------------------
# Perturbation kernel p(u_t | x0, v0)
# --------------------------------------------------------------------------------------------


def kernel_mean(cfg, x0, v0, t):
    """Mean of u_t given (x0, v0) at forward times t [B] (float64). Returns (mu_x, mu_v)."""
    B = _bdim(beta_int(cfg, t))
    g = cfg.g
    decay = torch.exp(-2.0 * B * g)
    mu_x = decay * (2.0 * B * g * x0 + 4.0 * B * g ** 2.0 * v0 + x0)
    mu_v = decay * (-B * x0 - 2.0 * B * g * v0 + v0)
    return mu_x, mu_v


def kernel_var(cfg, t, var0x=0.0, var0v=None):
    """(Sigma_xx, Sigma_xv, Sigma_vv) at forward times t [B] float64 -> each [B,1,1,1] float64.

    var0x / var0v are the initial variances (HSM: 0 and gamma*M); numerical_eps is added to the two
    diagonal entries. var0x, var0v may be Python floats or tensors broadcastable to [B,1,1,1].
    """
    if var0v is None:
        var0v = cfg.var0v
    g, f = cfg.g, cfg.f
    B = _bdim(beta_int(cfg, t))
    m = torch.exp(-4.0 * B * g)
    sxx = (var0x + (1.0 / m) - 1.0
           + 4.0 * B * g * (var0x - 1.0)
           + 4.0 * B ** 2.0 * g ** 2.0 * (var0x - 2.0)
           + 16.0 * g ** 4.0 * B ** 2.0 * var0v)
    sxv = (-var0x * B
           + 4.0 * g ** 2.0 * B * var0v
           - 2.0 * g * B ** 2.0 * (var0x - 2.0)
           - 8.0 * g ** 3.0 * B ** 2.0 * var0v)
    svv = (f ** 2.0 * ((1.0 / m) - 1.0) / 4.0
           + f * B
           - 4.0 * g * B * var0v
           + 4.0 * g ** 2.0 * B ** 2.0 * var0v
           + var0v
           + B ** 2.0 * (var0x - 2.0))
    return sxx * m + cfg.numerical_eps, sxv * m, svv * m + cfg.numerical_eps


def cholesky2(sxx, sxv, svv):
    """Per-element Cholesky factor of [[sxx, sxv], [sxv, svv]]: (L11, L21, L22)."""
    l11 = torch.sqrt(sxx)
    l21 = sxv / l11
    l22 = torch.sqrt(svv - l21 ** 2.0)
    if bool(torch.isnan(l11).any()) or bool(torch.isnan(l22).any()):
        raise ValueError("CLD covariance is not positive definite (float64 precision lost)")
    return l11, l21, l22


def noise_multiplier(cfg, t):
    """-ell_t = -sqrt(Sigma_xx / det Sigma) (HSM kernel), float64 [B,1,1,1]. Note the sign."""
    sxx, sxv, svv = kernel_var(cfg, t)
    ell = torch.sqrt(sxx / (sxx * svv - sxv ** 2))
    if bool(torch.isnan(ell).any()):
        raise ValueError("CLD noise multiplier is NaN")
    return -ell


def prior_sample(cfg, noise_x, noise_v):
    """u(tau=0): x ~ N(0, I), v ~ N(0, M I) from two standard normal tensors (float32)."""
    return torch.cat((noise_x, noise_v / np.sqrt(cfg.m_inv)), dim=1)


# --------------------------------------------------------------------------------------------
# Score and reverse-time drift
# --------------------------------------------------------------------------------------------


def mixed_score(cfg, net, u, t):
    """v-score s = -v / Sigma_vv(t) + (-ell_t) * alpha (models/utils.py: get_score_fn, mixed).

    u: [B, 2C, H, W] (float32 or float64); t: [B] float64 forward time. The network sees float32
    u and t. Sigma_vv is evaluated with var0v = float32(gamma/m_inv) (the official code passes it as
    a float32 tensor), -ell_t with var0v = gamma/m_inv in float64; both are rounded to float32.
    The result has u's dtype (float32 state -> float32, float64 state -> float64).
    """
    alpha = net(u.to(torch.float32), t.to(torch.float32))
    neg_ell = noise_multiplier(cfg, t).to(torch.float32)
    v = torch.chunk(u, 2, dim=1)[1]
    var0v_f32 = float(np.float32(cfg.var0v))
    svv = kernel_var(cfg, t, 0.0, var0v_f32)[2].to(torch.float32)
    return -v / svv + alpha * neg_ell


def reverse_drift(cfg, u, tau, score, probability_flow):
    """Drift and diffusion of the reverse SDE at reverse times tau [B] float64.

    drift_x = -M^-1 beta v;  drift_v = beta x + Gamma M^-1 beta v + lam * 2 Gamma beta * score,
    lam = 1/2 for the probability flow. Returns (drift [B,2C,H,W], diffusion [B,2C,H,W]) in float64
    (diffusion is 0 on x and sqrt(2 Gamma beta) on v, or 0 everywhere for the probability flow).
    """
    x, v = torch.chunk(u, 2, dim=1)
    b = _bdim(beta(cfg, 1.0 - tau))
    fwd_x = cfg.m_inv * b * v
    fwd_v = -b * x - cfg.f * cfg.m_inv * b * v
    sig_v = torch.sqrt(2.0 * cfg.f * b) * torch.ones_like(v)
    lam = 0.5 if probability_flow else 1.0
    rev_x = -fwd_x
    rev_v = -fwd_v + sig_v ** 2.0 * score * lam
    zeros = torch.zeros_like(sig_v)
    diff_v = zeros if probability_flow else sig_v
    return torch.cat((rev_x, rev_v), dim=1), torch.cat((zeros, diff_v), dim=1)


def _vec(tau, batch, device=None):
    return torch.ones(batch, dtype=torch.float64, device=device) * tau


# --------------------------------------------------------------------------------------------
# Euler-Maruyama, denoising
# --------------------------------------------------------------------------------------------


def time_grid(cfg, n_steps, striding="linear"):
    """Reverse-time grid tau_0..tau_N (float64, N = n_discrete_steps - 1 when denoising)."""
    t_final = 1.0 - cfg.sampling_eps
    tau = torch.linspace(0.0, t_final, n_steps + 1, dtype=torch.float64)
    if striding == "quadratic":
        tau = t_final * torch.flip(1 - (tau / t_final) ** 2.0, dims=[0])
    elif striding != "linear":
        raise ValueError(striding)
    return tau


def em_step(cfg, net, u, tau, dt, noise):
    """One Euler-Maruyama step of the reverse SDE (lam = 1) from tau over dt.

    tau, dt: float64 scalars (Python floats or 0-dim tensors). noise: u-shaped standard normal
    (its x half is multiplied by 0). Returns (u_new, u_mean), float64.
    """
    vec = _vec(tau, u.shape[0], u.device)
    score = mixed_score(cfg, net, u, 1.0 - vec)
    drift, diffusion = reverse_drift(cfg, u, vec, score, probability_flow=False)
    drift = drift * dt
    diffusion = diffusion * np.sqrt(float(dt))
    u_mean = u + drift
    return u_mean + diffusion * noise, u_mean


def denoise(cfg, net, u):
    """Final denoising step: the noise-free EM step at tau = 1 - eps over eps (its mean).

    One network call; x_out = x - eps M^-1 beta(eps) v does not depend on it. Returns float64.
    """
    eps = cfg.sampling_eps
    vec = _vec(1.0 - eps, u.shape[0], u.device)
    score = mixed_score(cfg, net, u, 1.0 - vec)
    drift, _ = reverse_drift(cfg, u, vec, score, probability_flow=False)
    return u + drift * eps


def em_sample(cfg, net, u0, n_discrete_steps, noises, striding="linear"):
    """EM sampler (sampling.py: get_em_sampler) with denoising; noises: n_discrete_steps - 1
    u-shaped tensors. Returns (x, v) float64; NFE = n_discrete_steps."""
    n = n_discrete_steps - 1
    tau = time_grid(cfg, n, striding)
    u = u0
    for i in range(n):
        u, _ = em_step(cfg, net, u, tau[i], tau[i + 1] - tau[i], noises[i])
    u = denoise(cfg, net, u)
    return torch.chunk(u, 2, dim=1)


# --------------------------------------------------------------------------------------------
# SSCS (symmetric splitting CLD sampler)
# --------------------------------------------------------------------------------------------


def sscs_half_step_coefficients(cfg, tau, dt_half):
    """Analytic A-part over dt_half starting at reverse time tau (float64 0-dim tensors).

    b = int_{1-tau-dt_half}^{1-tau} beta > 0. Returns dict with the mean map
    x' = cxx x + cxv v, v' = cvx x + cvv v (cxx = e1(1+2gb), cxv = -e1 4g^2 b, cvx = e1 b,
    cvv = e1(1-2gb), e1 = exp(-2gb)) and the Cholesky factors l11, l21, l22 of the added noise.
    """
    g, f = cfg.g, cfg.f
    tau = torch.as_tensor(tau, dtype=torch.float64)
    dt_half = torch.as_tensor(dt_half, dtype=torch.float64)
    b = beta_int(cfg, 1.0 - tau) - beta_int(cfg, 1.0 - (tau + dt_half))
    e1 = torch.exp(-2.0 * g * b)
    e2 = torch.exp(-4.0 * g * b)
    sxx = e2 * (1.0 / e2 - 1.0 - 4.0 * g * b - 8.0 * g ** 2 * b ** 2.0) + cfg.sscs_num_stab
    sxv = -e2 * (4.0 * g * b ** 2.0)
    svv = e2 * (-f ** 2.0 * (1.0 - (1.0 / e2)) / 4.0 + f * b - 2.0 * b ** 2.0) + cfg.sscs_num_stab
    l11, l21, l22 = cholesky2(sxx, sxv, svv)
    return dict(e1=e1, cxx=1.0 + 2.0 * g * b, cxv=-4.0 * g ** 2.0 * b, cvx=b, cvv=1.0 - 2.0 * g * b,
                l11=l11, l21=l21, l22=l22, sxx=sxx, sxv=sxv, svv=svv)


def sscs_half_step(cfg, u, tau, dt_half, noise):
    """u (float32) -> mean + L z with z = noise (u-shaped: [z_x, z_v]). Coefficients are float64
    scalars rounded to float32 by the multiplication; the result stays float32."""
    c = sscs_half_step_coefficients(cfg, tau, dt_half)
    x, v = torch.chunk(u, 2, dim=1)
    zx, zv = torch.chunk(noise, 2, dim=1)
    mx = c["e1"] * (c["cxx"] * x + c["cxv"] * v)
    mv = c["e1"] * (c["cvx"] * x + c["cvv"] * v)
    nx = c["l11"] * zx
    nv = c["l21"] * zx + c["l22"] * zv
    return torch.cat((mx, mv), dim=1) + torch.cat((nx, nv), dim=1)


def sscs_score_step(cfg, net, u, tau, dt):
    """S-part, one NFE: v <- v + 2 Gamma (s + M^-1 v) beta(1-tau) dt, with the score at forward
    time 1 - tau (the step start). float32 arithmetic; beta and dt rounded to float32 separately."""
    tau = torch.as_tensor(tau, dtype=torch.float64)
    dt = torch.as_tensor(dt, dtype=torch.float64)
    score = mixed_score(cfg, net, u, _vec(1.0 - tau, u.shape[0], u.device))
    x, v = torch.chunk(u, 2, dim=1)
    v_new = v + 2.0 * cfg.f * (score + cfg.m_inv * v) * beta(cfg, 1.0 - tau) * dt
    return torch.cat((x, v_new), dim=1)


def sscs_step(cfg, net, u, tau, dt, noise_a, noise_b):
    """A(dt/2) o S(dt) o A(dt/2); both half steps use tau (the official code passes the step start
    to both, so the second half step reuses the first one's beta integral)."""
    tau = torch.as_tensor(tau, dtype=torch.float64)
    dt = torch.as_tensor(dt, dtype=torch.float64)
    u = sscs_half_step(cfg, u, tau, dt / 2.0, noise_a)
    u = sscs_score_step(cfg, net, u, tau, dt)
    return sscs_half_step(cfg, u, tau, dt / 2.0, noise_b)


def sscs_sample(cfg, net, u0, n_discrete_steps, noises, striding="linear"):
    """SSCS sampler with denoising; noises: n_discrete_steps - 1 pairs (noise_a, noise_b).
    Returns (x, v) float64 (after the denoising step); NFE = n_discrete_steps."""
    n = n_discrete_steps - 1
    tau = time_grid(cfg, n, striding)
    u = u0
    for i in range(n):
        u = sscs_step(cfg, net, u, tau[i], tau[i + 1] - tau[i], *noises[i])
    u = denoise(cfg, net, u)
    return torch.chunk(u, 2, dim=1)


# --------------------------------------------------------------------------------------------
# Probability-flow ODE
# --------------------------------------------------------------------------------------------


def pf_ode_drift(cfg, net, u, tau):
    """d u / d tau of the probability-flow ODE at reverse times tau [B] float64 (float64 result)."""
    score = mixed_score(cfg, net, u, 1.0 - tau)
    return reverse_drift(cfg, u, tau, score, probability_flow=True)[0]


def pf_ode_rhs(cfg, net, shape):
    """Right-hand side as the solver sees it (torchdiffeq scipy wrapper): tau and the float64 state
    are cast to float32, the drift is evaluated (float64) and returned flat as float64."""
    def rhs(tau, y):
        tau32 = torch.tensor(float(tau), dtype=torch.float32)
        u = torch.from_numpy(np.asarray(y)).reshape(shape).to(torch.float32)
        with torch.no_grad():
            d = pf_ode_drift(cfg, net, u, _vec(tau32, shape[0]))
        return d.numpy().reshape(-1)
    return rhs


def ode_sample(cfg, net, u0, rtol=None, atol=None, backend="own"):
    """Probability-flow ODE sampler (sampling.py: get_ode_sampler) with the final denoising step.

    u0: float32 prior sample. Integrates tau from 0 to 1 - eps as one flattened system with RK45
    (Dormand-Prince, SciPy's controller, rtol = atol = 1e-5 by default), then casts the result to
    float32 and denoises. backend="own" uses rk45_solve below, "scipy" calls scipy's solve_ivp.
    Returns (x, v, nfe, stats), x and v float64; nfe = solver evaluations + 1 (denoising).
    """
    rtol = cfg.rtol if rtol is None else rtol
    atol = cfg.atol if atol is None else atol
    shape = tuple(u0.shape)
    rhs = pf_ode_rhs(cfg, net, shape)
    y0 = u0.detach().numpy().reshape(-1)
    t1 = 1.0 - cfg.sampling_eps
    if backend == "own":
        y_end, stats = rk45_solve(rhs, 0.0, t1, y0, rtol, atol)
    elif backend == "scipy":
        from scipy.integrate import solve_ivp
        sol = solve_ivp(rhs, [0.0, t1], y0, method="RK45", t_eval=np.array([0.0, t1]), rtol=rtol, atol=atol)
        y_end, stats = sol.y[:, -1], dict(nfev=sol.nfev)
    else:
        raise ValueError(backend)
    u = torch.from_numpy(np.array(y_end)).reshape(shape).to(u0.dtype)
    with torch.no_grad():
        u = denoise(cfg, net, u)
    x, v = torch.chunk(u, 2, dim=1)
    return x, v, stats["nfev"] + 1, stats


# --------------------------------------------------------------------------------------------
# RK45 (Dormand-Prince 5(4)) with SciPy's step-size controller, initial-step heuristic and
# end-point evaluation (dense output at the last accepted step), for NFE parity.
# Shared with lsgm_sde.
# --------------------------------------------------------------------------------------------

_DP_C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1])
_DP_A = np.array([
    [0, 0, 0, 0, 0],
    [1 / 5, 0, 0, 0, 0],
    [3 / 40, 9 / 40, 0, 0, 0],
    [44 / 45, -56 / 15, 32 / 9, 0, 0],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
])
_DP_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
_DP_E = np.array([-71 / 57600, 0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40])
# Dense-output polynomial (Shampine's free interpolant, 4th order), rows = stages incl. FSAL.
_DP_P = np.array([
    [1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
    [0, 0, 0, 0],
    [0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
    [0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
    [0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632],
    [0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
    [0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
])
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0
_ERR_EXP = -1.0 / 5.0  # error estimator order 4


def _rms(a):
    return np.linalg.norm(a) / a.size ** 0.5


def rk45_solve(fun, t0, t1, y0, rtol, atol):
    """Integrate dy/dt = fun(t, y) from t0 to t1 (either direction) as SciPy's RK45 does.

    - initial step: Hairer's heuristic (one extra evaluation), capped at |t1 - t0|;
    - error norm: RMS over all elements of h*E.K / (atol + rtol*max(|y|, |y_new|));
    - accept if err < 1, step factor min(10, 0.9 err^-1/5) (<= 1 right after a rejection),
      else max(0.2, 0.9 err^-1/5); the last step is clipped to land on t1;
    - the returned end value is the dense-output interpolant at t1 (what solve_ivp returns for
      t_eval = [t0, t1]).
    Returns (y(t1) float64, dict(nfev, n_accepted, n_rejected)).
    """
    t0, t1 = float(t0), float(t1)
    y = np.array(y0, dtype=np.float64).reshape(-1)
    direction = float(np.sign(t1 - t0)) if t1 != t0 else 1.0
    nfev = 0

    def f(t, yy):
        nonlocal nfev
        nfev += 1
        return np.asarray(fun(t, yy), dtype=np.float64)

    fy = f(t0, y)
    # initial step
    span = abs(t1 - t0)
    scale = atol + np.abs(y) * rtol
    d0, d1 = _rms(y / scale), _rms(fy / scale)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = f(t0 + h0 * direction, y + h0 * direction * fy)
    d2 = _rms((f1 - fy) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / 5.0)
    h_abs = min(100 * h0, h1, span)

    K = np.empty((7, y.size), dtype=np.float64)
    t = t0
    n_acc = n_rej = 0
    t_old = y_old = None
    while not (direction * (t - t1) >= 0):
        min_step = 10 * np.abs(np.nextafter(t, direction * np.inf) - t)
        h_abs = max(h_abs, min_step)
        rejected = False
        while True:
            if h_abs < min_step:
                raise RuntimeError("RK45: step size became too small")
            h = h_abs * direction
            t_new = t + h
            if direction * (t_new - t1) > 0:
                t_new = t1
            h = t_new - t
            h_abs = np.abs(h)
            K[0] = fy
            for s in range(1, 6):
                dy = np.dot(K[:s].T, _DP_A[s, :s]) * h
                K[s] = f(t + _DP_C[s] * h, y + dy)
            y_new = y + h * np.dot(K[:-1].T, _DP_B)
            f_new = f(t + h, y_new)
            K[-1] = f_new
            scale = atol + np.maximum(np.abs(y), np.abs(y_new)) * rtol
            err = _rms(np.dot(K.T, _DP_E) * h / scale)
            if err < 1:
                factor = _MAX_FACTOR if err == 0 else min(_MAX_FACTOR, _SAFETY * err ** _ERR_EXP)
                if rejected:
                    factor = min(1, factor)
                h_abs *= factor
                n_acc += 1
                break
            h_abs *= max(_MIN_FACTOR, _SAFETY * err ** _ERR_EXP)
            rejected = True
            n_rej += 1
        t_old, y_old = t, y
        t, y, fy = t_new, y_new, f_new
    if t_old is None:
        return y, dict(nfev=nfev, n_accepted=0, n_rejected=0)
    # dense output of the last step evaluated at t1
    Q = K.T.dot(_DP_P)
    hd = t - t_old
    x = (np.array([t1]) - t_old) / hd
    p = np.cumprod(np.tile(x, (4, 1)), axis=0)
    y_end = hd * np.dot(Q, p)
    y_end += y_old[:, None]
    return y_end[:, 0], dict(nfev=nfev, n_accepted=n_acc, n_rejected=n_rej)
