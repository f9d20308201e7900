#!/usr/bin/env python3
"""Writes the fixtures the Rust tests compare against: tests/fixtures/<op>_<case>.safetensors.

Each file holds the inputs (`in.*`), parameters (`param.*`) and expected outputs (`out.*`) of one op,
block, network call or sampler step, in fp32 and PyTorch's NCHW layout, plus metadata: op, case,
seed, tolerance, torch version and a one-line description. Expected outputs of ops, blocks and
networks are computed in float64 from the fp32 inputs and rounded once, the most accurate oracle the
inputs allow; where the official precision is part of the result (fp32 embeddings, the samplers' mixed
fp32/fp64 arithmetic) the fixture follows it and says so in its description.
`tests/fixtures/MANIFEST.json` lists every file's tensors with shape and dtype; the Rust test
`tests/fixtures.rs` checks the files against it.

    python tools/make_fixtures.py [--out tests/fixtures] [--only PREFIX]
    python tools/make_fixtures.py --check      # regenerate into a temp dir, compare bytes

Deterministic: fixed seeds, one CPU thread, float64 math; regenerating with the same torch version
gives bit-identical files (`--check` verifies it).
"""
import argparse
import filecmp
import json
import math
import os
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from st_io import save_safetensors

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "fixtures"

# fp32 CPU engine vs float64-derived expected values (DEVELOPERS.md standards).
TOL_F32 = "1e-5"

CASES = {}


def case(op, variant):
    """Registers the fixture `<op>_<variant>`: fn(gen) -> (tensors, description, extra metadata)."""
    name = f"{op}_{variant}"

    def wrap(fn):
        assert name not in CASES, name
        CASES[name] = (op, fn)
        return fn

    return wrap


def randn(gen, *shape, scale=1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).float()


def f64(t):
    return t.double()


# --- convolutions -------------------------------------------------------------------------------


def conv_case(gen, n, cin, cout, h, w, k, stride, pad, groups, bias=True):
    x = randn(gen, n, cin, h, w)
    fan_in = cin // groups * k * k
    wt = randn(gen, cout, cin // groups, k, k, scale=fan_in ** -0.5)
    b = randn(gen, cout, scale=0.1) if bias else None
    y = F.conv2d(f64(x), f64(wt), None if b is None else f64(b), stride=stride, padding=pad, groups=groups)
    t = {"in.x": x, "param.weight": wt, "out.y": y.float()}
    if b is not None:
        t["param.bias"] = b
    meta = {"stride": str(stride), "padding": str(pad), "groups": str(groups)}
    return t, meta


@case("conv2d", "3x3")
def _(gen):
    t, m = conv_case(gen, 3, 8, 16, 9, 7, 3, 1, 1, 1)
    return t, "3x3 conv, stride 1, padding 1, bias; batch 3, 9x7", m


@case("conv2d", "3x3_stride2")
def _(gen):
    t, m = conv_case(gen, 2, 8, 12, 9, 8, 3, 2, 1, 1)
    return t, "3x3 conv, stride 2, padding 1 (odd height)", m


@case("conv2d", "1x1")
def _(gen):
    t, m = conv_case(gen, 3, 24, 8, 5, 6, 1, 1, 0, 1)
    return t, "1x1 conv (NIN / shortcut), bias", m


@case("conv2d", "depthwise_5x5")
def _(gen):
    t, m = conv_case(gen, 2, 16, 16, 8, 8, 5, 1, 2, 16)
    return t, "5x5 depthwise conv (groups = channels), as in NVAE decoder cells", m


@case("conv2d", "grouped_3x3_nobias")
def _(gen):
    t, m = conv_case(gen, 2, 16, 32, 6, 6, 3, 1, 1, 4, bias=False)
    return t, "3x3 conv with 4 groups, no bias", m


# --- normalisation and activations ----------------------------------------------------------------


@case("group_norm", "32c_8g")
def _(gen):
    x = randn(gen, 3, 32, 5, 7, scale=2.0) + 0.5
    g = 1.0 + randn(gen, 32, scale=0.2)
    b = randn(gen, 32, scale=0.2)
    groups, eps = 8, 1e-6
    y = F.group_norm(f64(x), groups, f64(g), f64(b), eps)
    return (
        {"in.x": x, "param.weight": g, "param.bias": b, "out.y": y.float()},
        "GroupNorm, 32 channels in 8 groups, eps 1e-6, affine",
        {"num_groups": str(groups), "eps": repr(eps)},
    )


@case("batch_norm", "eval")
def _(gen):
    x = randn(gen, 3, 16, 4, 5)
    mean = randn(gen, 16, scale=0.3)
    var = torch.rand(16, generator=gen, dtype=torch.float64).float() + 0.5
    g = 1.0 + randn(gen, 16, scale=0.2)
    b = randn(gen, 16, scale=0.2)
    eps = 1e-5
    y = F.batch_norm(f64(x), f64(mean), f64(var), f64(g), f64(b), training=False, eps=eps)
    return (
        {
            "in.x": x,
            "param.running_mean": mean,
            "param.running_var": var,
            "param.weight": g,
            "param.bias": b,
            "out.y": y.float(),
        },
        "BatchNorm2d in eval mode (running statistics), eps 1e-5",
        {"eps": repr(eps)},
    )


@case("silu", "basic")
def _(gen):
    x = randn(gen, 2, 8, 6, 6, scale=4.0)
    return {"in.x": x, "out.y": F.silu(f64(x)).float()}, "SiLU / Swish x*sigmoid(x)", {}


@case("dense", "basic")
def _(gen):
    x = randn(gen, 3, 40)
    w = randn(gen, 24, 40, scale=40 ** -0.5)
    b = randn(gen, 24, scale=0.1)
    y = F.linear(f64(x), f64(w), f64(b))
    return {"in.x": x, "param.weight": w, "param.bias": b, "out.y": y.float()}, "dense layer y = x W^T + b", {}


# --- blocks from the reference (parameters under their official state_dict names) -----------------


def randomise(module, gen, scale=0.3):
    """Every float parameter and buffer replaced by fp32 random values (nothing trivially 0 or 1);
    BN running variances kept positive."""
    with torch.no_grad():
        for name, t in list(module.state_dict().items()):
            if not t.is_floating_point():
                continue
            v = randn(gen, *t.shape, scale=scale)
            if name.endswith("running_var"):
                v = v.abs() + 0.5
            t.copy_(v)
    return module


def params_of(module):
    """param.<official name> for every float tensor of the state_dict (aliases included once)."""
    out = {}
    for k, v in module.state_dict().items():
        if v.is_floating_point() and not k.endswith("weight_normalized"):
            out["param." + k] = v.detach().float().clone()
    return out


def run64(module, *inputs):
    """The module's output in float64 from its fp32 parameters and inputs."""
    import copy

    m = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        return m(*[i.double() if i.is_floating_point() else i for i in inputs])


def ref():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference import cld_sde, ddgan_posterior, layers, lsgm_sde, ncsnpp, nvae

    return types.SimpleNamespace(cld_sde=cld_sde, ddgan_posterior=ddgan_posterior, layers=layers,
                                 lsgm_sde=lsgm_sde, ncsnpp=ncsnpp, nvae=nvae)


@case("adagn", "32c_8g")
def _(gen):
    m = randomise(ref().layers.AdaptiveGroupNorm(8, 32, 16), gen)
    x, zemb = randn(gen, 3, 32, 5, 6) + 0.3, randn(gen, 3, 16)
    y = run64(m, x, zemb)
    return ({"in.x": x, "in.zemb": zemb, **params_of(m), "out.y": y.float()},
            "DDGAN AdaGN: [gamma, beta] = style(zemb); gamma * GroupNorm(x; 8 groups, eps 1e-6) + beta",
            {"num_groups": "8", "eps": "1e-06"})


@case("attention", "32c_6x5")
def _(gen):
    m = randomise(ref().layers.AttnBlockpp(32, skip_rescale=True), gen)
    x = randn(gen, 2, 32, 6, 5)
    return ({"in.x": x, **params_of(m), "out.y": run64(m, x).float()},
            "AttnBlockpp: GroupNorm, NIN q/k/v (W stored [in, out]), softmax(q.k/sqrt(C)) over H*W, NIN_3, "
            "(x + h)/sqrt(2)", {"skip_rescale": "true", "group_norm": "min(C // 4, 32) groups, eps 1e-6"})


@case("fir", "upsample_2x")
def _(gen):
    x = randn(gen, 2, 8, 5, 7)
    y = ref().layers.fir_upsample_2d(x.double(), (1, 3, 3, 1))
    return {"in.x": x, "out.y": y.float()}, "FIR [1,3,3,1] x2 upsampling (upfirdn2d, zero borders)", {"kernel": "1,3,3,1"}


@case("fir", "downsample_2x")
def _(gen):
    x = randn(gen, 2, 8, 8, 6)
    y = ref().layers.fir_downsample_2d(x.double(), (1, 3, 3, 1))
    return {"in.x": x, "out.y": y.float()}, "FIR [1,3,3,1] /2 downsampling (upfirdn2d, zero borders)", {"kernel": "1,3,3,1"}


@case("fir", "conv_downsample_2x")
def _(gen):
    m = randomise(ref().layers.Downsample(in_ch=6, out_ch=8, with_conv=True, fir=True), gen)
    x = randn(gen, 2, 6, 8, 8)
    return ({"in.x": x, **params_of(m), "out.y": run64(m, x).float()},
            "FIR-filtered stride-2 3x3 conv (the input pyramid's Conv2d_0)", {"kernel": "1,3,3,1"})


@case("embedding", "sinusoidal_int")
def _(gen):
    t = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float32)
    y = ref().layers.timestep_embedding(t, 128)
    return ({"in.t": t, "out.emb": y.float()},
            "sinusoidal embedding of DDGAN step indices (float32 as in the official code), dim 128",
            {"dim": "128", "max_positions": "10000"})


@case("embedding", "gaussian_fourier")
def _(gen):
    m = randomise(ref().layers.GaussianFourierProjection(64, scale=16.0), gen, scale=16.0)
    t = torch.tensor([1e-3, 0.25, 0.9], dtype=torch.float32)
    # The arguments reach ~1e3 rad, where one fp32 rounding of the argument moves sin by ~1e-4. The
    # argument is therefore formed in fp32 in the official order, ((log t * W) * 2) * pi, and only sin
    # and cos are evaluated in float64: an fp32 implementation in that order reproduces it.
    p = ((torch.log(t)[:, None] * m.W.detach()[None, :]) * 2) * torch.tensor(math.pi, dtype=torch.float32)
    y = torch.cat([torch.sin(p.double()), torch.cos(p.double())], dim=-1)
    return ({"in.t": t, **params_of(m), "out.emb": y.float()},
            "Gaussian Fourier features of log t (CLD CIFAR-10): p = ((log t * W) * 2) * pi in fp32, "
            "[sin p, cos p]", {"input": "log t", "argument": "fp32, ((log(t) * W) * 2) * float32(pi)"})


@case("embedding", "lsgm_positional")
def _(gen):
    m = ref().layers.PositionalEmbedding(128, 1000.0)
    t = torch.tensor([1e-6, 0.3, 1.0], dtype=torch.float32)
    y = m(t)
    return ({"in.t": t, "out.emb": y.float()},
            "LSGM positional embedding of 1000 t (float32 as in the official code), dim 128",
            {"dim": "128", "scale": "1000"})


@case("mapping", "pixelnorm_mlp")
def _(gen):
    m = randomise(ref().layers.z_mapping(20, 32, 2), gen)
    z = randn(gen, 3, 20)
    return ({"in.z": z, **params_of(m), "out.zemb": run64(m, z).float()},
            "DDGAN z_transform: PixelNorm, then Linear+SiLU layers at indices 1, 3, 5",
            {"nz": "20", "z_emb_dim": "32", "n_mlp": "2"})


@case("resblock", "biggan_down_fir")
def _(gen):
    L = ref().layers
    m = randomise(L.ResnetBlockBigGANpp(L.get_act("swish"), 16, 32, temb_dim=24, down=True, dropout=0.0,
                                        fir=True), gen)
    x, temb = randn(gen, 2, 16, 8, 6), randn(gen, 2, 24)
    return ({"in.x": x, "in.temb": temb, **params_of(m), "out.y": run64(m, x, temb).float()},
            "ResnetBlockBigGANpp, FIR down, width change (Conv_2), time embedding, (x+h)/sqrt(2)",
            {"activation": "swish", "fir_kernel": "1,3,3,1", "down": "true", "conv_padding": "1 (3x3), 0 (1x1)",
             "group_norm": "min(C // 4, 32) groups, eps 1e-6"})


@case("resblock", "biggan_adagn")
def _(gen):
    L = ref().layers
    m = randomise(L.ResnetBlockBigGANpp(L.get_act("swish"), 16, 16, temb_dim=24, dropout=0.0, zemb_dim=12), gen)
    x, temb, zemb = randn(gen, 2, 16, 6, 6), randn(gen, 2, 24), randn(gen, 2, 12)
    return ({"in.x": x, "in.temb": temb, "in.zemb": zemb, **params_of(m),
             "out.y": run64(m, x, temb, zemb).float()},
            "DDGAN ResnetBlockBigGANpp_Adagn (both norms adaptive)",
            {"activation": "swish", "conv_padding": "1", "adagn": "GroupNorm without affine, min(C // 4, 32) groups, eps 1e-6"})


@case("nvae", "wn_conv_3x3")
def _(gen):
    m = randomise(ref().nvae.Conv2D(8, 12, 3, padding=1, bias=True), gen)
    x = randn(gen, 2, 8, 6, 6)
    return ({"in.x": x, **params_of(m), "out.y": run64(m, x).float()},
            "NVAE weight-normalised conv: kernel = exp(log_weight_norm) W / (||W|| + 1e-5), norm per output "
            "channel", {"padding": "1", "stride": "1"})


@case("nvae", "squeeze_excitation")
def _(gen):
    m = randomise(ref().nvae.SE(32), gen)
    x = randn(gen, 2, 32, 5, 5)
    # The module casts its gate input to fp32 (as the official code does under autocast); the expected
    # value is the same formula in float64.
    w1, b1, w2, b2 = (f64(p) for p in (m.se[0].weight, m.se[0].bias, m.se[2].weight, m.se[2].bias))
    gate = torch.sigmoid(F.linear(torch.relu(F.linear(f64(x).mean(dim=(2, 3)), w1, b1)), w2, b2))
    y = f64(x) * gate[:, :, None, None]
    return ({"in.x": x, **params_of(m), "out.y": y.float()},
            "NVAE squeeze-excitation: x * sigmoid(W2 relu(W1 mean_hw(x)))", {})


# --- whole networks at small configurations of the released architectures -------------------------

DDGAN_SMALL_ARCH = {"num_channels_dae": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "image_size": 16,
                    "n_mlp": 2, "z_emb_dim": 32, "nz": 8}

SMALL = {
    "cld": ("cifar10", {"n_channels": 16, "ch_mult": "1,2", "n_resblocks": 1, "image_size": 16,
                        "attn_resolutions": "8"}),
    "ddgan": ("cifar10", {"num_channels_dae": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "image_size": 16,
                          "n_mlp": 2, "z_emb_dim": 32, "nz": 8}),
    "lsgm": ("mnist", {"num_channels_dae": 16, "num_cell_per_scale_dae": 1, "num_input_channels": 8}),
}


def small_net(family, gen):
    R = ref()
    preset, over = SMALL[family]
    cfg = dict(R.ncsnpp.PRESETS[family][preset])
    cfg.update(over)
    return randomise(R.ncsnpp.build(family, cfg), gen, scale=0.2).eval(), cfg


def config_meta(cfg):
    return {"config": json.dumps(cfg, sort_keys=True)}


@case("network", "cld_small")
def _(gen):
    net, cfg = small_net("cld", gen)
    u, t = randn(gen, 3, 6, 16, 16), torch.tensor([0.05, 0.5, 0.99])
    return ({"in.u": u, "in.t": t, **params_of(net), "out.alpha": run64(net, u, t).float()},
            "CLD NCSN++ (CIFAR-10 architecture, small): alpha(u = [x; v], t)", config_meta(cfg))


@case("network", "ddgan_small")
def _(gen):
    net, cfg = small_net("ddgan", gen)
    x, t, z = randn(gen, 3, 3, 16, 16), torch.tensor([0, 2, 3]), randn(gen, 3, 8)
    y = run64(net, x, t, z)
    return ({"in.x_t": x, "in.t": t.float(), "in.z": z, **params_of(net), "out.x0": y.float()},
            "DDGAN generator (CIFAR-10 architecture, small): x0 = G(x_t, t index, z); t stored as float",
            config_meta(cfg))


@case("network", "lsgm_small")
def _(gen):
    net, cfg = small_net("lsgm", gen)
    z, t = randn(gen, 2, 8, 8, 8), torch.tensor([1e-3, 0.7])
    return ({"in.z_t": z, "in.t": t, **params_of(net), "out.eps": run64(net, z, t).float()},
            "LSGM latent NCSN++ (MNIST architecture, small): eps'(z_t, t); mixing_logit stored, not applied",
            config_meta(cfg))


def small_nvae(gen):
    R = ref()
    cfg = dict(R.nvae.PRESETS["cifar10"])
    cfg.update(num_channels_enc=16, num_channels_dec=16, num_groups_per_scale=2, num_latent_per_group=4,
               num_preprocess_cells=1, num_postprocess_cells=1, num_cell_per_cond_enc=1, num_cell_per_cond_dec=1)
    m = randomise(R.nvae.NVAE(cfg), gen, scale=0.2).eval()
    return m, cfg


def run64_method(module, method, *args):
    import copy

    m = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        conv = [[a.double() for a in x] if isinstance(x, list) else (x.double() if torch.is_tensor(x) else x)
                for x in args]
        return getattr(m, method)(*conv)


@case("network", "nvae_small_encode")
def _(gen):
    m, cfg = small_nvae(gen)
    x = torch.rand(2, 3, 32, 32, generator=gen, dtype=torch.float64).float() * 2 - 1
    shapes = m.group_shapes(2) if hasattr(m, "group_shapes") else None
    noise = [randn(gen, *sh) for sh in shapes]
    out = run64_method(m, "encode", x, noise)
    t = {"in.x": x, **{f"in.noise.{i}": n for i, n in enumerate(noise)}, **params_of(m)}
    for i in range(len(noise)):
        t[f"out.mu.{i}"] = out["mu"][i].float()
        t[f"out.log_sigma.{i}"] = out["log_sigma"][i].float()
        t[f"out.eps.{i}"] = out["eps"][i].float()
    return t, "NVAE encoder (CIFAR-10 architecture, small): per group mu, log_sigma, eps = mu + sigma noise", \
        config_meta(cfg)


@case("network", "nvae_small_decode")
def _(gen):
    m, cfg = small_nvae(gen)
    eps = [randn(gen, *sh) for sh in m.group_shapes(2)]
    logits = run64_method(m, "decode", eps)
    return ({**{f"in.eps.{i}": e for i, e in enumerate(eps)}, **params_of(m), "out.logits": logits.float()},
            "NVAE decoder (CIFAR-10 architecture, small): latent groups -> logistic-mixture logits",
            config_meta(cfg))


@case("network", "cld_small_positional")
def _(gen):
    # The CelebA-HQ architecture: no FIR (nearest/mean resampling), no input pyramid, sinusoidal t.
    R = ref()
    cfg = dict(R.ncsnpp.PRESETS["cld"]["celeba_paper"])
    cfg.update(n_channels=16, ch_mult="1,2", n_resblocks=1, image_size=16, attn_resolutions="8")
    net = randomise(R.ncsnpp.build("cld", cfg), gen, scale=0.2).eval()
    u, t = randn(gen, 3, 6, 16, 16), torch.tensor([0.02, 0.4, 1.0])
    return ({"in.u": u, "in.t": t, **params_of(net), "out.alpha": run64(net, u, t).float()},
            "CLD NCSN++ (CelebA-HQ architecture, small): no FIR, no input pyramid, sinusoidal t",
            config_meta(cfg))


@case("network", "ddgan_small_skips")
def _(gen):
    # Every option of the generator no released model uses but the official code runs: input-skip
    # pyramid with concatenation, output-skip pyramid, one AdaGN per block, Fourier time features,
    # uncentered input, no tanh.
    R = ref()
    cfg = dict(R.ncsnpp.PRESETS["ddgan"]["cifar10"])
    cfg.update(DDGAN_SMALL_ARCH, progressive="output_skip", progressive_input="input_skip",
               progressive_combine="cat", resblock_type="biggan_oneadagn", embedding_type="fourier",
               centered=False, not_use_tanh=True)
    net = randomise(R.ncsnpp.build("ddgan", cfg), gen, scale=0.2).eval()
    x, t, z = randn(gen, 3, 3, 16, 16), torch.tensor([1, 2, 3]), randn(gen, 3, 8)
    y = run64(net, x, t, z)
    return ({"in.x_t": x, "in.t": t.float(), "in.z": z, **params_of(net), "out.x0": y.float()},
            "DDGAN generator, small, with input_skip (cat), output_skip, biggan_oneadagn, Fourier t, "
            "uncentered input, no tanh", config_meta(cfg))


@case("network", "lsgm_small_fir_fourier")
def _(gen):
    # The CIFAR-10 score network's FIR resampling, with LSGM's random Fourier time features.
    R = ref()
    cfg = dict(R.ncsnpp.PRESETS["lsgm"]["cifar10"])
    cfg.update(num_channels_dae=16, num_scales_dae=2, num_cell_per_scale_dae=1, num_input_channels=6,
               embedding_type="fourier", embedding_dim=32, embedding_scale=16.0)
    net = randomise(R.ncsnpp.build("lsgm", cfg), gen, scale=0.2).eval()
    z, t = randn(gen, 2, 6, 16, 16), torch.tensor([0.01, 0.8])
    return ({"in.z_t": z, "in.t": t, **params_of(net), "out.eps": run64(net, z, t).float()},
            "LSGM latent NCSN++ (CIFAR-10 architecture, small): FIR resampling, random Fourier t",
            config_meta(cfg))


def nvae_variant(gen, preset, **over):
    R = ref()
    cfg = dict(R.nvae.PRESETS[preset])
    cfg.update(over)
    return randomise(R.nvae.NVAE(cfg), gen, scale=0.2).eval(), cfg


def nvae_encode_case(gen, m, cfg, batch, what):
    size, chans = m.input_size, (1 if m.crop_output else 3)
    x = torch.rand(batch, chans, size, size, generator=gen, dtype=torch.float64).float() * 2 - 1
    noise = [randn(gen, *sh) for sh in m.group_shapes(batch)]
    out = run64_method(m, "encode", x, noise)
    t = {"in.x": x, **{f"in.noise.{i}": n for i, n in enumerate(noise)}, **params_of(m)}
    for i in range(len(noise)):
        t[f"out.mu.{i}"] = out["mu"][i].float()
        t[f"out.log_sigma.{i}"] = out["log_sigma"][i].float()
        t[f"out.eps.{i}"] = out["eps"][i].float()
    return t, what, config_meta(cfg)


NVAE_MNIST = dict(num_channels_enc=8, num_channels_dec=8, num_preprocess_cells=2, num_postprocess_cells=2,
                  num_latent_per_group=4)
NVAE_MULTISCALE = dict(dataset="celeba_64", num_channels_enc=8, num_channels_dec=8, num_latent_scales=2,
                       num_groups_per_scale=2, num_latent_per_group=4, channel_mult=[1, 1, 2], num_nf=1,
                       num_preprocess_cells=1, num_postprocess_cells=1, num_cell_per_cond_enc=1,
                       num_cell_per_cond_dec=1, decoder_dist="normal")


@case("network", "nvae_mnist_encode")
def _(gen):
    m, cfg = nvae_variant(gen, "mnist", **NVAE_MNIST)
    return nvae_encode_case(gen, m, cfg, 3, "NVAE encoder (MNIST architecture, small): two pre-process "
                            "blocks, 1-channel input, batch 3")


@case("network", "nvae_mnist_decode")
def _(gen):
    m, cfg = nvae_variant(gen, "mnist", **NVAE_MNIST)
    eps = [randn(gen, *sh) for sh in m.group_shapes(3)]
    logits = run64_method(m, "decode", eps)
    return ({**{f"in.eps.{i}": e for i, e in enumerate(eps)}, **params_of(m), "out.logits": logits.float()},
            "NVAE decoder (MNIST architecture, small): MBConv cells (e6/e3, depthwise 5x5), nearest-up "
            "cells, Bernoulli logits", config_meta(cfg))


@case("network", "nvae_multiscale_encode")
def _(gen):
    m, cfg = nvae_variant(gen, "celeba256_qual", **NVAE_MULTISCALE)
    return nvae_encode_case(gen, m, cfg, 1, "NVAE encoder (CelebA-HQ architecture at 64x64, small): two "
                            "latent scales, input-skip pyramid, one AR flow pair per group")


@case("network", "nvae_multiscale_decode")
def _(gen):
    m, cfg = nvae_variant(gen, "celeba256_qual", **NVAE_MULTISCALE)
    shapes = m.group_shapes(1)
    given = m.num_groups_per_scale
    eps = [randn(gen, *sh) for sh in shapes[:given]]
    noise = [randn(gen, *sh) for sh in shapes[given:]]
    t = 0.7
    logits = run64_method(m, "decode", eps, noise, t)
    return ({**{f"in.eps.{i}": e for i, e in enumerate(eps)}, **{f"in.noise.{i}": n for i, n in enumerate(noise)},
             **params_of(m), "out.logits": logits.float()},
            "NVAE decoder (CelebA-HQ architecture at 64x64, small): top-scale groups given, lower-scale "
            "groups t * noise", {**config_meta(cfg), "t": str(t)})


# --- sampler steps with given noise ------------------------------------------------------------------


@case("sampler", "ddgan_posterior_step")
def _(gen):
    D = ref().ddgan_posterior
    coefs = D.PosteriorCoefficients.make(4)
    x0, xt, noise = randn(gen, 3, 3, 8, 8).clamp(-1, 1), randn(gen, 3, 3, 8, 8), randn(gen, 3, 3, 8, 8)
    i = torch.tensor([2, 1, 0])
    y = D.posterior_step(coefs, x0, xt, i, noise)
    return ({"in.x0_hat": x0, "in.x_t": xt, "in.noise": noise, "in.i": i.float(), "out.x": y.float(),
             "out.coef1": coefs.coef1, "out.coef2": coefs.coef2, "out.log_var": coefs.log_var_clipped},
            "DDGAN posterior draw, T=4 (float32 coefficients in the official order); i = 0 masks the noise",
            {"T": "4", "beta_min": "0.1", "beta_max": "20.0", "use_geometric": "false", "eps_small": "1e-3"})


def cld_meta(cfg):
    """The CLD SDE settings a re-implementation needs (CIFAR-10 configuration)."""
    return {"beta0": repr(cfg.beta0), "beta1": repr(cfg.beta1), "m_inv": repr(cfg.m_inv),
            "gamma": repr(cfg.gamma), "numerical_eps": repr(cfg.numerical_eps),
            "sampling_eps": repr(cfg.sampling_eps), "mixed_score": "true"}


def cld_setup(gen):
    C = ref().cld_sde
    cfg = C.CONFIGS["cifar10"]
    net, ncfg = small_net("cld", gen)
    return C, cfg, net, ncfg


@case("sampler", "cld_sscs_step")
def _(gen):
    C, cfg, net, ncfg = cld_setup(gen)
    u = torch.cat([randn(gen, 2, 3, 16, 16), randn(gen, 2, 3, 16, 16, scale=0.5)], 1)
    na, nb = randn(gen, 2, 6, 16, 16), randn(gen, 2, 6, 16, 16)
    tau, dt = 0.25, 0.01
    y = C.sscs_step(cfg, net, u, tau, dt, na, nb)
    return ({"in.u": u, "in.noise_a": na, "in.noise_b": nb, **params_of(net), "out.u": y.float()},
            "one SSCS step (A(dt/2) S(dt) A(dt/2)) of CLD CIFAR-10 with the small network", {
                "tau": repr(tau), "dt": repr(dt), **config_meta(ncfg), "sde": "cifar10", **cld_meta(cfg)})


@case("sampler", "cld_sscs_coefficients")
def _(gen):
    C = ref().cld_sde
    taus = torch.tensor([0.0, 0.3, 0.95, 0.998, 0.5, 0.1], dtype=torch.float64)
    dts = torch.tensor([0.001, 0.01, 0.0033, 0.0005, 0.05, 0.002], dtype=torch.float64)
    t = {"in.tau": taus, "in.dt_half": dts}
    meta = {}
    keys = ("e1", "cxx", "cxv", "cvx", "cvv", "l11", "l21", "l22")
    for name in ("cifar10", "celeba_post_paper"):
        cfg = C.CONFIGS[name]
        rows = []
        for tau, dt in zip(taus, dts):
            c = C.sscs_half_step_coefficients(cfg, tau, dt)
            rows.append(torch.stack([torch.as_tensor(c[k], dtype=torch.float64) for k in keys]))
        t[f"out.{name}"] = torch.stack(rows)
        meta[f"{name}.beta0"], meta[f"{name}.beta1"] = repr(cfg.beta0), repr(cfg.beta1)
        meta[f"{name}.m_inv"], meta[f"{name}.sscs_num_stab"] = repr(cfg.m_inv), repr(cfg.sscs_num_stab)
    meta["columns"] = ",".join(keys)
    meta["tolerance_rel_l2"] = "1e-13"
    return (t, "CLD SSCS analytic half-step coefficients in float64 for (tau, dt_half) pairs, two SDE configs; "
            "rows per pair, columns as in `columns`", meta)


@case("sampler", "cld_em_step")
def _(gen):
    C, cfg, net, ncfg = cld_setup(gen)
    u = torch.cat([randn(gen, 2, 3, 16, 16), randn(gen, 2, 3, 16, 16, scale=0.5)], 1)
    noise = randn(gen, 2, 6, 16, 16)
    tau, dt = 0.5, 0.02
    y, mean = C.em_step(cfg, net, u, tau, dt, noise)
    return ({"in.u": u, "in.noise": noise, **params_of(net), "out.u": y.float(), "out.u_mean": mean.float()},
            "one Euler-Maruyama step of the CLD reverse SDE (CIFAR-10 settings, small network)", {
                "tau": repr(tau), "dt": repr(dt), **config_meta(ncfg), "sde": "cifar10", **cld_meta(cfg)})


class LinearScore(torch.nn.Module):
    """A stand-in score network for ODE fixtures, simple to re-implement: out = a * in[:, :C] + b * t."""

    def __init__(self, channels, a=0.5, b=-0.25):
        super().__init__()
        self.c, self.a, self.b = channels, a, b

    def forward(self, x, t):
        t = t.reshape(-1, 1, 1, 1) if t.dim() > 0 else t
        return self.a * x[:, : self.c] + self.b * t


@case("sampler", "cld_ode_linear_score")
def _(gen):
    C = ref().cld_sde
    cfg = C.CONFIGS["cifar10"]
    u0 = C.prior_sample(cfg, randn(gen, 2, 3, 4, 4), randn(gen, 2, 3, 4, 4))
    x, v, nfe, _ = C.ode_sample(cfg, LinearScore(3), u0)
    return ({"in.u0": u0, "out.x": x.float(), "out.v": v.float()},
            "CLD probability-flow ODE (RK45, rtol=atol=1e-5) from the prior to t=eps plus the denoising step, "
            "with the stand-in score alpha = 0.5 x - 0.25 t", {"nfe": str(nfe), "sde": "cifar10",
                                                              "stand_in": "alpha = 0.5*x - 0.25*t",
                                                              "rtol": "1e-05", "atol": "1e-05", **cld_meta(cfg)})


@case("sampler", "lsgm_sde_coefficients")
def _(gen):
    S = ref().lsgm_sde
    t = torch.tensor([1e-6, 1e-5, 1e-3, 0.1, 0.37, 0.5, 0.9, 1.0], dtype=torch.float32)
    out = {"in.t": t}
    meta = {}
    for name in ("cifar10", "cifar10_nll"):
        sde = S.CONFIGS[name][0]
        out[f"out.{name}.var"] = sde.var(t).float()
        out[f"out.{name}.g2"] = sde.g2(t).float()
        meta[f"{name}.sde"] = repr(sde)
    return (out, "LSGM sigma^2(t) and g^2(t) in float32 (official constant rounding and op order) for the VP "
            "SDE (cifar10) and the geometric SDE (cifar10_nll)", meta)


@case("sampler", "lsgm_mixed_score")
def _(gen):
    S = ref().lsgm_sde
    sde = S.LSGMSDE()
    z = randn(gen, 2, 8, 4, 4)
    eps_pred = randn(gen, 2, 8, 4, 4)
    logit = randn(gen, 1, 8, 1, 1, scale=3.0)
    t = torch.tensor(0.3, dtype=torch.float32)
    y = S.mixed_eps(sde, lambda z_, t_: eps_pred, logit, z, t)
    return ({"in.z_t": z, "in.eps_pred": eps_pred, "in.mixing_logit": logit, "out.eps": y.float()},
            "LSGM mixed prediction (VP-SDE, t = 0.3), a = sigmoid(logit) per channel: "
            "(1 - a) * sqrt(var(t)) * z_t + a * eps_pred, var(t) = 1 - (1 - sigma2_0) exp(-beta_start t - "
            "(beta_end - beta_start) t^2 / 2), in fp32",
            {"t": "0.3", "sde_type": "vpsde", "beta_start": "0.1", "beta_end": "20.0", "sigma2_0": "0.0"})


# --- driver -----------------------------------------------------------------------------------------


def seed_of(name):
    """A stable per-case seed (independent of registration order)."""
    h = 0
    for ch in name.encode():
        h = (h * 131 + ch) % (2 ** 31 - 1)
    return h


def build(name):
    gen = torch.Generator().manual_seed(seed_of(name))
    op, fn = CASES[name]
    tensors, desc, extra = fn(gen)
    for k, v in tensors.items():
        # fp32 everywhere, except float64 coefficient tables of samplers whose official math is float64.
        assert v.dtype == torch.float32 or (v.dtype == torch.float64 and op == "sampler"), (name, k, v.dtype)
        assert torch.isfinite(v).all(), (name, k)
    meta = {
        "op": op,
        "case": name,
        "seed": str(seed_of(name)),
        "tolerance_rel_l2": TOL_F32,
        "layout": "NCHW",
        "torch": torch.__version__,
        "description": desc,
    }
    meta.update(extra)
    return {k: v.contiguous() for k, v in tensors.items()}, meta


def write_all(out_dir, only=None):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name in sorted(CASES):
        if only and not name.startswith(only):
            continue
        tensors, meta = build(name)
        save_safetensors(out_dir / f"{name}.safetensors", tensors, meta)
        manifest[name] = {
            "tensors": {k: {"shape": list(v.shape), "dtype": "F64" if v.dtype == torch.float64 else "F32"}
                        for k, v in sorted(tensors.items())},
            "metadata": meta,
        }
    if not only:
        with open(out_dir / "MANIFEST.json", "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.write("\n")
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--only", help="only cases whose name starts with this")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare bytes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write_all(tmp)
            committed = sorted(p.name for p in Path(args.out).glob("*") if p.is_file())
            fresh = sorted(os.listdir(tmp))
            bad = [n for n in fresh if n not in committed or not filecmp.cmp(Path(tmp) / n, Path(args.out) / n, shallow=False)]
            extra = [n for n in committed if n not in fresh and n != "README.md"]
            if bad or extra:
                print("fixtures differ from a fresh regeneration:", *bad, *(f"{n} (not generated)" for n in extra), sep="\n  ")
                return 1
            print(f"{len(fresh)} fixture files regenerate bit-identically (torch {torch.__version__})")
            return 0
    manifest = write_all(args.out, args.only)
    total = sum((Path(args.out) / f"{n}.safetensors").stat().st_size for n in manifest)
    print(f"wrote {len(manifest)} fixtures, {total / 1e6:.2f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
