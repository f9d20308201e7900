"""tools/reference/nvae.py against LSGM's official NVAE (NVlabs/LSGM: nvae.py), random weights, on a CPU.

The official model is built from the same argument namespace, every parameter and BN running
statistic is randomised, its state_dict is loaded into ours with strict=True, and both run in eval
mode on the same inputs. Compared: the posterior parameters and samples of every latent group
(encode), the output logits of the decoder fed with given groups and with internally drawn lower
groups (decode), the output-distribution parameters, the image (mean) and the logistic-mixture
sample with the same uniforms.

Stand-ins needed to run the official code on a CPU (monkeypatched for the duration of a test):
- `torch.Tensor.cuda` is the identity (the official code moves a few constants, AR masks and the
  mixture sampler's draws to the GPU), and `torch.zeros(..., device='cuda')` is created on the CPU
  (`NVAE.sample` builds its prior for the groups it is not given that way).
- `SyncBatchNormSwish.forward` refuses CPU tensors; it is replaced by its own non-distributed branch
  (F.batch_norm with the running statistics in eval mode, then x * sigmoid(x)).
- `util.distributions.sample_normal_jit` (the reparameterised draw behind `Normal.sample`) takes its
  N(0, I) noise from a list that the test also hands to our `encode` / `decode`, and records the
  (mu, sigma) it is called with, so the posterior parameters can be compared too.
- The mixture sampler's uniforms come from the global torch RNG in the official code; the test
  reseeds it and draws the same two tensors, in the same order, for ours.

Run with -s to see the error table.
"""
import math
import time
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tools.reference import nvae as ref
from tools.tests.official import official

torch.set_num_threads(1)

TOL = 1e-5
ROWS = []  # (config, quantity, max_abs, rel_l2)

SMALL = {
    # CIFAR-10 architecture (res_bnswish cells, DML head), 1 scale x 3 groups.
    "small_bnswish_dml": dict(
        ref.PRESETS["cifar10"], num_channels_enc=16, num_channels_dec=16, num_groups_per_scale=3,
        num_latent_per_group=4,
    ),
    # CIFAR-10 NLL architecture: AR flow cells, 3 cells per group, plus the `normal` head.
    "small_bnswish_nf_normal": dict(
        ref.PRESETS["cifar10_nll"], num_channels_enc=16, num_channels_dec=16, num_groups_per_scale=2,
        num_latent_per_group=3, decoder_dist="normal",
    ),
    # MNIST architecture: res_mbconv decoder, 2 pre/post blocks, Bernoulli head, 1-channel 32x32 input.
    "small_mbconv_bin": dict(
        ref.PRESETS["mnist"], num_channels_enc=16, num_channels_dec=16, num_preprocess_cells=2,
        num_postprocess_cells=2, num_latent_per_group=4,
    ),
    # CelebA-HQ architecture at 64x64: 2 latent scales, up/down cells between them, input_skip,
    # AR flows, 5-bit data, DML head.
    "small_multiscale_celeba64": dict(
        ref.PRESETS["celeba256_qual"], dataset="celeba_64", num_channels_enc=16, num_channels_dec=16,
        num_groups_per_scale=2, num_latent_per_group=4, num_nf=1, channel_mult=[1, 1, 2],
    ),
    # Same at 3 scales with the `dl` head (8-bit).
    "small_3scale_dl": dict(
        ref.PRESETS["celeba256_quant"], dataset="celeba_64", num_channels_enc=16, num_channels_dec=16,
        num_groups_per_scale=2, num_latent_per_group=4, num_nf=1, channel_mult=[1, 1, 2, 2],
        num_x_bits=8, decoder_dist="dl",
    ),
}

# Every released preset runs at batch 1: measured on one CPU thread, the official encoder+decoder
# forward takes ~1.5 s (CIFAR-10), ~0.1 s (MNIST) and ~11 s (CelebA-HQ-256), under the ~30 s limit;
# a CelebA-HQ preset test takes ~40 s in all.


def err(ours, theirs):
    ours, theirs = ours.detach().double(), theirs.detach().double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert torch.isfinite(theirs).all() and torch.isfinite(ours).all()
    d = (ours - theirs).norm().item()
    n = theirs.norm().item()
    return (ours - theirs).abs().max().item(), d / n if n > 0 else d, n / math.sqrt(theirs.numel())


def record(cfg, what, ours, theirs, tol=TOL):
    mx, rel, rms = err(ours, theirs)
    ROWS.append((cfg, what, mx, rel, rms))
    print(f"  {cfg:26s} {what:28s} max_abs={mx:.3e} rel_l2={rel:.3e} rms(official)={rms:.3e}")
    assert rms > 0 or what == "preprocess_image", f"{cfg} {what}: official output is all zeros"
    assert rel <= tol, f"{cfg} {what}: rel L2 {rel:.3e} > {tol:g} (max abs {mx:.3e})"


@pytest.fixture(scope="module", autouse=True)
def error_table():
    yield
    if ROWS:
        print("\n\nNVAE reference vs official (fp32, CPU)")
        print(f"| {'config':26s} | {'quantity':28s} | {'max abs':>9s} | {'rel L2':>9s} | {'rms(off.)':>9s} |")
        print(f"|{'-' * 28}|{'-' * 30}|{'-' * 11}|{'-' * 11}|{'-' * 11}|")
        for cfg, what, mx, rel, rms in ROWS:
            print(f"| {cfg:26s} | {what:28s} | {mx:9.2e} | {rel:9.2e} | {rms:9.2e} |")


class NoiseFeed:
    """Replaces the official reparameterised draw: noise from a queue; records (mu, sigma)."""

    def __init__(self):
        self.queue, self.calls = [], []

    def __call__(self, mu, sigma):
        rho = self.queue.pop(0)
        assert rho.shape == mu.shape, (rho.shape, mu.shape)
        self.calls.append((mu.detach().clone(), sigma.detach().clone()))
        return rho * sigma + mu, rho


def _cpu_zeros(zeros):
    def f(*args, **kwargs):
        if str(kwargs.get("device", "")).startswith("cuda"):
            kwargs["device"] = "cpu"
        return zeros(*args, **kwargs)

    return f


def _bn_swish_cpu(self, x):
    use_batch = self.training or not self.track_running_stats
    y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch,
                     self.momentum or 0.0, self.eps)
    return y * torch.sigmoid(y)


@pytest.fixture
def lsgm(monkeypatch):
    with official("lsgm") as imp:
        mods = SimpleNamespace(
            nvae=imp("nvae"), utils=imp("util.utils"), dist=imp("util.distributions"),
            bn=imp("thirdparty.inplaced_sync_batchnorm"),
        )
        monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
        monkeypatch.setattr(torch, "zeros", _cpu_zeros(torch.zeros))
        monkeypatch.setattr(mods.bn.SyncBatchNormSwish, "forward", _bn_swish_cpu)
        feed = NoiseFeed()
        monkeypatch.setattr(mods.dist, "sample_normal_jit", feed)
        mods.feed = feed
        yield mods


def randomise(model, gen):
    """Every parameter and BN statistic random and non-degenerate (aliased tensors once)."""
    seen = set()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.2, generator=gen)
                m.running_mean.normal_(0.0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.num_batches_tracked.fill_(1234)
                seen.update(id(t) for t in (m.weight, m.bias))
                continue
            for name, p in m.named_parameters(recurse=False):
                if id(p) in seen:
                    continue
                seen.add(id(p))
                if name == "log_weight_norm":
                    p.uniform_(-0.5, 0.5, generator=gen)
                elif name == "bias":
                    p.normal_(0.0, 0.1, generator=gen)
                elif p.dim() >= 2 and name != "prior_ftr0":
                    fan_in = p[0].numel()
                    p.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
                else:
                    p.normal_(0.0, 1.0, generator=gen)


def build(lsgm, args_dict, seed=0):
    args = SimpleNamespace(**args_dict)
    arch = lsgm.utils.get_arch_cells(args.arch_instance, args.use_se)
    theirs = lsgm.nvae.NVAE(args, arch)
    randomise(theirs, torch.Generator().manual_seed(seed))
    ours = ref.NVAE(args_dict)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.eval()
    ours.eval()
    return ours, theirs


def run_config(lsgm, cfg, args_dict, batch, sample_check=True):
    torch.manual_seed(1)
    t0 = time.time()
    ours, theirs = build(lsgm, args_dict)
    t_build = time.time() - t0
    n_in = 1 if ours.crop_output else 3
    size = ours.input_size
    gen = torch.Generator().manual_seed(2)
    x01 = torch.rand(batch, n_in, size, size, generator=gen)

    # input pre-processing (bit reduction, [-1, 1])
    x_theirs = lsgm.utils.symmetrize_image_data(lsgm.utils.change_bit_length(x01.clone(), ours.num_bits))
    x = ours.preprocess_image(x01)
    record(cfg, "preprocess_image", x, x_theirs, tol=0.0)

    shapes = ours.group_shapes(batch)
    noise = [torch.randn(*s, generator=gen) for s in shapes]

    # ---- encode: official forward with the same posterior noise
    with torch.no_grad():
        lsgm.feed.queue, lsgm.feed.calls = list(noise), []
        t0 = time.time()
        logits_t, _, eps_t = theirs(x_theirs)
        t_fwd = time.time() - t0
        assert not lsgm.feed.queue and len(lsgm.feed.calls) == len(shapes)
        enc = ours.encode(x, noise, return_logits=True)
    for g, (mu_t, sig_t) in enumerate(lsgm.feed.calls):
        if g in (0, len(shapes) - 1):
            record(cfg, f"encode mu[{g}]", enc["mu"][g], mu_t)
            record(cfg, f"encode sigma[{g}]", enc["log_sigma"][g].exp(), sig_t)
    eps_ours = torch.cat([e.flatten(1) for e in enc["eps"]], 1)
    eps_theirs = torch.cat([e.flatten(1) for e in eps_t], 1)
    mu_ours = torch.cat([e.flatten(1) for e in enc["mu"]], 1)
    mu_theirs = torch.cat([c[0].flatten(1) for c in lsgm.feed.calls], 1)
    record(cfg, "encode mu (all groups)", mu_ours, mu_theirs)
    record(cfg, "encode eps (all groups)", eps_ours, eps_theirs)
    record(cfg, "encode -> recon logits", enc["logits"], logits_t)
    if ours.num_flows:
        plain = enc["mu"][0] + enc["log_sigma"][0].exp() * noise[0]
        assert (plain - enc["eps"][0]).abs().max() > 1e-3, "AR flow cells had no effect"
    top_ours = ours.concat_eps_per_scale(enc["eps"])[0]
    top_theirs = theirs.concat_eps_per_scale(eps_t)[0]
    assert list(top_ours.shape[1:]) == ours.sgm_shape() == [theirs.latent_structure()[0], *top_theirs.shape[2:]]

    # ---- decode (LSGM sampling path): top-scale latent from the "score model", the rest drawn
    z = torch.randn(batch, *ours.sgm_shape(), generator=gen)
    n_top = ours.num_groups_per_scale
    lower = [torch.randn(*s, generator=gen) for s in shapes[n_top:]]
    temp = 0.8
    captured = {}
    hook = theirs.image_conditional.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
    with torch.no_grad():
        lsgm.feed.queue, lsgm.feed.calls = list(lower), []
        img_t = theirs.sample(batch, temp, theirs.decompose_eps(z))
        assert not lsgm.feed.queue
        logits_o, img_o = ours.sample_from_sgm(z, lower, t=temp)
    hook.remove()
    record(cfg, "decode logits (SGM latent)", logits_o, captured["logits"])
    record(cfg, "decode image [0,1]", img_o, img_t)

    # decode of the encoder's eps (all groups given) equals the reconstruction logits
    with torch.no_grad():
        rec = ours.decode(enc["eps"])
    record(cfg, "decode(encode eps) logits", rec, logits_t)

    # ---- output distribution parameters
    with torch.no_grad():
        d_t = theirs.decoder_output(captured["logits"])
        d_o = ours.output_distribution(captured["logits"])
        if ours.decoder_dist == "dml":
            for name in ("logit_probs", "means", "log_scales", "coeffs"):
                record(cfg, f"dml {name}", getattr(d_o, name), getattr(d_t, name))
            if sample_check:
                torch.manual_seed(5)
                s_t = d_t.sample(t=0.9)
                torch.manual_seed(5)
                u_mix = torch.Tensor(*d_o.logit_probs.shape).uniform_(1e-5, 1.0 - 1e-5)
                u_log = torch.Tensor(batch, 3, *d_o.logit_probs.shape[2:]).uniform_(1e-5, 1.0 - 1e-5)
                record(cfg, "dml sample (same uniforms)", d_o.sample(u_mix, u_log, t=0.9), s_t)
        elif ours.decoder_dist == "bin":
            record(cfg, "bernoulli probs", torch.sigmoid(d_o.logits), d_t.dist.probs)
        elif ours.decoder_dist == "normal":
            record(cfg, "normal mu", d_o.mu, d_t.mu)
            record(cfg, "normal log_sigma", d_o.log_sigma, d_t.log_sigma)
        elif ours.decoder_dist == "dl":
            record(cfg, "dl means", d_o.means, d_t.means)
            record(cfg, "dl log_scales", d_o.log_scales, d_t.log_scales)
        record(cfg, "distribution mean", d_o.mean(), d_t.mean())
    print(f"  {cfg}: build {t_build:.1f} s, official forward {t_fwd:.1f} s")


def test_state_dict_keys_equal(lsgm):
    for cfg, args in list(SMALL.items()) + list(ref.PRESETS.items()):
        ours = ref.NVAE(args)
        theirs = lsgm.nvae.NVAE(SimpleNamespace(**args), lsgm.utils.get_arch_cells(args["arch_instance"], args["use_se"]))
        ko, kt = ours.state_dict(), theirs.state_dict()
        assert set(ko) == set(kt), (cfg, sorted(set(ko) ^ set(kt))[:20])
        for k in kt:
            assert ko[k].shape == kt[k].shape, (cfg, k)


@pytest.mark.parametrize("cfg", list(SMALL))
def test_small(lsgm, cfg):
    run_config(lsgm, cfg, SMALL[cfg], batch=2)


@pytest.mark.parametrize("cfg", list(ref.PRESETS))
def test_preset(lsgm, cfg):
    run_config(lsgm, cfg, ref.PRESETS[cfg], batch=1, sample_check=cfg == "cifar10")


def test_bn_batch_stats_mode():
    """set_bn_batch_stats: every BN normalises with the batch's own statistics (biased variance) and
    leaves the running statistics untouched (used for the CelebA-HQ `--vae_train_mode` evaluation)."""
    torch.manual_seed(0)
    bn = ref.BatchNorm(5, act=True)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    bn.batch_stats = True
    x = torch.randn(3, 5, 4, 4) * 2 + 1
    m = x.mean(dim=(0, 2, 3), keepdim=True)
    v = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    y = (x - m) / torch.sqrt(v + 1e-5) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    y = y * torch.sigmoid(y)
    mx, rel, _ = err(bn(x), y)
    assert rel < 1e-6
    assert torch.equal(bn.running_mean, torch.zeros(5)) and torch.equal(bn.running_var, torch.ones(5))
