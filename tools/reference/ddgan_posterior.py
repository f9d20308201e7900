"""DDGAN discretised VP schedule, posterior coefficients and sampling loop.

Written from the DDGAN specification (specs/ddgan.md §1) and checked against
NVlabs/denoising-diffusion-gan (`test_ddgan.py: get_sigma_schedule, Posterior_Coefficients,
sample_posterior, sample_from_model`) by tools/tests/test_samplers.py.

The generator is any callable G(x, t_idx, z) -> x0_hat with x [B, 3, H, W] float32, t_idx [B] int64
(the step index i in 0..T-1) and z [B, nz] float32.

Precision: the schedule (time grid, alpha_bar(t), betas) is float64 and cast to float32 once; every
posterior coefficient is then computed with float32 tensor operations in the official order.
"""
from dataclasses import dataclass

import numpy as np
import torch

EPS_SMALL = 1e-3  # t_0

# Released generator configurations: num_timesteps T.
CONFIGS = {"cifar10": 4, "celeba_256": 2, "lsun": 4}


def time_grid(T, eps_small=EPS_SMALL):
    """t_k = eps + (1 - eps) k / T, k = 0..T (float64). Computed but unused by the sampler."""
    k = torch.from_numpy(np.arange(0, T + 1, dtype=np.float64) / T)
    return k * (1.0 - eps_small) + eps_small


def vp_var(t, beta_min, beta_max):
    """1 - alpha_bar(t) for the continuous VP-SDE with linear beta."""
    log_mean = -0.25 * t ** 2 * (beta_max - beta_min) - 0.5 * t * beta_min
    return 1.0 - torch.exp(2.0 * log_mean)


def geometric_var(t, beta_min, beta_max):
    """The geometric alternative (`use_geometric`; no released model uses it)."""
    return beta_min * ((beta_max / beta_min) ** t)


def schedule_betas(T, beta_min=0.1, beta_max=20.0, use_geometric=False):
    """[1e-8, beta_1, ..., beta_T], beta_k = 1 - alpha_bar(t_k)/alpha_bar(t_{k-1}) in float64, then
    cast to float32 (length T + 1, the first entry a dummy)."""
    t = time_grid(T)
    var = geometric_var(t, beta_min, beta_max) if use_geometric else vp_var(t, beta_min, beta_max)
    abar = 1.0 - var
    betas = 1 - abar[1:] / abar[:-1]
    betas = torch.cat((torch.tensor([1e-8], dtype=torch.float32).to(torch.float64), betas))
    return betas.to(torch.float32)


@dataclass
class PosteriorCoefficients:
    betas: torch.Tensor  # beta_1..beta_T (float32), indexed by i = k - 1
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    variance: torch.Tensor
    coef1: torch.Tensor  # multiplies x0_hat
    coef2: torch.Tensor  # multiplies x_t
    log_var_clipped: torch.Tensor

    @classmethod
    def make(cls, T, beta_min=0.1, beta_max=20.0, use_geometric=False):
        b = schedule_betas(T, beta_min, beta_max, use_geometric)[1:]
        a = 1 - b
        ac = torch.cumprod(a, 0)
        acp = torch.cat((torch.ones(1, dtype=torch.float32), ac[:-1]), 0)
        var = b * (1 - acp) / (1 - ac)
        c1 = b * torch.sqrt(acp) / (1 - ac)
        c2 = (1 - acp) * torch.sqrt(a) / (1 - ac)
        logv = torch.log(var.clamp(min=1e-20))
        return cls(b, a, ac, acp, var, c1, c2, logv)

    @property
    def std(self):
        """exp(log_var_clipped / 2), the noise scale used by the sampler."""
        return torch.exp(0.5 * self.log_var_clipped)


def _per_sample(coef, idx, ndim):
    out = torch.gather(coef.to(idx.device), 0, idx)
    return out.reshape(idx.shape[0], *([1] * (ndim - 1)))


def posterior_step(coefs, x0_hat, x_t, i, noise):
    """x_{i} ~ q(x_{i} | x_{i+1} = x_t, x_0 = x0_hat) with injected noise.

    i: int or [B] int64 step index. mean = coef1[i] x0_hat + coef2[i] x_t; for i > 0 the sample is
    mean + exp(log_var[i]/2) * noise; at i = 0 the noise is masked out (noise may be None there).
    """
    b = x_t.shape[0]
    idx = torch.full((b,), i, dtype=torch.int64, device=x_t.device) if isinstance(i, int) else i
    mean = _per_sample(coefs.coef1, idx, x_t.dim()) * x0_hat + _per_sample(coefs.coef2, idx, x_t.dim()) * x_t
    if noise is None:
        if bool((idx != 0).any()):
            raise ValueError("noise is required for i > 0")
        return mean
    log_var = _per_sample(coefs.log_var_clipped, idx, x_t.dim())
    mask = (1 - (idx == 0).to(torch.float32)).reshape(b, *([1] * (x_t.dim() - 1)))
    return mean + mask * torch.exp(0.5 * log_var) * noise


def sample(coefs, G, x_T, zs, noises):
    """Sampling loop (test_ddgan.py: sample_from_model) with injected randomness.

    zs[j], noises[j] belong to step i = T-1-j (j = 0..T-1), i.e. in the order the official loop
    draws them; noises[T-1] (step i = 0) is masked out and may be None. Returns x (float32).
    """
    T = coefs.betas.shape[0]
    x = x_T
    for j, i in enumerate(reversed(range(T))):
        t_idx = torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
        with torch.no_grad():
            x0_hat = G(x, t_idx, zs[j])
        x = posterior_step(coefs, x0_hat, x, t_idx, noises[j])
    return x
