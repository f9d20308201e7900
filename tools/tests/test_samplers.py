"""Sampling math of CLD-SGM, DDGAN and LSGM against the official code.

Each reference function (tools/reference/{cld_sde,ddgan_posterior,lsgm_sde}.py) is run next to the
official implementation with a small deterministic stand-in network (fixed-seed conv / linear maps
with a nonlinear time dependence) and identical injected noise, for every released configuration's
hyperparameters.

Injected noise: where an official function draws its own Gaussians (CLD EM / SSCS / denoising /
prior, DDGAN latent z and posterior noise), `torch.randn` / `torch.randn_like` are replaced for the
duration of that call by functions that return prepared tensors in order (`injected_randn`); the
same tensors are passed to the reference explicitly. The official CLD and LSGM ODE samplers go
through torchdiffeq's scipy wrapper (SciPy solve_ivp, RK45); the reference uses its own RK45 with
SciPy's controller, so the step count must match exactly.

Errors: max_abs = max |ref - official|, rel = max_abs / max |official|. Tolerances: float64 paths
1e-12, float32 paths 1e-6, ODE solves: identical NFE and rel <= 1e-5. Run with -s for the table.
"""
import contextlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.reference import cld_sde, ddgan_posterior, lsgm_sde  # noqa: E402
from tools.tests.official import official  # noqa: E402

torch.set_num_threads(1)

F64_TOL = 1e-12
F32_TOL = 1e-6
ODE_TOL = 1e-5

_ROWS = []


@pytest.fixture(scope="module", autouse=True)
def _error_table():
    yield
    if _ROWS:
        print("\n\nsampler parity (reference vs official)")
        print(f"{'family':6} {'config':22} {'quantity':36} {'max_abs':>10} {'rel':>10} {'tol':>7}  note")
        for r in _ROWS:
            print(f"{r[0]:6} {r[1]:22} {r[2]:36} {r[3]:10.2e} {r[4]:10.2e} {r[5]:7.0e}  {r[6]}")


def check(family, config, quantity, ours, theirs, tol, note=""):
    ours = torch.as_tensor(ours).to(torch.float64)
    theirs = torch.as_tensor(theirs).to(torch.float64)
    assert ours.shape == theirs.shape, (quantity, ours.shape, theirs.shape)
    assert torch.isfinite(theirs).all(), quantity
    max_abs = (ours - theirs).abs().max().item()
    ref = theirs.abs().max().item()
    rel = max_abs / ref if ref > 0 else max_abs
    _ROWS.append((family, config, quantity, max_abs, rel, tol, note))
    assert rel <= tol, f"{family}/{config}/{quantity}: rel err {rel:.3e} > {tol:.0e}"


@contextlib.contextmanager
def injected_randn(randn=None, randn_like=None):
    """Replace torch.randn / torch.randn_like by pops from the given lists (shapes are checked, and
    all tensors must be consumed)."""
    orig = torch.randn, torch.randn_like

    def fake_randn(*size, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
        t = randn.pop(0)
        assert tuple(t.shape) == tuple(shape), (t.shape, shape)
        return t.clone()

    def fake_randn_like(x, **kwargs):
        t = randn_like.pop(0)
        assert t.shape == x.shape, (t.shape, x.shape)
        return t.clone().to(x.dtype)

    torch.randn, torch.randn_like = fake_randn, fake_randn_like
    try:
        yield
    finally:
        torch.randn, torch.randn_like = orig
    # every prepared tensor was consumed: the official code draws exactly this many Gaussians
    assert not randn and not randn_like, "unconsumed injected noise"


def gen(seed):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# Stand-in networks
# --------------------------------------------------------------------------------------------


class CLDNet(torch.nn.Module):
    """alpha(u, t): 6 -> 3 channels, float32, t [B] forward time."""

    def __init__(self, channels=3, seed=0):
        super().__init__()
        self.conv = torch.nn.Conv2d(2 * channels, channels, 3, padding=1)
        g = gen(seed)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.copy_(torch.randn(self.conv.bias.shape, generator=g) * 0.1)

    def forward(self, u, t):
        s = (1 + 0.5 * torch.sin(3 * t))[:, None, None, None]
        c = (0.2 * torch.cos(5 * t))[:, None, None, None]
        return torch.tanh(self.conv(u) * s + c)


class LSGMNet(torch.nn.Module):
    """eps'(z, t) with a 0-dim float32 t, plus the mixing logit [1, C, 1, 1]."""

    def __init__(self, channels=4, seed=1, logits=(-3.0, -6.0, 0.0, 2.0)):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
        g = gen(seed)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.copy_(torch.randn(self.conv.bias.shape, generator=g) * 0.1)
        self.mixing_logit = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.mixed_prediction = True

    def forward(self, x, t):
        return torch.tanh(self.conv(x) * (1 + 0.5 * torch.sin(3 * t)) + 0.1 * torch.cos(5 * t))


class DDGANGen(torch.nn.Module):
    """x0_hat = tanh(conv(x) + A z + 0.1 t_idx), x [B,3,H,W], t_idx [B] int64, z [B, nz]."""

    def __init__(self, nz=100, seed=2):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.lin = torch.nn.Linear(nz, 3)
        g = gen(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)

    def forward(self, x, t, z):
        return torch.tanh(self.conv(x) + self.lin(z)[:, :, None, None] + 0.1 * t.to(torch.float32)[:, None, None, None])


# --------------------------------------------------------------------------------------------
# CLD-SGM
# --------------------------------------------------------------------------------------------

CLD_NAMES = list(cld_sde.CONFIGS)
CLD_SHAPE = (2, 3, 4, 4)  # x (and v) shape; u has 6 channels


def cld_official_config(cfg, **sampling):
    c = types.SimpleNamespace(
        m_inv=cfg.m_inv, gamma=cfg.gamma, numerical_eps=cfg.numerical_eps, is_image=True,
        cld_objective="hsm", device="cpu", mixed_score=True, beta_type="linear", beta0=cfg.beta0,
        beta1=cfg.beta1, sampling_eps=cfg.sampling_eps, denoising=True, striding="linear",
        sscs_num_stab=cfg.sscs_num_stab, sampling_rtol=cfg.rtol, sampling_atol=cfg.atol,
        sampling_solver="scipy_solver", sampling_solver_options={"solver": "RK45"},
        sampling_method="ode", n_discrete_steps=None)
    for k, v in sampling.items():
        setattr(c, k, v)
    return c


def cld_official(imp, cfg, **sampling):
    sde_lib, utils = imp("sde_lib"), imp("util.utils")
    conf = cld_official_config(cfg, **sampling)
    sde = sde_lib.CLD(conf, utils.build_beta_fn(conf), utils.build_beta_int_fn(conf))
    return conf, sde


def cld_prior(seed):
    g = gen(seed)
    return torch.cat((torch.randn(CLD_SHAPE, generator=g), torch.randn(CLD_SHAPE, generator=g) * 0.5), dim=1)


@pytest.mark.parametrize("name", CLD_NAMES)
def test_cld_kernel(name):
    cfg = cld_sde.CONFIGS[name]
    t = torch.tensor([1e-3, 0.01, 0.1, 0.5, 0.999, 1.0], dtype=torch.float64)
    g = gen(3)
    x0 = torch.randn((6, 3, 2, 2), generator=g, dtype=torch.float64)
    v0 = torch.randn((6, 3, 2, 2), generator=g, dtype=torch.float64) * 0.1
    with official("cld") as imp:
        _, sde = cld_official(imp, cfg)
        mean = sde.mean(torch.cat((x0, v0), 1), t)
        check("cld", name, "kernel mean (x0, v0)", torch.cat(cld_sde.kernel_mean(cfg, x0, v0, t), 1), mean, F64_TOL)
        for tag, (vx, vv) in {"HSM": (None, None), "DSM v0=0": (0.0, 0.0), "general (0.02, 0.03)": (0.02, 0.03)}.items():
            if vx is None:
                theirs = sde.var(t)
                ours = cld_sde.kernel_var(cfg, t)
            else:
                ones = torch.ones(6, 1, 1, 1, dtype=torch.float64)
                theirs = sde.var(t, vx * ones, vv * ones)
                ours = cld_sde.kernel_var(cfg, t, vx, vv)
            check("cld", name, f"kernel Sigma {tag}", torch.cat(ours, 1), torch.cat(theirs, 1), F64_TOL)
        check("cld", name, "noise multiplier -ell_t", cld_sde.noise_multiplier(cfg, t), sde.noise_multiplier(t), F64_TOL)
        # Cholesky of the kernel as used by perturb_data
        l11, l21, l22 = cld_sde.cholesky2(*sde.var(t))
        ours = torch.cat(cld_sde.cholesky2(*cld_sde.kernel_var(cfg, t)), 1)
        check("cld", name, "kernel Cholesky", ours, torch.cat((l11, l21, l22), 1), F64_TOL)


def test_cld_spec_vectors():
    """Kernel values tabulated in specs/cld.md §1.3 (printed to 9-10 significant digits)."""
    rows = [  # (config, t, Sigma_xx, Sigma_vv, ell_t, 1/Sigma_vv)
        ("cifar10", 1e-3, 3.194892802e-06, 1.755763086e-02, 19.9184656, 56.9552924),
        ("cifar10", 0.5, 9.864607293e-01, 2.479335512e-01, 2.00843216, 4.03333875),
        ("celeba_paper", 1e-3, 4.193892802e-06, 1.755862986e-02, 12.8001179, 56.9520519),
        ("celeba_post_paper", 1e-3, 1.001723401e-06, 1.019954140e-02, 9.91016818, 98.0436238),
    ]
    for name, t, sxx, svv, ell, inv in rows:
        cfg = cld_sde.CONFIGS[name]
        tt = torch.tensor([t], dtype=torch.float64)
        a, _, c = cld_sde.kernel_var(cfg, tt)
        ours = torch.tensor([a.item(), c.item(), -cld_sde.noise_multiplier(cfg, tt).item(), 1 / c.item()],
                            dtype=torch.float64)
        ref = torch.tensor([sxx, svv, ell, inv], dtype=torch.float64)
        rel = ((ours - ref).abs() / ref.abs()).max().item()  # per entry: the values span 6 decades
        _ROWS.append(("cld", name, f"spec table t={t} (per-entry rel)", (ours - ref).abs().max().item(), rel, 1e-8,
                      "specs/cld.md"))
        assert rel <= 1e-8, (name, t, ours, ref)
    cfg = cld_sde.CONFIGS["cifar10"]
    c = cld_sde.sscs_half_step_coefficients(cfg, torch.tensor(0.0, dtype=torch.float64), 1e-3)
    e1 = c["e1"].item()
    f64 = dict(dtype=torch.float64)
    ours = torch.tensor([e1 * c["cxx"].item(), e1 * c["cxv"].item(), e1 * c["cvx"].item(), e1 * c["cvv"].item()], **f64)
    check("cld", "cifar10", "spec SSCS half-step mean map", ours,
          torch.tensor([0.99996817, -0.01587251, 0.00396813, 0.98409566], **f64), 1e-7, "specs/cld.md")
    ours = torch.tensor([c["sxx"].item(), c["sxv"].item(), c["svv"].item()], **f64)
    ref = torch.tensor([6.745268631e-07, -6.298414848e-05, 7.873187192e-03], **f64)
    rel = ((ours - ref).abs() / ref.abs()).max().item()
    _ROWS.append(("cld", "cifar10", "spec SSCS half-step Sigma (entry rel)", (ours - ref).abs().max().item(), rel,
                  1e-8, "specs/cld.md"))
    assert rel <= 1e-8, (ours, ref)


@pytest.mark.parametrize("name", CLD_NAMES)
def test_cld_score_and_drift(name):
    cfg = cld_sde.CONFIGS[name]
    net = CLDNet()
    u32 = cld_prior(4)
    u64 = u32.to(torch.float64) + 1e-3
    with official("cld") as imp:
        conf, sde = cld_official(imp, cfg)
        score_fn = imp("models.utils").get_score_fn(conf, sde, net, train=False)
        for tau in (0.0, 0.5, 0.999):
            vec = torch.full((u32.shape[0],), tau, dtype=torch.float64)
            for u, tag in ((u32, "f32"), (u64, "f64")):
                with torch.no_grad():
                    theirs = score_fn(u, 1.0 - vec)
                    ours = cld_sde.mixed_score(cfg, net, u, 1.0 - vec)
                assert ours.dtype == theirs.dtype
                tol = F32_TOL if tag == "f32" else F64_TOL
                check("cld", name, f"mixed score u={tag} tau={tau}", ours, theirs, tol)
                for pf in (False, True):
                    rsde = sde.get_reverse_sde(score_fn, probability_flow=pf)
                    with torch.no_grad():
                        d_t, s_t = rsde(u, vec)
                        d_o, s_o = cld_sde.reverse_drift(cfg, u, vec, cld_sde.mixed_score(cfg, net, u, 1.0 - vec), pf)
                    check("cld", name, f"reverse drift pf={int(pf)} u={tag} tau={tau}", d_o, d_t, F64_TOL)
                    check("cld", name, f"reverse diffusion pf={int(pf)} tau={tau}", s_o, s_t, F64_TOL)


def test_cld_prior():
    cfg = cld_sde.CONFIGS["cifar10"]
    g = gen(5)
    nx, nv = torch.randn(CLD_SHAPE, generator=g), torch.randn(CLD_SHAPE, generator=g)
    with official("cld") as imp:
        _, sde = cld_official(imp, cfg)
        with injected_randn(randn=[nx, nv]):
            x, v = sde.prior_sampling(CLD_SHAPE)
    check("cld", "all", "prior sample", cld_sde.prior_sample(cfg, nx, nv), torch.cat((x, v), 1), 0.0)


@pytest.mark.parametrize("striding", ["linear", "quadratic"])
@pytest.mark.parametrize("name", CLD_NAMES)
def test_cld_em(name, striding):
    cfg = cld_sde.CONFIGS[name]
    net = CLDNet()
    n_steps = 6
    u0 = cld_prior(6)
    g = gen(7)
    noises = [torch.randn(u0.shape, generator=g) for _ in range(n_steps - 1)]
    with official("cld") as imp:
        conf, sde = cld_official(imp, cfg, sampling_method="em", n_discrete_steps=n_steps, striding=striding)
        sampler = imp("sampling").get_em_sampler(conf, sde, u0.shape, cfg.sampling_eps)
        with injected_randn(randn=list(noises) + [torch.zeros(u0.shape)]):  # last: the unused denoising draw
            x_t, v_t, nfe = sampler(net, u0.clone())
        # one step on its own
        step = sde.get_discrete_step_fn(mode="reverse", score_fn=imp("models.utils").get_score_fn(conf, sde, net))
        tau = cld_sde.time_grid(cfg, n_steps - 1, striding)
        with injected_randn(randn=[noises[0]]), torch.no_grad():
            s_t, m_t = step(u0.clone(), tau[1], tau[2] - tau[1])
    with torch.no_grad():
        x_o, v_o = cld_sde.em_sample(cfg, net, u0.clone(), n_steps, noises, striding)
        s_o, m_o = cld_sde.em_step(cfg, net, u0.clone(), tau[1], tau[2] - tau[1], noises[0])
    assert nfe == n_steps
    check("cld", name, f"EM step ({striding})", torch.cat((s_o, m_o)), torch.cat((s_t, m_t)), F64_TOL)
    check("cld", name, f"EM sample x,v N={n_steps} ({striding})", torch.cat((x_o, v_o), 1),
          torch.cat((x_t, v_t), 1), F64_TOL)


@pytest.mark.parametrize("striding", ["linear", "quadratic"])
@pytest.mark.parametrize("name", CLD_NAMES)
def test_cld_sscs(name, striding):
    cfg = cld_sde.CONFIGS[name]
    net = CLDNet()
    n_steps = 6
    u0 = cld_prior(8)
    g = gen(9)
    noises = [(torch.randn(u0.shape, generator=g), torch.randn(u0.shape, generator=g)) for _ in range(n_steps - 1)]
    flat = [z for pair in noises for z in pair]
    with official("cld") as imp:
        conf, sde = cld_official(imp, cfg, sampling_method="sscs", n_discrete_steps=n_steps, striding=striding)
        sampler = imp("sampling").get_sscs_sampler(conf, sde, u0.shape, cfg.sampling_eps)
        with injected_randn(randn=[torch.zeros(u0.shape)], randn_like=list(flat)):
            x_t, v_t, nfe = sampler(net, u0.clone())
    assert nfe == n_steps
    with torch.no_grad():
        x_o, v_o = cld_sde.sscs_sample(cfg, net, u0.clone(), n_steps, noises, striding)
    check("cld", name, f"SSCS sample x,v N={n_steps} ({striding})", torch.cat((x_o, v_o), 1),
          torch.cat((x_t, v_t), 1), F32_TOL, "f32 state, f64 denoise")


@pytest.mark.parametrize("name", CLD_NAMES)
def test_cld_ode(name):
    cfg = cld_sde.CONFIGS[name]
    net = CLDNet()
    u0 = cld_prior(10)
    with official("cld") as imp:
        conf, sde = cld_official(imp, cfg, sampling_method="ode")
        sampler = imp("sampling").get_ode_sampler(conf, sde, u0.shape, cfg.sampling_eps)
        with injected_randn(randn=[torch.zeros(u0.shape)]):  # the unused denoising draw
            x_t, v_t, nfe_t = sampler(net, u0.clone())
    x_o, v_o, nfe_o, stats = cld_sde.ode_sample(cfg, net, u0.clone())
    note = f"NFE {nfe_o} (official {nfe_t}), {stats['n_accepted']}+{stats['n_rejected']} steps"
    assert nfe_o == nfe_t, note
    check("cld", name, "PF-ODE RK45 sample x,v", torch.cat((x_o, v_o), 1), torch.cat((x_t, v_t), 1), ODE_TOL, note)


@pytest.mark.parametrize("direction", [1, -1])
def test_rk45_vs_scipy(direction):
    """The reference RK45 against scipy.integrate.solve_ivp itself on a nonlinear system."""
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 8)) * 0.7

    def fun(t, y):
        return np.tanh(A @ y) * (1 + np.sin(3 * t)) - 0.3 * y

    y0 = rng.standard_normal(8)
    t0, t1 = (0.0, 2.5) if direction > 0 else (-0.2, -2.7)
    for tol in (1e-5, 1e-3, 1e-8):
        ours, st = cld_sde.rk45_solve(fun, t0, t1, y0, tol, tol)
        sol = solve_ivp(fun, [t0, t1], y0, method="RK45", t_eval=np.array([t0, t1]), rtol=tol, atol=tol)
        assert st["nfev"] == sol.nfev
        check("ode", f"direction {direction}", f"RK45 end value tol={tol:g}", ours, sol.y[:, -1], 1e-14,
              f"nfev {st['nfev']}")


# --------------------------------------------------------------------------------------------
# DDGAN
# --------------------------------------------------------------------------------------------

DDGAN_SHAPE = (2, 3, 8, 8)
NZ = 100


def ddgan_args(T):
    return types.SimpleNamespace(num_timesteps=T, beta_min=0.1, beta_max=20.0, use_geometric=False, nz=NZ)


@contextlib.contextmanager
def ddgan_official():
    # test_ddgan.py imports pytorch_fid at module level; it is not needed here.
    fid = types.ModuleType("pytorch_fid")
    fid_score = types.ModuleType("pytorch_fid.fid_score")
    fid_score.calculate_fid_given_paths = None
    saved = {k: sys.modules.get(k) for k in ("pytorch_fid", "pytorch_fid.fid_score")}
    sys.modules.update({"pytorch_fid": fid, "pytorch_fid.fid_score": fid_score})
    try:
        with official("ddgan") as imp:
            yield imp("test_ddgan")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


@pytest.mark.parametrize("name", list(ddgan_posterior.CONFIGS))
def test_ddgan_coefficients(name):
    T = ddgan_posterior.CONFIGS[name]
    with ddgan_official() as td:
        args = ddgan_args(T)
        _, _, betas = td.get_sigma_schedule(args, "cpu")
        pc = td.Posterior_Coefficients(args, "cpu")
        tg = td.get_time_schedule(args, "cpu")
    ours = ddgan_posterior.PosteriorCoefficients.make(T)
    assert betas.dtype == torch.float32
    check("ddgan", f"{name} T={T}", "time grid (f64)", ddgan_posterior.time_grid(T), tg, 0.0)
    check("ddgan", f"{name} T={T}", "betas incl. dummy (f32)", ddgan_posterior.schedule_betas(T), betas, 0.0)
    for attr, off in [("alphas_cumprod", "alphas_cumprod"), ("alphas_cumprod_prev", "alphas_cumprod_prev"),
                      ("variance", "posterior_variance"), ("coef1", "posterior_mean_coef1"),
                      ("coef2", "posterior_mean_coef2"), ("log_var_clipped", "posterior_log_variance_clipped")]:
        check("ddgan", f"{name} T={T}", f"posterior {attr} (f32)", getattr(ours, attr), getattr(pc, off), 0.0,
              "bit-exact")


def test_ddgan_spec_table():
    """Reference values of specs/ddgan.md §1.2 (printed to ~8 significant digits)."""
    table = {  # T: rows (beta, abar, c1, c2, v, l, std) for i = 0..T-1
        4: [(0.4782553, 0.52174473, 1.0000001, 0, 0, -46.0517, 1e-10),
            (0.84920603, 0.078675956, 0.66577846, 0.20157626, 0.44081914, -0.81912059, 0.66394210),
            (0.95641768, 0.0034288808, 0.26919085, 0.19300087, 0.88420240, -0.12306926, 0.94032037),
            (0.98740393, 4.3190426e-05, 0.05782156, 0.11185222, 0.98406076, -0.016067632, 0.99199837)],
        2: [(0.92132401, 0.078675985, 1.0, 0, 0, -46.0517, 1e-10),
            (0.99945104, 4.3189873e-05, 0.28035054, 0.02158743, 0.92085810, -0.08244934, 0.95961350)],
    }
    for T, rows in table.items():
        c = ddgan_posterior.PosteriorCoefficients.make(T)
        ours = torch.stack([c.betas, c.alphas_cumprod, c.coef1, c.coef2, c.variance, c.log_var_clipped, c.std], 1)
        ref = torch.tensor(rows, dtype=torch.float64)
        err = ((ours.double() - ref).abs() / ref.abs().clamp(min=1e-30))
        err[ref == 0] = (ours.double() - ref).abs()[ref == 0]
        _ROWS.append(("ddgan", f"T={T}", "spec table §1.2 (per-entry rel)", (ours.double() - ref).abs().max().item(),
                      err.max().item(), 1e-5, "specs/ddgan.md"))
        assert err.max().item() <= 1e-5, (T, err)


@pytest.mark.parametrize("name", list(ddgan_posterior.CONFIGS))
def test_ddgan_sample(name):
    T = ddgan_posterior.CONFIGS[name]
    G = DDGANGen()
    g = gen(11)
    x_T = torch.randn(DDGAN_SHAPE, generator=g)
    zs = [torch.randn((DDGAN_SHAPE[0], NZ), generator=g) for _ in range(T)]
    noises = [torch.randn(DDGAN_SHAPE, generator=g) for _ in range(T)]  # the official loop draws one at i = 0 too
    with ddgan_official() as td:
        args = ddgan_args(T)
        pc = td.Posterior_Coefficients(args, "cpu")
        with injected_randn(randn=list(zs), randn_like=list(noises)):
            x_t = td.sample_from_model(pc, G, T, x_T.clone(), None, args)
        x0 = G(x_T, torch.full((2,), T - 1, dtype=torch.int64), zs[0]).detach()
        steps_t = []
        for i in range(T):
            with injected_randn(randn_like=[noises[0]]):
                steps_t.append(td.sample_posterior(pc, x0, x_T, torch.full((2,), i, dtype=torch.int64)))
    coefs = ddgan_posterior.PosteriorCoefficients.make(T)
    for i in range(T):
        ours = ddgan_posterior.posterior_step(coefs, x0, x_T, i, noises[0])
        check("ddgan", f"{name} T={T}", f"posterior step i={i}", ours, steps_t[i], F32_TOL)
    x_o = ddgan_posterior.sample(coefs, G, x_T.clone(), zs, noises[:-1] + [None])
    check("ddgan", f"{name} T={T}", "sampling loop x_0", x_o, x_t, F32_TOL)


# --------------------------------------------------------------------------------------------
# LSGM
# --------------------------------------------------------------------------------------------

LSGM_SHAPE = (2, 4, 4, 4)


class _CPUTorch(types.ModuleType):
    """`torch` for diffusion_continuous.py with device='cuda' ignored (its tensors are created on
    'cuda'); everything else is the real torch."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def tensor(*args, device=None, **kwargs):
        return torch.tensor(*args, **kwargs)


def lsgm_official_diffusion(dc, sde):
    """A DiffusionVPSDE / DiffusionGeometric without running __init__ (which needs CUDA for the
    training-time importance-sampling constants); only the attributes sampling reads are set."""
    cls = dc.DiffusionVPSDE if sde.sde_type == "vpsde" else dc.DiffusionGeometric
    d = cls.__new__(cls)
    d.sde_type, d.sigma2_0 = sde.sde_type, sde.sigma2_0
    d.beta_start, d.beta_end = sde.beta_start, sde.beta_end
    d.sigma2_min, d.sigma2_max = sde.sigma2_min, sde.sigma2_max
    return d


@pytest.mark.parametrize("name", list(lsgm_sde.CONFIGS))
def test_lsgm_coefficients(name):
    sde, ode_eps, _ = lsgm_sde.CONFIGS[name]
    t = torch.tensor([ode_eps, 1e-4, 0.01, 0.3, 0.7, 1.0], dtype=torch.float32)
    net = LSGMNet()
    z = torch.randn(LSGM_SHAPE, generator=gen(12))
    with official("lsgm") as imp:
        dc = imp("diffusion_continuous")
        mixed = imp("util.utils").get_mixed_prediction
        d = lsgm_official_diffusion(dc, sde)
        for q, ours, theirs in [("var sigma^2(t)", sde.var(t), d.var(t)), ("g^2(t)", sde.g2(t), d.g2(t)),
                                ("f(t)", sde.f(t), d.f(t)), ("mean coeff", sde.mean_coeff(t), d.e2int_f(t))]:
            assert ours.dtype == theirs.dtype == torch.float32
            check("lsgm", name, f"{q} (f32)", ours, theirs, 0.0, "bit-exact")
        for tt in (torch.tensor(ode_eps, dtype=torch.float32), torch.tensor(0.5)):
            with torch.no_grad():
                var = d.var(tt)
                theirs = mixed(True, net(z, tt), net.mixing_logit, d.mixing_component(z, var, tt, True))
                ours = lsgm_sde.mixed_eps(sde, net, net.mixing_logit, z, tt)
            check("lsgm", name, f"mixed eps t={tt.item():g}", ours, theirs, 0.0, "bit-exact")


@pytest.mark.parametrize("name", list(lsgm_sde.CONFIGS))
def test_lsgm_ode(name):
    sde, ode_eps, tol = lsgm_sde.CONFIGS[name]
    net = LSGMNet()
    noise = torch.randn(LSGM_SHAPE, generator=gen(13))
    with official("lsgm") as imp:
        dc = imp("diffusion_continuous")
        d = lsgm_official_diffusion(dc, sde)
        saved = dc.torch
        dc.torch = _CPUTorch("torch")
        try:
            z_t, nfe_t, _ = d.sample_model_ode(net, LSGM_SHAPE[0], list(LSGM_SHAPE[1:]), ode_eps, tol,
                                               enable_autocast=False, temp=1.0, noise=noise.clone())
        finally:
            dc.torch = saved
    z_o, nfe_o, st = lsgm_sde.ode_sample(sde, net, net.mixing_logit.detach(), noise.clone(), ode_eps, tol)
    note = f"NFE {nfe_o} (official {nfe_t}), {st['n_accepted']}+{st['n_rejected']} steps"
    assert nfe_o == nfe_t, note
    check("lsgm", name, f"PF-ODE RK45 z(eps) tol={tol:g}", z_o, z_t, ODE_TOL, note)
