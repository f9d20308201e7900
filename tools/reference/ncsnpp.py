"""NCSN++ as each official repository builds it for inference: one configurable U-Net.

    net = build("cld", PRESETS["cld"]["cifar10"])          # CLD-SGM score network  F(u, t)
    net = build("ddgan", PRESETS["ddgan"]["cifar10"])      # DDGAN generator        G(x, t_idx, z)
    net = build("lsgm", PRESETS["lsgm"]["cifar10"])        # LSGM latent score net  eps'(z, t)

The config is a plain dict with the official hyperparameter names of the family:
- cld:   the keys of CLD-SGM's configs/*.txt (`n_channels`, `ch_mult` "1,2,2,2", `n_resblocks`,
         `attn_resolutions` "16", `use_fir`, `embedding_type`, `image_channels`, `sde`, ...);
- ddgan: the argparse names of train_ddgan.py / test_ddgan.py (`num_channels_dae`, `ch_mult`,
         `num_res_blocks`, `nz`, `z_emb_dim`, `n_mlp`, `not_use_tanh`, ...);
- lsgm:  the argparse names of train_vada.py plus the VAE fields the network reads (`dataset`,
         `num_scales_dae`, `num_channels_dae`, `num_cell_per_scale_dae`, `embedding_dim`,
         `embedding_scale`, `num_preprocess_blocks`, `num_latent_scales`, `mixing_logit_init`) and
         `num_input_channels` (the official constructor's second argument: latent channels).

Module and parameter names equal the official state_dict keys (`all_modules.{i}.…`,
`z_transform.{i}.…` for DDGAN, `mixing_logit` for LSGM), in the same order, so
`net.load_state_dict(official.state_dict(), strict=True)` works.

Per-family conventions (specs cld.md §1.4/§3, ddgan.md §1.4/§3, lsgm.md §3/§4.2):
- CLD: input u = [x; v] (2·image_channels), output α_θ with image_channels channels and no
  scaling (the sampler forms −v/Σvv − ℓ_t·α_θ); t is the forward time; Fourier features of log t
  (CIFAR-10) or the float32 sinusoid of raw t (CelebA).
- DDGAN: t is the integer step index (sinusoid of float32(index)); z goes through PixelNorm and the
  mapping MLP; every residual block uses AdaGN driven by the mapping output; tanh output.
- LSGM: input/output are the latent channels (ε-prediction ε′); t is a float (a 0-d t is shared by
  the batch), embedded as sinusoid(1000·t). The learned mixing logit `mixing_logit` [1, C, 1, 1]
  is a parameter of this network (it is not applied inside forward, as in the official code;
  `mix()` applies it the way util/utils.py: get_mixed_prediction does).

Paths that do not run in the official code: progressive="residual" (output) needs the fused FIR
upsample-conv, which fails under PyTorch; it raises NotImplementedError here. CLD's
resblock_type="ddpm" fails to construct officially and raises here too. In CLD and DDGAN the
non-FIR layerspp.Upsample (output_skip or ddpm up-sampling with fir off) calls F.interpolate with
both a size and a scale factor and fails; here it is nearest-neighbour ×2 (what LSGM's copy does).
No released configuration reaches any of these.
"""
import types

import torch
import torch.nn as nn

from . import layers as L

FAMILIES = ("cld", "ddgan", "lsgm")


def _tuple(v, typ=int):
    """'1,2,2,2' / '16' / 16 / [1, 2] → tuple."""
    if isinstance(v, str):
        return tuple(typ(s) for s in v.split(",") if s.strip())
    if isinstance(v, (int, float)):
        return (typ(v),)
    return tuple(typ(s) for s in v)


# LSGM derives ch_mult and the latent size from the dataset name (util/utils.py).
def _lsgm_ch_mult(dataset, num_scales):
    if dataset in ("cifar10", "omniglot"):
        return (1, 1, 1)
    if dataset in ("celeba_256", "ffhq", "lsun_church_256"):
        return {3: (1, 1, 1), 4: (1, 2, 2, 2), 5: (1, 1, 2, 2, 2)}[num_scales]
    if dataset == "mnist":
        return (1, 1)
    raise ValueError(f"unknown LSGM dataset {dataset!r}")


def _lsgm_image_size(dataset):
    if dataset in ("mnist", "omniglot", "cifar10"):
        return 32
    if dataset.startswith(("celeba", "imagenet", "lsun")):
        return int(dataset.split("_")[-1])
    if dataset == "ffhq":
        return 256
    raise ValueError(f"unknown LSGM dataset {dataset!r}")


def _arch(family, cfg):
    """Normalise a family's official config into one architecture description."""
    c = dict(cfg)
    a = types.SimpleNamespace(family=family, zemb=None, use_tanh=False, centered=True,
                              mixed_prediction=False, conditional=True, act="swish",
                              init_scale=0.0, one_adagn=False)
    if family == "cld":
        a.nf = int(c["n_channels"])
        a.ch_mult = _tuple(c["ch_mult"])
        a.num_res_blocks = int(c["n_resblocks"])
        a.attn_resolutions = _tuple(c["attn_resolutions"])
        a.dropout = float(c.get("dropout", 0.1))
        a.resamp_with_conv = bool(c.get("resamp_with_conv", True))
        a.image_size = int(c["image_size"])
        a.fir = bool(c["use_fir"])
        a.fir_kernel = _tuple(c.get("fir_kernel", "1,3,3,1"))
        a.skip_rescale = bool(c["skip_rescale"])
        a.resblock_type = c["resblock_type"]
        a.progressive = c["progressive"]
        a.progressive_input = c["progressive_input"]
        a.combine = c.get("progressive_combine", "sum")
        a.embedding_type = c["embedding_type"]
        a.fourier_scale = float(c.get("fourier_scale", 16))
        a.act = c.get("nonlinearity", "swish")
        a.init_scale = float(c.get("init_scale", 0.0))
        ch = int(c["image_channels"])
        a.in_channels = 2 * ch if c.get("sde", "cld") == "cld" else ch
        a.out_channels = ch
        a.embed_dim = 2 * a.nf if a.embedding_type == "fourier" else a.nf
        a.temb_dim = 4 * a.nf
        if a.resblock_type == "ddpm":
            # The official CLD code passes `droput=` to the DDPM block and fails to construct.
            raise NotImplementedError("CLD with resblock_type=ddpm does not build in the official code")
    elif family == "ddgan":
        a.nf = int(c["num_channels_dae"])
        a.ch_mult = _tuple(c["ch_mult"])
        a.num_res_blocks = int(c["num_res_blocks"])
        a.attn_resolutions = _tuple(c["attn_resolutions"])
        a.dropout = float(c.get("dropout", 0.0))
        a.resamp_with_conv = bool(c.get("resamp_with_conv", True))
        a.image_size = int(c["image_size"])
        a.conditional = bool(c.get("conditional", True))
        a.fir = bool(c["fir"])
        a.fir_kernel = _tuple(c.get("fir_kernel", (1, 3, 3, 1)))
        a.skip_rescale = bool(c["skip_rescale"])
        rt = c["resblock_type"].lower()
        a.one_adagn = rt == "biggan_oneadagn"
        a.resblock_type = "biggan" if a.one_adagn else rt
        a.progressive = c["progressive"].lower()
        a.progressive_input = c["progressive_input"].lower()
        a.combine = c.get("progressive_combine", "sum").lower()
        a.embedding_type = c["embedding_type"].lower()
        a.fourier_scale = float(c.get("fourier_scale", 16.0))
        a.in_channels = a.out_channels = int(c["num_channels"])
        a.embed_dim = 2 * a.nf if a.embedding_type == "fourier" else a.nf
        a.temb_dim = 4 * a.nf
        a.zemb = (int(c["nz"]), int(c["z_emb_dim"]), int(c["n_mlp"]))
        a.centered = bool(c.get("centered", True))
        a.use_tanh = not bool(c.get("not_use_tanh", False))
    elif family == "lsgm":
        dataset = c["dataset"]
        num_scales = int(c["num_scales_dae"])
        a.nf = int(c["num_channels_dae"])
        a.ch_mult = _lsgm_ch_mult(dataset, num_scales)[:num_scales]
        a.num_res_blocks = int(c["num_cell_per_scale_dae"])
        a.attn_resolutions = (16,)
        a.dropout = float(c.get("dropout", 0.0))
        a.resamp_with_conv = True
        a.image_size = _lsgm_image_size(dataset) // 2 ** (
            int(c["num_preprocess_blocks"]) + int(c["num_latent_scales"]) - 1)
        a.fir = bool(c["fir"])
        a.fir_kernel = (1, 3, 3, 1)
        a.skip_rescale = True
        a.resblock_type = "biggan"
        a.progressive = c.get("progressive", "none")
        a.progressive_input = c.get("progressive_input", "none")
        a.combine = c.get("progressive_combine", "sum")
        a.embedding_type = c.get("embedding_type", "positional")
        a.embedding_scale = float(c.get("embedding_scale", 1.0))
        a.embed_dim = int(c.get("embedding_dim", 128))
        a.temb_dim = 4 * a.embed_dim
        a.in_channels = a.out_channels = int(c["num_input_channels"])
        a.mixed_prediction = bool(c.get("mixed_prediction", True))
        a.mixing_logit_init = float(c.get("mixing_logit_init", -3.0))
    else:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    if a.progressive == "residual":
        # Needs the fused FIR upsample-conv, which fails under PyTorch in all three repositories.
        raise NotImplementedError("progressive=residual (output) does not run in the official code")
    assert a.progressive in ("none", "output_skip")
    assert a.progressive_input in ("none", "input_skip", "residual")
    assert a.resblock_type in ("biggan", "ddpm")
    assert len(a.ch_mult) >= 1
    return a


class NCSNpp(nn.Module):
    """The NCSN++ U-Net of one family (see the module docstring)."""

    def __init__(self, family, config):
        super().__init__()
        a = self.arch = _arch(family, config)
        self.family = family
        self.act = L.get_act(a.act)
        nres = len(a.ch_mult)
        self.all_resolutions = [a.image_size // 2 ** i for i in range(nres)]
        attn = [r in a.attn_resolutions for r in self.all_resolutions]
        self.attn_levels = attn

        # LSGM keeps the mixing logit and (for Fourier features) the frozen projection ahead of
        # all_modules; the state_dict order follows.
        if family == "lsgm":
            if a.mixed_prediction:
                self.mixing_logit = nn.Parameter(a.mixing_logit_init * torch.ones(1, a.in_channels, 1, 1))
            else:
                self.mixing_logit = None
            if a.embedding_type == "positional":
                self.temb_fun = L.PositionalEmbedding(a.embed_dim, a.embedding_scale)
            else:
                self.temb_fun = L.RandomFourierEmbedding(a.embed_dim, a.embedding_scale)

        zdim = a.zemb[1] if a.zemb else None
        mods = []
        if family != "lsgm" and a.embedding_type == "fourier":
            mods.append(L.GaussianFourierProjection(a.nf, a.fourier_scale))
        if a.conditional:
            mods.append(L.dense(a.embed_dim, a.temb_dim))
            mods.append(L.dense(a.temb_dim, a.temb_dim))

        def resblock(in_ch, out_ch=None, up=False, down=False):
            if a.resblock_type == "ddpm":
                return L.ResnetBlockDDPMpp(self.act, in_ch, out_ch, temb_dim=a.temb_dim, dropout=a.dropout,
                                           skip_rescale=a.skip_rescale, init_scale=a.init_scale,
                                           zemb_dim=zdim)
            return L.ResnetBlockBigGANpp(self.act, in_ch, out_ch, temb_dim=a.temb_dim, up=up, down=down,
                                         dropout=a.dropout, fir=a.fir, fir_kernel=a.fir_kernel,
                                         skip_rescale=a.skip_rescale, init_scale=a.init_scale,
                                         zemb_dim=zdim, one_adagn=a.one_adagn)

        def attnblock(ch):
            return L.AttnBlockpp(ch, skip_rescale=a.skip_rescale, init_scale=a.init_scale)

        # Encoder.
        mods.append(L.conv3x3(a.in_channels, a.nf))
        skip_ch = [a.nf]
        in_ch = a.nf
        pyr_ch = a.in_channels
        for lvl in range(nres):
            for _ in range(a.num_res_blocks):
                out_ch = a.nf * a.ch_mult[lvl]
                mods.append(resblock(in_ch, out_ch))
                in_ch = out_ch
                if attn[lvl]:
                    mods.append(attnblock(in_ch))
                skip_ch.append(in_ch)
            if lvl != nres - 1:
                if a.resblock_type == "ddpm":
                    mods.append(L.Downsample(in_ch=in_ch, with_conv=a.resamp_with_conv, fir=a.fir,
                                             fir_kernel=a.fir_kernel))
                else:
                    mods.append(resblock(in_ch, down=True))
                if a.progressive_input == "input_skip":
                    mods.append(L.Combine(pyr_ch, in_ch, method=a.combine))
                    if a.combine == "cat":
                        in_ch *= 2
                elif a.progressive_input == "residual":
                    mods.append(L.Downsample(in_ch=pyr_ch, out_ch=in_ch, with_conv=True, fir=a.fir,
                                             fir_kernel=a.fir_kernel))
                    pyr_ch = in_ch
                skip_ch.append(in_ch)

        # Middle.
        in_ch = skip_ch[-1]
        mods += [resblock(in_ch), attnblock(in_ch), resblock(in_ch)]

        # Decoder.
        for lvl in reversed(range(nres)):
            for _ in range(a.num_res_blocks + 1):
                out_ch = a.nf * a.ch_mult[lvl]
                mods.append(resblock(in_ch + skip_ch.pop(), out_ch))
                in_ch = out_ch
            if attn[lvl]:
                mods.append(attnblock(in_ch))
            if a.progressive == "output_skip":
                mods.append(L.group_norm(in_ch))
                mods.append(L.conv3x3(in_ch, a.out_channels, init_scale=a.init_scale))
            if lvl != 0:
                if a.resblock_type == "ddpm":
                    mods.append(L.Upsample(in_ch=in_ch, with_conv=a.resamp_with_conv, fir=a.fir,
                                           fir_kernel=a.fir_kernel))
                else:
                    mods.append(resblock(in_ch, up=True))
        assert not skip_ch

        if a.progressive != "output_skip":
            mods.append(L.group_norm(in_ch))
            mods.append(L.conv3x3(in_ch, a.out_channels, init_scale=a.init_scale))
        self.all_modules = nn.ModuleList(mods)

        if a.zemb:
            nz, z_emb_dim, n_mlp = a.zemb
            self.z_transform = L.z_mapping(nz, z_emb_dim, n_mlp)

    # ------------------------------------------------------------------------------------------

    def _time_embedding(self, t, it, dtype):
        a = self.arch
        if self.family == "lsgm":
            if t.dim() == 0:
                t = t.expand(1)
            emb = self.temb_fun(t)
        elif a.embedding_type == "fourier":
            emb = next(it)(torch.log(t))
        else:
            emb = L.timestep_embedding(t, a.nf)  # float32, as the official code computes it
        if not a.conditional:
            return None
        emb = emb.to(dtype)
        temb = next(it)(emb)
        return next(it)(self.act(temb))

    def forward(self, x, t, z=None):
        """cld: (u [B, 2C, H, W], t [B] forward time) → α_θ [B, C, H, W].
        ddgan: (x [B, C, H, W], t [B] integer step index, z [B, nz]) → tanh image.
        lsgm: (z [B, C, H, W], t [B] or 0-d float) → ε′ [B, C, H, W]."""
        a = self.arch
        assert x.shape[-1] == a.image_size and x.shape[-2] == a.image_size, (
            f"this network is built for {a.image_size}x{a.image_size} inputs")
        zemb = None
        if a.zemb:
            zemb = self.z_transform(z)
        it = iter(self.all_modules)
        temb = self._time_embedding(t, it, x.dtype)
        if not a.centered:
            x = 2 * x - 1.0
        nres = len(a.ch_mult)

        def block(h):
            return next(it)(h, temb, zemb)

        pyr = x
        hs = [next(it)(x)]
        for lvl in range(nres):
            for _ in range(a.num_res_blocks):
                h = block(hs[-1])
                if self.attn_levels[lvl]:
                    h = next(it)(h)
                hs.append(h)
            if lvl != nres - 1:
                h = next(it)(hs[-1]) if a.resblock_type == "ddpm" else block(hs[-1])
                if a.progressive_input == "input_skip":
                    pyr = (L.fir_downsample_2d(pyr, a.fir_kernel) if a.fir
                           else L.naive_downsample_2d(pyr))
                    h = next(it)(pyr, h)
                elif a.progressive_input == "residual":
                    pyr = next(it)(pyr)
                    pyr = (pyr + h) / L.SQRT2 if a.skip_rescale else pyr + h
                    h = pyr
                hs.append(h)

        h = block(hs[-1])
        h = next(it)(h)
        h = block(h)

        out_pyr = None
        for lvl in reversed(range(nres)):
            for _ in range(a.num_res_blocks + 1):
                h = block(torch.cat([h, hs.pop()], dim=1))
            if self.attn_levels[lvl]:
                h = next(it)(h)
            if a.progressive == "output_skip":
                gn, conv = next(it), next(it)
                p = conv(self.act(gn(h)))
                if out_pyr is None:
                    out_pyr = p
                else:
                    up = (L.fir_upsample_2d(out_pyr, a.fir_kernel) if a.fir
                          else L.naive_upsample_2d(out_pyr))
                    out_pyr = up + p
            if lvl != 0:
                h = next(it)(h) if a.resblock_type == "ddpm" else block(h)
        assert not hs

        if a.progressive == "output_skip":
            h = out_pyr
        else:
            gn, conv = next(it), next(it)
            h = conv(self.act(gn(h)))
        assert next(it, None) is None
        return torch.tanh(h) if a.use_tanh else h

    def mix(self, eps_pred, mixing_component):
        """LSGM mixed prediction: (1 − σ(logit))·mixing_component + σ(logit)·ε′, per channel, where
        mixing_component is σ(t)·z for the VP SDEs (lsgm.md §4.2)."""
        if self.family != "lsgm" or self.mixing_logit is None:
            return eps_pred
        coeff = torch.sigmoid(self.mixing_logit)
        return (1 - coeff) * mixing_component + coeff * eps_pred


def build(family, config):
    """The NCSN++ network of `family` ("cld", "ddgan", "lsgm") for an official config dict."""
    return NCSNpp(family, config)


# ----------------------------------------------------------------------------------------------
# Released configurations
# ----------------------------------------------------------------------------------------------

# CLD-SGM configs/default_*.txt + specific_*.txt (network fields only, official value types: the
# list-valued fields are strings, as main.py passes them).
_CLD_COMMON = dict(
    name="ncsnpp", normalization="GroupNorm", nonlinearity="swish", n_channels=128,
    attn_resolutions="16", resamp_with_conv=True, fir_kernel="1,3,3,1", skip_rescale=True,
    resblock_type="biggan", progressive="none", progressive_combine="sum", attention_type="ddpm",
    init_scale=0.0, fourier_scale=16, conv_size=3, mixed_score=True, dropout=0.1, sde="cld",
    image_channels=3,
)
_CLD = {
    "cifar10": dict(_CLD_COMMON, image_size=32, ch_mult="1,2,2,2", use_fir=True,
                    progressive_input="residual", embedding_type="fourier", n_resblocks=8),
    "celeba_paper": dict(_CLD_COMMON, image_size=256, ch_mult="1,1,2,2,2,2,2", use_fir=False,
                         progressive_input="none", embedding_type="positional", n_resblocks=2),
    "celeba_post_paper": dict(_CLD_COMMON, image_size=256, ch_mult="1,1,2,2,2,2,2", use_fir=False,
                              progressive_input="none", embedding_type="positional", n_resblocks=4),
}

# DDGAN: test_ddgan.py argparse defaults + the readme command lines.
_DDGAN_COMMON = dict(
    num_channels=3, centered=True, num_res_blocks=2, attn_resolutions=(16,), dropout=0.0,
    resamp_with_conv=True, conditional=True, fir=True, fir_kernel=[1, 3, 3, 1], skip_rescale=True,
    resblock_type="biggan", progressive="none", progressive_input="residual",
    progressive_combine="sum", embedding_type="positional", fourier_scale=16.0, not_use_tanh=False,
    nz=100, z_emb_dim=256,
)
_DDGAN = {
    "cifar10": dict(_DDGAN_COMMON, image_size=32, num_channels_dae=128, ch_mult=[1, 2, 2, 2], n_mlp=4,
                    num_timesteps=4),
    "celeba_256": dict(_DDGAN_COMMON, image_size=256, num_channels_dae=64, ch_mult=[1, 1, 2, 2, 4, 4],
                       n_mlp=3, num_timesteps=2),
    "lsun": dict(_DDGAN_COMMON, image_size=256, num_channels_dae=64, ch_mult=[1, 1, 2, 2, 4, 4],
                 n_mlp=3, num_timesteps=4),  # no checkpoint released (issue #3)
}

# LSGM: README train_vada.py commands + argparse defaults; the VAE fields set the latent size.
_LSGM_COMMON = dict(
    dae_arch="ncsnpp", embedding_type="positional", embedding_scale=1000.0, embedding_dim=128,
    dropout=0.2, progressive="none", progressive_input="none", progressive_combine="sum",
    mixed_prediction=True,
)
_LSGM = {
    # "balanced", "best FID" and "best NLL" share this score network.
    "cifar10": dict(_LSGM_COMMON, dataset="cifar10", num_channels_dae=512, num_scales_dae=3,
                    num_cell_per_scale_dae=8, fir=True, mixing_logit_init=-3.0,
                    num_preprocess_blocks=1, num_latent_scales=1, num_input_channels=180),
    "mnist": dict(_LSGM_COMMON, dataset="mnist", num_channels_dae=256, num_scales_dae=2,
                  num_cell_per_scale_dae=8, fir=False, mixing_logit_init=-6.0,
                  num_preprocess_blocks=2, num_latent_scales=1, num_input_channels=40),
    "celeba256_quant": dict(_LSGM_COMMON, dataset="celeba_256", num_channels_dae=256, num_scales_dae=4,
                             num_cell_per_scale_dae=8, fir=True, mixing_logit_init=-6.0,
                             num_preprocess_blocks=1, num_latent_scales=3, num_input_channels=160),
    "celeba256_qual": dict(_LSGM_COMMON, dataset="celeba_256", num_channels_dae=320, num_scales_dae=5,
                            num_cell_per_scale_dae=8, fir=True, mixing_logit_init=-6.0,
                            num_preprocess_blocks=1, num_latent_scales=2, num_input_channels=200),
}

# The best-NLL CIFAR-10 model pairs its own VAE (reference.nvae.PRESETS["cifar10_nll"], 4 groups x 45
# channels) with the same score network; preset names follow the LSGM models (as in nvae and lsgm_sde).
_LSGM["cifar10_nll"] = dict(_LSGM["cifar10"])

PRESETS = {"cld": _CLD, "ddgan": _DDGAN, "lsgm": _LSGM}
