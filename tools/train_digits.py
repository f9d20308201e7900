#!/usr/bin/env python3
"""Trains the engine's small default models on scikit-learn's 8x8 digits (upsampled to 16x16, one
channel, centred to [-1, 1]) with the official training objectives, on the CPU, and converts them with
tools/convert.py into assets/models/<family>-digits/.

    python tools/train_digits.py cld   [--minutes 25] [--out assets/models/cld-digits]
    python tools/train_digits.py ddgan [--minutes 25] [--out assets/models/ddgan-digits]
    python tools/train_digits.py lsgm  [--minutes 25] [--out assets/models/lsgm-digits]
    python tools/train_digits.py check DIR...      # classifier-based quality check of sampled images

- cld: CLD-SGM's hybrid score matching (losses.py, `cld_objective=hsm`, `weighting=reweightedv2`) on the
  mixed score of a small NCSN++ (CIFAR-10 architecture: FIR, residual input pyramid, Fourier time
  features), Adam 2e-4, EMA 0.999, t ~ U(1e-5, 1), the CIFAR-10 SDE (beta = 4, M^-1 = 4, gamma = 0.04).
- ddgan: the DDGAN objective (train_ddgan.py): a T = 4 step generator with z mapping and AdaGN against a
  time-conditioned discriminator on (x_t, x_{t-1}) pairs shaped after the official small one (residual
  down blocks with time features, a minibatch-stddev channel), non-saturating loss with a lazy R1
  penalty (gamma 0.02 every 15 steps, the official CIFAR-10 setting), Adam with betas (0.5, 0.9) at
  G 1e-4 / D 4e-4 (a faster discriminator than the official 1.6e-4 / 1.25e-4: with the official ratio
  the discriminator fell to chance within a few hundred steps of a short run), EMA 0.999.
- lsgm: the two LSGM stages on the digits upsampled to 32x32 (the MNIST input size): an NVAE (MNIST
  architecture, small: MBConv decoder, Bernoulli output, 2 groups of 4 latents at 8x8) trained on the
  ELBO with a Normal prior and KL warm-up (the first 40% of the time), batch statistics in its batch
  norms, recalibrated to dataset statistics at the end; then the latent NCSN++ (MNIST architecture,
  small) on posterior samples with the VP-SDE noise-prediction loss of the mixed prediction (learned
  mixing logit), t ~ U(1e-2, 1), Adam 3e-4, EMA 0.999.

The checkpoint is written in the official format of each family and converted exactly as a user would
convert a released one. Training settings, time and the final loss go into `training.json` beside the
converted model. Each run stops after --minutes of wall-clock time, so the step count (recorded in
training.json) depends on the machine's speed; the run is otherwise deterministic given the seed and
thread count (2 threads). During DDGAN training, 200 samples of the current and the EMA generator
are scored by the classifier check every 500 steps (printed only; nothing is selected by it).
"""
import argparse
import copy
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import convert  # noqa: E402
from reference import cld_sde, ddgan_posterior, lsgm_sde, ncsnpp, nvae  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def digits16():
    """The 1797 scikit-learn digits as [N, 1, 16, 16] float32 in [-1, 1] (bilinear 2x upsampling)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False).clamp(0, 1)
    return x * 2 - 1, torch.tensor(d.target)


class Ema:
    def __init__(self, params, decay):
        self.params = [p for p in params]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay

    @torch.no_grad()
    def update(self):
        for s, p in zip(self.shadow, self.params):
            s.mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)


# ------------------------------------------------------------------------------------------------
# CLD

CLD_NET = {"n_channels": 32, "ch_mult": "1,2", "n_resblocks": 1, "image_size": 16, "attn_resolutions": "8",
           "image_channels": 1, "dropout": 0.0}


def train_cld(args):
    torch.manual_seed(args.seed)
    data, _ = digits16()
    cfg = dict(ncsnpp.PRESETS["cld"]["cifar10"])
    cfg.update(CLD_NET)
    net = ncsnpp.build("cld", cfg)
    sde = cld_sde.CONFIGS["cifar10"]
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=2e-4)
    ema = Ema(trainable, 0.999)
    start, step, losses = time.time(), 0, []
    while time.time() - start < args.minutes * 60:
        idx = torch.randint(0, data.shape[0], (args.batch,))
        x = data[idx]
        t = torch.rand(args.batch, dtype=torch.float64) * (1.0 - 1e-5) + 1e-5
        # HSM: marginalise over the initial velocity (v0 = 0, var0v = gamma M).
        mx, mv = cld_sde.kernel_mean(sde, x.double(), torch.zeros_like(x).double(), t)
        sxx, sxv, svv = cld_sde.kernel_var(sde, t)
        l11, l21, l22 = cld_sde.cholesky2(sxx, sxv, svv)
        zx, zv = torch.randn_like(x), torch.randn_like(x)
        u = torch.cat([mx + l11 * zx, mv + l21 * zx + l22 * zv], dim=1).float()
        score = cld_sde.mixed_score(sde, net, u, t)
        nm = cld_sde.noise_multiplier(sde, t).float()
        loss = ((score / nm - zv) ** 2).reshape(args.batch, -1).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update()
        losses.append(loss.item())
        step += 1
        if step % 200 == 0:
            print(f"cld step {step} loss {np.mean(losses[-200:]):.2f} ({time.time() - start:.0f} s)", flush=True)
    sd = net.state_dict()
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    ckpt = {"model": {"module." + k: v for k, v in sd.items()},
            "ema": {"decay": 0.999, "num_updates": step, "shadow_params": [s.clone() for s in ema.shadow]},
            "optimizer": {}, "step": step}
    assert len(names) == len(ema.shadow)
    settings = {"family": "cld", "network": CLD_NET, "sde": "cifar10 (beta 4, M^-1 4, gamma 0.04)",
                "objective": "hsm, reweightedv2", "optimizer": "Adam 2e-4", "ema": 0.999, "batch": args.batch,
                "steps": step, "minutes": round((time.time() - start) / 60, 1),
                "final_loss": float(np.mean(losses[-200:])), "seed": args.seed, "threads": torch.get_num_threads()}
    # The digits model samples with SSCS at 100 steps by default (seconds on a CPU), not the ODE.
    finish(args, "cld", "checkpoint_digits.pth", ckpt, "cifar10",
           {**CLD_NET, "sampling_method": "sscs", "n_discrete_steps": 100}, settings)


# ------------------------------------------------------------------------------------------------
# DDGAN

DDGAN_NET = {"num_channels_dae": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "image_size": 16,
             "attn_resolutions": [8], "num_channels": 1, "n_mlp": 2, "nz": 16, "z_emb_dim": 32,
             "num_timesteps": 4}


R1_GAMMA, LAZY_R1 = 0.02, 15
LR_G, LR_D = 1e-4, 4e-4


class DiscBlock(nn.Module):
    """A residual block of the discriminator: act, conv, + time features, act, (2x average-pool),
    conv, added to a 1x1-projected (pooled) skip and scaled by 1/sqrt(2)."""

    def __init__(self, cin, cout, temb, down):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.dense = nn.Linear(temb, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.down = down

    def forward(self, h, e):
        out = F.leaky_relu(self.c1(F.leaky_relu(h, 0.2)) + self.dense(e)[:, :, None, None], 0.2)
        if self.down:
            out, h = F.avg_pool2d(out, 2), F.avg_pool2d(h, 2)
        return (self.c2(out) + self.skip(h)) / math.sqrt(2)


class TimeDisc(nn.Module):
    """D(x_{t-1}, t, x_t) for 16x16 images, after the structure of DDGAN's small discriminator: both
    images stacked, a sinusoidal time embedding through an MLP into every block, residual blocks
    16 -> 8 -> 4, a minibatch standard-deviation channel (the GAN's defence against mode collapse),
    a last conv, a spatial sum and a linear read-out."""

    def __init__(self, ch=1, nf=16, temb=64):
        super().__init__()
        self.temb_dim = temb
        self.t_mlp = nn.Sequential(nn.Linear(temb, temb), nn.LeakyReLU(0.2), nn.Linear(temb, temb))
        self.start = nn.Conv2d(2 * ch, 2 * nf, 1)
        self.blocks = nn.ModuleList([DiscBlock(2 * nf, 2 * nf, temb, False), DiscBlock(2 * nf, 4 * nf, temb, True),
                                     DiscBlock(4 * nf, 8 * nf, temb, True)])
        self.final = nn.Conv2d(8 * nf + 1, 8 * nf, 3, padding=1)
        self.out = nn.Linear(8 * nf, 1)

    def forward(self, x_prev, t, x_t):
        half = self.temb_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        arg = t.float()[:, None] * freqs[None]
        e = F.leaky_relu(self.t_mlp(torch.cat([arg.sin(), arg.cos()], 1)), 0.2)
        h = self.start(torch.cat([x_prev, x_t], 1))
        for b in self.blocks:
            h = b(h, e)
        n, c, hh, ww = h.shape
        g = min(n, 4)
        sd = torch.sqrt(h.view(g, -1, c, hh, ww).var(0, unbiased=False) + 1e-8).mean([1, 2, 3])
        h = torch.cat([h, sd.view(-1, 1, 1, 1).repeat(g, 1, hh, ww)], 1)
        h = F.leaky_relu(self.final(h), 0.2)
        return self.out(h.sum([2, 3]))


def q_sample_pairs(coefs, x0, t):
    """(x_t, x_{t+1}) for data x0 at step index t (train_ddgan.py: q_sample_pairs, the discretised VP)."""
    a_bar = torch.cumprod(1 - coefs.betas.double(), 0).float()
    a_bar_prev = torch.cat([torch.ones(1), a_bar])  # index 0: the clean data
    ab = a_bar_prev[t].view(-1, 1, 1, 1)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn_like(x0)
    beta_next = coefs.betas[t].view(-1, 1, 1, 1).float()
    x_next = (1 - beta_next).sqrt() * x_t + beta_next.sqrt() * torch.randn_like(x0)
    return x_t, x_next


def train_ddgan(args):
    torch.manual_seed(args.seed)
    data, _ = digits16()
    cfg = dict(ncsnpp.PRESETS["ddgan"]["cifar10"])
    cfg.update(DDGAN_NET)
    G = ncsnpp.build("ddgan", cfg)
    D = TimeDisc()
    T = cfg["num_timesteps"]
    coefs = ddgan_posterior.PosteriorCoefficients.make(T, 0.1, 20.0)
    optG = torch.optim.Adam(G.parameters(), lr=LR_G, betas=(0.5, 0.9))
    optD = torch.optim.Adam(D.parameters(), lr=LR_D, betas=(0.5, 0.9))
    ema = Ema(list(G.parameters()), 0.999)
    start, step, lg, ld, dr = time.time(), 0, [], [], []
    while time.time() - start < args.minutes * 60:
        idx = torch.randint(0, data.shape[0], (args.batch,))
        x0 = data[idx]
        t = torch.randint(0, T, (args.batch,))
        x_t, x_next = q_sample_pairs(coefs, x0, t)
        # Discriminator: real pairs with a lazy R1 penalty (every LAZY_R1 steps, as train_ddgan.py's
        # lazy_reg), fake pairs from the generator's posterior sample.
        lazy = step % LAZY_R1 == 0
        x_t.requires_grad_(lazy)
        d_real = D(x_t, t, x_next)
        loss_real = F.softplus(-d_real).mean()
        r1 = torch.zeros(())
        if lazy:
            grad, = torch.autograd.grad(d_real.sum(), x_t, create_graph=True)
            r1 = grad.pow(2).reshape(args.batch, -1).sum(1).mean()
        z = torch.randn(args.batch, cfg["nz"])
        with torch.no_grad():
            x0_pred = G(x_next, t, z)
            x_fake = ddgan_posterior.posterior_step(coefs, x0_pred, x_next, t, torch.randn_like(x0))
        loss_fake = F.softplus(D(x_fake, t, x_next)).mean()
        optD.zero_grad()
        (loss_real + loss_fake + R1_GAMMA / 2 * r1).backward()
        optD.step()
        # Generator.
        z = torch.randn(args.batch, cfg["nz"])
        x0_pred = G(x_next.detach(), t, z)
        x_fake = ddgan_posterior.posterior_step(coefs, x0_pred, x_next.detach(), t, torch.randn_like(x0))
        loss_g = F.softplus(-D(x_fake, t, x_next.detach())).mean()
        optG.zero_grad()
        loss_g.backward()
        optG.step()
        ema.update()
        lg.append(loss_g.item())
        ld.append((loss_real + loss_fake).item())
        dr.append(d_real.mean().item())
        step += 1
        if step % 200 == 0:
            print(f"ddgan step {step} G {np.mean(lg[-200:]):.3f} D {np.mean(ld[-200:]):.3f} "
                  f"D(real) {np.mean(dr[-200:]):+.3f} "
                  f"({time.time() - start:.0f} s)", flush=True)
        if step % 500 == 0:
            for use_ema in (False, True):
                q = ddgan_quick_check(G, ema, coefs, cfg, use_ema=use_ema)
                print(f"ddgan step {step} {'EMA' if use_ema else 'current'} generator: {q['confident']:.1%} "
                      f"confident, classes {q['classes']}", flush=True)
    # netG file: the state_dict with the EMA swapped in (as train_ddgan.py saves it).
    with torch.no_grad():
        for p, s in zip(ema.params, ema.shadow):
            p.copy_(s)
    ckpt = {"module." + k: v for k, v in G.state_dict().items()}
    settings = {"family": "ddgan", "network": DDGAN_NET, "discriminator": "TimeDisc (tools/train_digits.py): residual down blocks with time features, minibatch stddev",
                "objective": f"non-saturating GAN on posterior pairs, lazy R1 {R1_GAMMA} every {LAZY_R1} steps",
                "optimizer": f"Adam G {LR_G} D {LR_D} (0.5, 0.9)",
                "ema": 0.999, "batch": args.batch, "steps": step, "minutes": round((time.time() - start) / 60, 1),
                "final_loss_g": float(np.mean(lg[-200:])), "final_loss_d": float(np.mean(ld[-200:])),
                "seed": args.seed, "threads": torch.get_num_threads()}
    finish(args, "ddgan", "netG_digits.pth", ckpt, "cifar10", DDGAN_NET, settings)


# ------------------------------------------------------------------------------------------------
# LSGM

LSGM_VAE = {"num_channels_enc": 16, "num_channels_dec": 16, "num_groups_per_scale": 2, "num_latent_per_group": 4,
            "num_preprocess_cells": 2, "num_postprocess_cells": 2, "num_cell_per_cond_enc": 1,
            "num_cell_per_cond_dec": 1}
LSGM_SCORE = {"num_channels_dae": 32, "num_cell_per_scale_dae": 1, "embedding_dim": 64, "dropout": 0.0}


def lsgm_args():
    vae = dict(nvae.PRESETS["mnist"])
    vae.update(LSGM_VAE)
    score = dict(ncsnpp.PRESETS["lsgm"]["mnist"])
    score.update(LSGM_SCORE)
    score.pop("num_input_channels")
    merged = dict(vae)
    merged.update({k: v for k, v in score.items() if k not in vae})
    merged.update(sde_type="vpsde", sigma2_0=0.0, beta_start=0.1, beta_end=20.0)
    return argparse.Namespace(**merged)


def set_batch_stats(vae, on):
    for m in vae.modules():
        if isinstance(m, nvae.BatchNorm):
            m.batch_stats = on


@torch.no_grad()
def recalibrate_bn(vae, x, noise):
    """Running statistics := each batch norm's input statistics over the whole dataset (one batch)."""
    stats = {}

    def hook(mod, inp):
        h = inp[0]
        stats[mod] = (h.mean(dim=(0, 2, 3)), h.var(dim=(0, 2, 3), unbiased=True))

    bns = [m for m in vae.modules() if isinstance(m, nvae.BatchNorm)]
    handles = [m.register_forward_pre_hook(hook) for m in bns]
    set_batch_stats(vae, True)
    out = vae.encode(x, noise)
    vae.decode(out["eps"])
    for h in handles:
        h.remove()
    for m in bns:
        m.running_mean.copy_(stats[m][0])
        m.running_var.copy_(stats[m][1])
    set_batch_stats(vae, False)


def train_lsgm(args):
    torch.manual_seed(args.seed)
    data16, _ = digits16()
    x_all = F.interpolate(data16, size=(32, 32), mode="bilinear", align_corners=False).clamp(-1, 1)
    a = lsgm_args()
    vae = nvae.NVAE(vars(a))
    start = time.time()
    budget = args.minutes * 60
    vae_time = 0.55 * budget
    opt = torch.optim.Adamax(vae.parameters(), lr=1e-2 * 0.1)
    set_batch_stats(vae, True)
    vstep, vl = 0, []
    while vstep == 0 or time.time() - start < vae_time:
        idx = torch.randint(0, x_all.shape[0], (args.batch,))
        x = x_all[idx]
        noise = [torch.randn(*s) for s in vae.group_shapes(args.batch)]
        out = vae.encode(x, noise)
        logits = vae.decode(out["eps"])
        recon = F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none").sum(dim=(1, 2, 3))
        kl = sum((0.5 * (mu ** 2 + torch.exp(2 * ls) - 1) - ls).sum(dim=(1, 2, 3))
                 for mu, ls in zip(out["mu"], out["log_sigma"]))
        warm = min(1.0, (time.time() - start) / (0.4 * vae_time) + 1e-4)
        loss = (recon + warm * kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        vl.append((recon.mean().item(), kl.mean().item()))
        vstep += 1
        if vstep % 100 == 0:
            r, k = np.mean(vl[-100:], axis=0)
            print(f"lsgm vae step {vstep} recon {r:.1f} kl {k:.1f} ({time.time() - start:.0f} s)", flush=True)
    vae.eval()
    noise_all = [torch.randn(*s) for s in vae.group_shapes(x_all.shape[0])]
    recalibrate_bn(vae, x_all, noise_all)
    with torch.no_grad():
        z_all = torch.cat(vae.encode(x_all, noise_all)["eps"], dim=1)
    cfg = dict(vars(a))
    cfg["num_input_channels"] = vae.sgm_shape()[0]
    dae = ncsnpp.build("lsgm", cfg)
    sde = lsgm_sde.LSGMSDE("vpsde", 0.1, 20.0, 0.0)
    optd = torch.optim.Adam(dae.parameters(), lr=3e-4)
    ema = Ema(list(dae.parameters()), 0.999)
    sstep, sl = 0, []
    while sstep == 0 or time.time() - start < budget:
        idx = torch.randint(0, z_all.shape[0], (args.batch,))
        z0 = z_all[idx]
        t = torch.rand(args.batch) * (1 - 1e-2) + 1e-2
        eps = torch.randn_like(z0)
        tt = t.view(-1, 1, 1, 1)
        var = sde.var(tt)
        z_t = sde.mean_coeff(tt) * z0 + var.sqrt() * eps
        pred = lsgm_sde.mixed_prediction(dae(z_t, t), dae.mixing_logit, var.sqrt() * z_t)
        loss = ((pred - eps) ** 2).sum(dim=(1, 2, 3)).mean()
        optd.zero_grad()
        loss.backward()
        optd.step()
        ema.update()
        sl.append(loss.item())
        sstep += 1
        if sstep % 200 == 0:
            print(f"lsgm score step {sstep} loss {np.mean(sl[-200:]):.2f} ({time.time() - start:.0f} s)", flush=True)
    with torch.no_grad():
        for p, s_ in zip(ema.params, ema.shadow):
            p.copy_(s_)
    ckpt = {"args": a, "epoch": 0, "global_step": sstep, "vae_state_dict": vae.state_dict(),
            "dae_state_dict": dae.state_dict()}
    r, k = np.mean(vl[-100:], axis=0)
    settings = {"family": "lsgm", "vae": LSGM_VAE, "score": LSGM_SCORE, "data": "digits upsampled to 32x32",
                "vae_objective": "ELBO, Bernoulli decoder, Normal prior, KL warm-up over 40% of the VAE time",
                "vae_optimizer": "Adamax 1e-3", "vae_steps": vstep, "vae_final_recon": float(r),
                "vae_final_kl": float(k), "score_objective": "VP-SDE eps-prediction of the mixed prediction, t ~ U(1e-2, 1)",
                "score_optimizer": "Adam 3e-4", "ema": 0.999, "score_steps": sstep,
                "score_final_loss": float(np.mean(sl[-200:])), "batch": args.batch,
                "minutes": round((time.time() - start) / 60, 1), "seed": args.seed, "threads": torch.get_num_threads()}
    finish(args, "lsgm", "checkpoint_fid.pt", ckpt, "mnist", {}, settings)


# ------------------------------------------------------------------------------------------------


def finish(args, family, ckpt_name, ckpt, preset, overrides, settings):
    out = Path(args.out or ROOT / "assets" / "models" / f"{family}-digits")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ckpt_name
        torch.save(ckpt, path)
        if out.exists():
            import shutil
            shutil.rmtree(out)
        convert.convert(family, path, out, preset, dict(overrides))
    (out / "training.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}: {sum(p.stat().st_size for p in out.iterdir()) / 1e6:.2f} MB", flush=True)


_CLASSIFIER = []


def digit_scores(imgs):
    """An SVM trained on the 8x8 digits on images [N, S, S] in [0, 1] (average-pooled to 8x8): the share
    classified with probability >= 0.9, the mean max-probability and the class histogram."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    if not _CLASSIFIER:
        d = load_digits()
        _CLASSIFIER.append(SVC(probability=True, random_state=0).fit(d.data, d.target))
    t = torch.as_tensor(np.asarray(imgs), dtype=torch.float32)[:, None]
    p = _CLASSIFIER[0].predict_proba((F.adaptive_avg_pool2d(t, 8)[:, 0] * 16).reshape(len(t), 64).numpy())
    conf = p.max(1)
    return {"n": len(t), "confident": float(np.mean(conf >= 0.9)), "mean_max_prob": float(conf.mean()),
            "classes": np.bincount(p.argmax(1), minlength=10).tolist()}


@torch.no_grad()
def ddgan_quick_check(G, ema, coefs, cfg, n=200, use_ema=True):
    """Samples n images with the EMA (or current) generator, by the reference loop, and scores them."""
    saved = [p.detach().clone() for p in ema.params]
    for p, s_ in zip(ema.params, ema.shadow):
        if use_ema:
            p.copy_(s_)
    x = torch.randn(n, 1, 16, 16)
    for i in reversed(range(cfg["num_timesteps"])):
        x0 = G(x, torch.full((n,), i, dtype=torch.int64), torch.randn(n, cfg["nz"]))
        x = ddgan_posterior.posterior_step(coefs, x0, x, i, torch.randn_like(x) if i > 0 else None)
    for p, s_ in zip(ema.params, saved):
        p.copy_(s_)
    return digit_scores(((x[:, 0] + 1) / 2).clamp(0, 1).numpy())


def check(args):
    """Classifies sampled images (PNG folders or .npz) with an SVM trained on the 8x8 digits: reports
    the share of samples classified with probability >= 0.9 and the class histogram, next to the same
    numbers for the training images (upsampled and downsampled the same way) and for uniform noise."""
    from PIL import Image

    def report(name, imgs):
        r = digit_scores(imgs)
        print(f"{name:<28} n={r['n']:4d}  confident(>=0.9) {r['confident']:6.1%}  "
              f"mean max-prob {r['mean_max_prob']:.3f}  classes {r['classes']}")
        return r

    real, _ = digits16()
    out = {"training images": report("training images", ((real[:, 0] + 1) / 2).numpy())}
    rng = np.random.default_rng(0)
    out["uniform noise"] = report("uniform noise", rng.random((500, 16, 16)))
    for src in args.paths:
        p = Path(src)
        if p.suffix == ".npz":
            imgs = np.load(p)["arr_0"][..., 0] / 255.0
        else:
            imgs = np.stack([np.asarray(Image.open(f).convert("L")) / 255.0 for f in sorted(p.glob("*.png"))])
        out[p.name] = report(p.name, imgs)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for fam in ("cld", "ddgan", "lsgm"):
        s = sub.add_parser(fam)
        s.add_argument("--minutes", type=float, default=25.0)
        s.add_argument("--batch", type=int, default=32)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--out")
    c = sub.add_parser("check")
    c.add_argument("paths", nargs="+")
    c.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    {"cld": train_cld, "ddgan": train_ddgan, "lsgm": train_lsgm, "check": check}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
