"""LSGM latent SDEs, mixed score and the latent probability-flow ODE sampler.

Written from the LSGM specification (specs/lsgm.md §4) and checked against NVlabs/LSGM
(`diffusion_continuous.py: DiffusionVPSDE, DiffusionGeometric, sample_model_ode`,
`util/utils.py: get_mixed_prediction`) by tools/tests/test_samplers.py.

Both SDEs have the form dz = -1/2 g^2(t) z dt + g(t) dW on t in [0, 1]:
- "vpsde" (CIFAR-10 FID/balanced, MNIST, CelebA-HQ): g^2 = beta_start + (beta_end - beta_start) t,
  sigma^2(t) = 1 - (1 - sigma2_0) exp(-beta_start t - 1/2 (beta_end - beta_start) t^2);
  beta_start = 0.1, beta_end = 20, sigma2_0 = 0.
- "geometric_sde" (CIFAR-10 best-NLL): sigma^2(t) = sigma2_min r^t - sigma2_min + sigma2_0,
  r = sigma2_max / sigma2_min, g^2 = sigma2_min r^t ln r / (1 - sigma2_0 + sigma2_min - sigma2_min r^t);
  sigma2_min = sigma2_0 = 3e-5, sigma2_max = 0.999.

The network is any callable `eps_net(z_f32, t_f32) -> eps'` with z [B, C, H, W] and t a 0-dim
float32 tensor (the official ODE passes the scalar solver time; the NCSN++ expands it).
All drift arithmetic is float32, evaluated at the float32-rounded time, in the official op order.
The official run wraps the drift in fp16 autocast; the network precision is not modelled here.
"""
from dataclasses import dataclass

import numpy as np
import torch

from .cld_sde import rk45_solve


@dataclass(frozen=True)
class LSGMSDE:
    sde_type: str = "vpsde"  # "vpsde" or "geometric_sde"
    beta_start: float = 0.1
    beta_end: float = 20.0
    sigma2_0: float = 0.0
    sigma2_min: float = 3e-5  # geometric only
    sigma2_max: float = 0.999  # geometric only

    # -- coefficient functions; t: float32 tensor (any shape) --
    def g2(self, t):
        if self.sde_type == "vpsde":
            return self.beta_start + (self.beta_end - self.beta_start) * t
        if self.sde_type == "geometric_sde":
            s2 = self.sigma2_min * ((self.sigma2_max / self.sigma2_min) ** t)
            return s2 * np.log(self.sigma2_max / self.sigma2_min) / (1.0 - self.sigma2_0 + self.sigma2_min - s2)
        raise ValueError(self.sde_type)

    def f(self, t):
        """Linear drift coefficient f(t) = -g^2(t)/2."""
        return -0.5 * self.g2(t)

    def var(self, t):
        """sigma^2(t), the marginal variance of z_t given z_0 (plus sigma2_0)."""
        if self.sde_type == "vpsde":
            db = self.beta_end - self.beta_start
            return 1.0 - (1.0 - self.sigma2_0) * torch.exp(-self.beta_start * t - 0.5 * db * t * t)
        if self.sde_type == "geometric_sde":
            return self.sigma2_min * ((self.sigma2_max / self.sigma2_min) ** t) - self.sigma2_min + self.sigma2_0
        raise ValueError(self.sde_type)

    def mean_coeff(self, t):
        """exp(int_0^t f): the coefficient of z_0 in the mean of z_t."""
        if self.sde_type == "vpsde":
            db = self.beta_end - self.beta_start
            return torch.exp(-0.5 * self.beta_start * t - 0.25 * db * t * t)
        r = self.sigma2_max / self.sigma2_min
        return torch.sqrt(1.0 + self.sigma2_min * (1.0 - r ** t) / (1.0 - self.sigma2_0))


# Released configurations (README commands + train_vada.py defaults) with their evaluation
# ODE settings: (sde, ode_eps, ode_solver_tol).
CONFIGS = {
    "cifar10": (LSGMSDE("vpsde"), 1e-6, 1e-5),  # the balanced and best-FID models
    "cifar10_nll": (LSGMSDE("geometric_sde", sigma2_0=3e-5, sigma2_min=3e-5, sigma2_max=0.999), 1e-6, 1e-5),
    "mnist": (LSGMSDE("vpsde"), 1e-5, 1e-5),
    "celeba256_quant": (LSGMSDE("vpsde"), 1e-5, 1e-2),
    "celeba256_qual": (LSGMSDE("vpsde"), 1e-5, 1e-5),
}


def mixed_prediction(eps_pred, mixing_logit, mixing_component):
    """(1 - a) * mixing_component + a * eps_pred, a = sigmoid(mixing_logit) ([1, C, 1, 1])."""
    a = torch.sigmoid(mixing_logit)
    return (1 - a) * mixing_component + a * eps_pred


def mixed_eps(sde, eps_net, mixing_logit, z, t):
    """Mixed noise prediction eps_hat(z, t); the Normal-prior part is sigma(t) z."""
    var = sde.var(t)
    return mixed_prediction(eps_net(z, t), mixing_logit, torch.sqrt(var) * z)


def mixed_score(sde, eps_net, mixing_logit, z, t):
    """Model score -eps_hat / sigma(t)."""
    return -mixed_eps(sde, eps_net, mixing_logit, z, t) / torch.sqrt(sde.var(t))


def pf_ode_drift(sde, eps_net, mixing_logit, z, t):
    """dz/dt = f(t) z + 1/2 g^2(t) eps_hat / sigma(t) (float32, official op order).

    Algebraically -1/2 g^2 a (z - eps'/sigma); this form is what the official code evaluates.
    """
    var = sde.var(t)
    eps_hat = mixed_prediction(eps_net(z, t), mixing_logit, torch.sqrt(var) * z)
    return sde.f(t) * z + 0.5 * sde.g2(t) * eps_hat / torch.sqrt(var)


def pf_ode_rhs(sde, eps_net, mixing_logit, shape):
    """Right-hand side in the solver's variable tau = -t (torchdiffeq flips a decreasing time grid):
    tau and the float64 state are cast to float32, the result -drift(-tau) is float32."""
    def rhs(tau, y):
        tau32 = torch.tensor(float(tau), dtype=torch.float32)
        z = torch.from_numpy(np.asarray(y)).reshape(shape).to(torch.float32)
        with torch.no_grad():
            d = -1.0 * pf_ode_drift(sde, eps_net, mixing_logit, z, -tau32)
        return d.numpy().reshape(-1)
    return rhs


def ode_sample(sde, eps_net, mixing_logit, noise, ode_eps, ode_solver_tol, temp=1.0, backend="own"):
    """Latent probability-flow ODE sampler (diffusion_continuous.py: sample_model_ode).

    z(1) = temp * noise; integrate from t = 1 to t = float32(ode_eps) with RK45 (SciPy controller,
    rtol = atol = ode_solver_tol) over the whole batch as one system; the end value is returned
    as is (no denoising, no clamping), as float32. Returns (z, nfe, stats).
    """
    z0 = temp * noise
    shape = tuple(z0.shape)
    rhs = pf_ode_rhs(sde, eps_net, mixing_logit, shape)
    y0 = z0.detach().numpy().reshape(-1)
    t0 = -1.0
    t1 = float(-np.float32(ode_eps))  # the time grid is a float32 tensor
    if backend == "own":
        y_end, stats = rk45_solve(rhs, t0, t1, y0, ode_solver_tol, ode_solver_tol)
    elif backend == "scipy":
        from scipy.integrate import solve_ivp
        sol = solve_ivp(rhs, [t0, t1], y0, method="RK45", t_eval=np.array([t0, t1], dtype=np.float32),
                        rtol=ode_solver_tol, atol=ode_solver_tol)
        y_end, stats = sol.y[:, -1], dict(nfev=sol.nfev)
    else:
        raise ValueError(backend)
    z = torch.from_numpy(np.array(y_end)).reshape(shape).to(z0.dtype)
    return z, stats["nfev"], stats
