"""LSGM's NVAE (encoder and decoder towers) for inference, in plain PyTorch.

Written from the LSGM specification (§2 of specs/lsgm.md) and checked against NVlabs/LSGM `nvae.py`.
Module and parameter names equal the official `state_dict` keys, so the `vae_state_dict` of an
official checkpoint loads with `strict=True` (BN running statistics and the `weight_normalized`
alias keys of the non-weight-normalised convs included).

What is here:

- `NVAE(args)`: built from the official argument names (a dict or a namespace, see `PRESETS`).
- `NVAE.encode(x, noise)`: image in [-1, 1] -> per latent group the posterior mean, log-sigma and
  the sample eps = mu + sigma * noise (then the AR flow cells when `num_nf > 0`). The noise is
  injected (one tensor per group); the official code draws it internally.
- `NVAE.decode(eps_groups, noise=None, t=1.0)`: latent groups -> output logits. Groups that are
  not given (the lower scales of the multi-scale models, which LSGM's score model does not cover)
  are t * noise, exactly what the official `NVAE.sample` draws from N(0, t^2 I).
- `NVAE.sample_from_sgm(z, noise, t)`: the LSGM sampling path: the score model's latent
  (B x latent_structure()[0] x H x W, the top scale) is split into groups along channels, the
  remaining groups come from the injected noise, and the image is the mean of the output
  distribution, clamped to [-1, 1] and mapped to [0, 1].
- `output_distribution(logits)`: DiscMixLogistic / Bernoulli / Normal / DiscLogistic parameters,
  with `mean()` (what the official sampler uses) and, for the logistic mixture, `sample(t, u_mix,
  u_logistic)` with injected uniforms.

Batch norm uses running statistics by default. `set_bn_batch_stats(True)` switches every BN to
batch statistics (the official CelebA-HQ FID evaluation runs the VAE in train mode,
`--vae_train_mode`); running statistics are then left untouched, unlike in the official train mode.
"""
import math
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.05


# ---------------------------------------------------------------------------------------------------
# Configurations of the released LSGM models (VAE fields of the README training commands; the rest
# are argparse defaults of train_vae.py).

_COMMON = dict(
    num_x_bits=8,
    log_sig_q_scale=5.0,
    decoder_dist="dml",
    progressive_input_vae="none",
    use_se=True,
)

PRESETS = {
    # "balanced" and "best FID" share the architecture (they differ only in KL annealing).
    "cifar10": dict(
        _COMMON, dataset="cifar10", arch_instance="res_bnswish", num_channels_enc=128,
        num_channels_dec=128, num_preprocess_blocks=1, num_preprocess_cells=2, num_postprocess_blocks=1,
        num_postprocess_cells=2, num_cell_per_cond_enc=2, num_cell_per_cond_dec=2, num_latent_scales=1,
        num_groups_per_scale=20, num_latent_per_group=9, num_nf=0, channel_mult=[1, 2],
    ),
    "cifar10_nll": dict(
        _COMMON, dataset="cifar10", arch_instance="res_bnswish", num_channels_enc=256,
        num_channels_dec=256, num_preprocess_blocks=1, num_preprocess_cells=3, num_postprocess_blocks=1,
        num_postprocess_cells=3, num_cell_per_cond_enc=3, num_cell_per_cond_dec=3, num_latent_scales=1,
        num_groups_per_scale=4, num_latent_per_group=45, num_nf=2, channel_mult=[1, 2],
    ),
    "mnist": dict(
        _COMMON, dataset="mnist", arch_instance="res_mbconv", num_channels_enc=64, num_channels_dec=64,
        num_preprocess_blocks=2, num_preprocess_cells=3, num_postprocess_blocks=2, num_postprocess_cells=3,
        num_cell_per_cond_enc=1, num_cell_per_cond_dec=1, num_latent_scales=1, num_groups_per_scale=2,
        num_latent_per_group=20, num_nf=0, channel_mult=[1, 2, 2], decoder_dist="bin",
    ),
    "celeba256_quant": dict(
        _COMMON, dataset="celeba_256", arch_instance="res_mbconv", num_channels_enc=64,
        num_channels_dec=64, num_preprocess_blocks=1, num_preprocess_cells=2, num_postprocess_blocks=1,
        num_postprocess_cells=2, num_cell_per_cond_enc=2, num_cell_per_cond_dec=2, num_latent_scales=3,
        num_groups_per_scale=8, num_latent_per_group=20, num_nf=2, channel_mult=[1, 1, 2, 4],
        num_x_bits=5, progressive_input_vae="input_skip",
    ),
    "celeba256_qual": dict(
        _COMMON, dataset="celeba_256", arch_instance="res_mbconv", num_channels_enc=64,
        num_channels_dec=64, num_preprocess_blocks=1, num_preprocess_cells=2, num_postprocess_blocks=1,
        num_postprocess_cells=2, num_cell_per_cond_enc=2, num_cell_per_cond_dec=2, num_latent_scales=2,
        num_groups_per_scale=10, num_latent_per_group=20, num_nf=2, channel_mult=[1, 1, 2],
        num_x_bits=5, progressive_input_vae="input_skip",
    ),
}


def image_size(dataset):
    """Network input size: MNIST/OMNIGLOT digits are padded 28 -> 32."""
    if dataset in ("mnist", "omniglot", "cifar10"):
        return 32
    if dataset == "ffhq":
        return 256
    if dataset.startswith(("celeba", "imagenet", "lsun")):
        return int(dataset.rsplit("_", 1)[-1])
    raise NotImplementedError(dataset)


def arch_cells(arch_instance, use_se):
    """Conv-branch ops per cell type (same table as the official `get_arch_cells`)."""
    enc = ["res_bnswish", "res_bnswish"]
    if arch_instance == "res_bnswish":
        dec, post = enc, enc
    elif arch_instance == "res_bnswish2":
        enc = dec = post = ["res_bnswish_x2"]
    elif arch_instance == "res_mbconv":
        dec, post = ["mconv_e6k5g0"], ["mconv_e3k5g0"]
    else:
        raise NotImplementedError(f"arch_instance {arch_instance!r} (attention variants are not supported)")
    table = {}
    for kind, ops in (("normal_enc", enc), ("down_enc", enc), ("normal_pre", enc), ("down_pre", enc),
                      ("normal_dec", dec), ("up_dec", dec), ("normal_post", post), ("up_post", post)):
        table[kind] = {"conv_branch": list(ops), "se": bool(use_se)}
    return table


# ---------------------------------------------------------------------------------------------------
# Primitives


def swish(x):
    return x * torch.sigmoid(x)


def soft_clamp(x, a):
    return torch.tanh(x / a) * a


def weight_norm(weight, log_weight_norm):
    """exp(g[o]) * W[o] / (||W[o]||_2 + 1e-5), the norm over (Ci/groups, kh, kw)."""
    norm = weight.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt()
    return torch.exp(log_weight_norm) * weight / (norm + 1e-5)


class Conv2D(nn.Module):
    """Conv with padding/stride/groups. With `wn=True` the kernel is weight-normalised through the
    parameter `log_weight_norm` [Co,1,1,1]; with `wn=False` the raw `weight` is used and, like the
    official module, it is also registered as `weight_normalized` (a second key, same tensor)."""

    def __init__(self, cin, cout, k, stride=1, padding=0, groups=1, bias=False, wn=True):
        super().__init__()
        self.stride, self.padding, self.groups = stride, padding, groups
        self.weight = nn.Parameter(torch.randn(cout, cin // groups, k, k) / math.sqrt(cin // groups * k * k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.wn = wn
        if wn:
            self.log_weight_norm = nn.Parameter(torch.zeros(cout, 1, 1, 1))
        else:
            self.weight_normalized = self.weight

    def kernel(self):
        return weight_norm(self.weight, self.log_weight_norm) if self.wn else self.weight

    def forward(self, x):
        return F.conv2d(x, self.kernel(), self.bias, self.stride, self.padding, 1, self.groups)


class BatchNorm(nn.Module):
    """BN with the keys of torch's _BatchNorm. Running statistics unless `batch_stats` is set."""

    def __init__(self, c, act=False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.act = act
        self.batch_stats = False

    def forward(self, x):
        if self.batch_stats:
            y = F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, BN_EPS)
        else:
            y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, BN_EPS)
        return swish(y) if self.act else y


def BNSwish(c):
    return BatchNorm(c, act=True)


class WrappedBN(nn.Module):
    """Plain BN stored under `.bn` (keys `<name>.bn.weight`, ...)."""

    def __init__(self, c):
        super().__init__()
        self.bn = BatchNorm(c)

    def forward(self, x):
        return self.bn(x)


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        hidden = max(c // 16, 4)
        self.se = nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, c), nn.Sigmoid())

    def forward(self, x):
        # At least fp32, as the official code runs it under fp16 autocast; float64 stays float64.
        gate = self.se(x.mean(dim=(2, 3)).to(torch.promote_types(x.dtype, torch.float32)))
        return x * gate[:, :, None, None]


def upsample_nearest(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class NearestUp(nn.Module):
    def forward(self, x):
        return upsample_nearest(x)


class BilinearUp(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class BNSwishConv(nn.Module):
    """bn_act -> (nearest x2 for up cells) -> 3x3 WN conv with bias (stride 2 for down cells)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.up = stride == -1
        self.bn_act = BNSwish(cin)
        self.conv_0 = Conv2D(cin, cout, 3, stride=abs(stride), padding=1, bias=True)

    def forward(self, x):
        h = self.bn_act(x)
        if self.up:
            h = upsample_nearest(h)
        return self.conv_0(h)


class BNSwishConvX2(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.up = stride == -1
        self.bn_act_0 = BNSwish(cin)
        self.conv_0 = Conv2D(cin, cout, 3, stride=abs(stride), padding=1, bias=False, wn=False)
        self.bn_act_1 = BNSwish(cout)
        self.conv_1 = Conv2D(cout, cout, 3, padding=1, bias=True)

    def forward(self, x):
        h = self.bn_act_0(x)
        if self.up:
            h = upsample_nearest(h)
        return self.conv_1(self.bn_act_1(self.conv_0(h)))


class ConvBNSwish(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Sequential(
            Conv2D(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False, wn=False),
            BNSwish(cout),
        )

    def forward(self, x):
        return self.conv(x)


class MBConv(nn.Module):
    """Inverted residual: [nearest x2] BN, 1x1 expand + BN-Swish, depthwise kxk + BN-Swish, 1x1 project, BN."""

    def __init__(self, cin, cout, stride, ex, k=5):
        super().__init__()
        hidden = int(round(cin * ex))
        layers = [NearestUp()] if stride == -1 else []
        layers += [
            WrappedBN(cin),
            ConvBNSwish(cin, hidden, 1),
            ConvBNSwish(hidden, hidden, k, stride=abs(stride), groups=hidden),
            Conv2D(hidden, cout, 1, bias=False, wn=False),
            WrappedBN(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return self.conv(x)


def make_op(name, cin, cout, stride):
    if name == "res_bnswish":
        return BNSwishConv(cin, cout, stride)
    if name == "res_bnswish_x2":
        return BNSwishConvX2(cin, cout, stride)
    if name == "mconv_e6k5g0":
        return MBConv(cin, cout, stride, ex=6)
    if name == "mconv_e3k5g0":
        return MBConv(cin, cout, stride, ex=3)
    raise NotImplementedError(name)


class FactorizedReduce(nn.Module):
    """Stride-2 skip: swish, four 1x1 stride-2 WN convs on the input shifted by (0,0), (1,1), (0,1), (1,0)."""

    def __init__(self, cin, cout):
        super().__init__()
        q = cout // 4
        self.conv_1 = Conv2D(cin, q, 1, stride=2, bias=True)
        self.conv_2 = Conv2D(cin, q, 1, stride=2, bias=True)
        self.conv_3 = Conv2D(cin, q, 1, stride=2, bias=True)
        self.conv_4 = Conv2D(cin, cout - 3 * q, 1, stride=2, bias=True)

    def forward(self, x):
        a = swish(x)
        return torch.cat([self.conv_1(a), self.conv_2(a[:, :, 1:, 1:]),
                          self.conv_3(a[:, :, :, 1:]), self.conv_4(a[:, :, 1:, :])], dim=1)


def cell_stride(cell_type):
    if cell_type.startswith(("normal", "combiner")):
        return 1
    if cell_type.startswith("down"):
        return 2
    if cell_type.startswith("up"):
        return -1
    raise NotImplementedError(cell_type)


class Cell(nn.Module):
    """Residual cell: skip(x) + 0.1 * SE(ops(x))."""

    def __init__(self, cin, cout, cell_type, arch):
        super().__init__()
        self.cell_type = cell_type
        stride = cell_stride(cell_type)
        if stride == 1:
            self.skip = nn.Identity()
        elif stride == 2:
            self.skip = FactorizedReduce(cin, cout)
        else:
            self.skip = nn.Sequential(BilinearUp(), Conv2D(cin, cout, 1, bias=False))
        self._ops = nn.ModuleList(
            make_op(name, cin if i == 0 else cout, cout, stride if i == 0 else 1)
            for i, name in enumerate(arch["conv_branch"])
        )
        self.use_se = arch["se"]
        if self.use_se:
            self.se = SE(cout)

    def forward(self, x):
        h = x
        for op in self._ops:
            h = op(h)
        if self.use_se:
            h = self.se(h)
        return self.skip(x) + 0.1 * h


class EncCombinerCell(nn.Module):
    """enc_feature + 1x1 WN conv(dec_state)."""

    def __init__(self, c_enc, c_dec):
        super().__init__()
        self.cell_type = "combiner_enc"
        self.conv = Conv2D(c_dec, c_enc, 1, bias=True)

    def forward(self, enc, dec):
        return enc + self.conv(dec)


class DecCombinerCell(nn.Module):
    """1x1 WN conv(concat[state, z])."""

    def __init__(self, c, cz):
        super().__init__()
        self.cell_type = "combiner_dec"
        self.conv = Conv2D(c + cz, c, 1, bias=True)

    def forward(self, s, z):
        return self.conv(torch.cat([s, z], dim=1))


class InputSkipCombinerCell(nn.Module):
    """Progressive input: pyramid' = BNSwishConv3x3/2(pyramid); s + pyramid'."""

    def __init__(self, c_pyr, cout):
        super().__init__()
        self.cell_type = "combiner_enc"
        self.conv = BNSwishConv(c_pyr, cout, 2)

    def forward(self, s, pyramid):
        p = self.conv(pyramid)
        return s + p, p


# ---------------------------------------------------------------------------------------------------
# Autoregressive flow cells (encoder only)


def ar_mask(cout, cin, groups, k, zero_diag, mirror):
    """Causal kernel mask: rows below the centre and the centre row's right half are cut; the centre tap
    carries the channel order (block-diagonal for full convs, 1 / 0 per channel for depthwise)."""
    c = (k - 1) // 2
    m = torch.zeros(cout, cin // groups, k, k)
    m[:, :, :c, :] = 1.0
    m[:, :, c, :c] = 1.0
    if groups == 1:
        o = torch.arange(cout)[:, None]
        j = torch.arange(cin)[None, :]
        if cout >= cin:
            blk = o // (cout // cin)
            centre = (j < blk) if zero_diag else (j <= blk)
        else:
            r = cin // cout
            centre = (j < o * r) if zero_diag else (j < (o + 1) * r)
        m[:, :, c, c] = centre.float()
    else:
        assert groups == cin
        m[:, :, c, c] = 0.0 if zero_diag else 1.0
    if mirror:
        m = torch.flip(m, dims=(2, 3))
    return m


class ARConv2d(nn.Module):
    """Masked conv, weight-normalised after masking."""

    def __init__(self, cin, cout, k, padding=0, groups=1, bias=False, zero_diag=False, mirror=False):
        super().__init__()
        self.padding, self.groups = padding, groups
        self.weight = nn.Parameter(torch.randn(cout, cin // groups, k, k) / math.sqrt(cin // groups * k * k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.log_weight_norm = nn.Parameter(torch.zeros(cout, 1, 1, 1))
        self.register_buffer("mask", ar_mask(cout, cin, groups, k, zero_diag, mirror), persistent=False)

    def forward(self, x):
        w = weight_norm(self.weight * self.mask, self.log_weight_norm)
        return F.conv2d(x, w, self.bias, 1, self.padding, 1, self.groups)


class ARInvertedResidual(nn.Module):
    def __init__(self, nz, ex=6, k=5, mirror=False):
        super().__init__()
        hidden = nz * ex
        self.hidden_dim = hidden
        self.convz = nn.Sequential(
            ARConv2d(nz, hidden, 3, padding=1, zero_diag=True, mirror=mirror),
            nn.ELU(),
            ARConv2d(hidden, hidden, k, padding=(k - 1) // 2, groups=hidden, zero_diag=False, mirror=mirror),
        )

    def forward(self, z):
        return self.convz(z)


class ARELUConv(nn.Module):
    def __init__(self, cin, cout, mirror):
        super().__init__()
        self.conv_0 = ARConv2d(cin, cout, 1, bias=True, zero_diag=False, mirror=mirror)

    def forward(self, x):
        return self.conv_0(F.elu(x))


class CellAR(nn.Module):
    """z <- z - mu(z), mu autoregressive in (channel, raster) order; log-det 0."""

    def __init__(self, nz, mirror):
        super().__init__()
        self.conv = ARInvertedResidual(nz, mirror=mirror)
        self.mu = ARELUConv(self.conv.hidden_dim, nz, mirror)

    def forward(self, z):
        return z - self.mu(self.conv(z))


class PairedCellAR(nn.Module):
    def __init__(self, nz):
        super().__init__()
        self.cell1 = CellAR(nz, mirror=False)
        self.cell2 = CellAR(nz, mirror=True)

    def forward(self, z):
        return self.cell2(self.cell1(z))


# ---------------------------------------------------------------------------------------------------
# Output distributions


class DiscMixLogistic:
    """Discretised mixture of logistics over RGB (M components, 10*M logit channels)."""

    def __init__(self, logits, num_mix=10, num_bits=8):
        b, _, h, w = logits.shape
        self.num_mix = num_mix
        self.logit_probs = logits[:, :num_mix]                                  # B, M, H, W
        rest = logits[:, num_mix:].reshape(b, 3, 3 * num_mix, h, w)
        self.means = rest[:, :, :num_mix]                                        # B, 3, M, H, W
        self.log_scales = torch.clamp(rest[:, :, num_mix:2 * num_mix], min=-7.0)
        self.coeffs = torch.tanh(rest[:, :, 2 * num_mix:])
        self.max_val = 2.0 ** num_bits - 1

    @staticmethod
    def _mix_colours(mu, coeffs):
        r = torch.clamp(mu[:, 0], -1.0, 1.0)
        g = torch.clamp(mu[:, 1] + coeffs[:, 0] * r, -1.0, 1.0)
        b = torch.clamp(mu[:, 2] + coeffs[:, 1] * r + coeffs[:, 2] * g, -1.0, 1.0)
        return torch.stack([r, g, b], dim=1)

    def mean(self):
        w = torch.softmax(self.logit_probs, dim=1).unsqueeze(1)                # B, 1, M, H, W
        return self._mix_colours((self.means * w).sum(2), (self.coeffs * w).sum(2))

    def sample(self, u_mix, u_logistic, t=1.0):
        """u_mix [B,M,H,W] and u_logistic [B,3,H,W]: uniforms in [1e-5, 1-1e-5] (the official draws)."""
        gumbel = -torch.log(-torch.log(u_mix))
        k = torch.argmax(self.logit_probs / t + gumbel, dim=1)                   # B, H, W
        sel = F.one_hot(k, self.num_mix).permute(0, 3, 1, 2).unsqueeze(1).to(self.means.dtype)
        mu = (self.means * sel).sum(2)
        ls = (self.log_scales * sel).sum(2)
        co = (self.coeffs * sel).sum(2)
        x = mu + torch.exp(ls) * t * (torch.log(u_logistic) - torch.log(1.0 - u_logistic))
        return self._mix_colours(x, co)


class Bernoulli:
    def __init__(self, logits):
        self.logits = logits

    def mean(self):
        """Mean mapped to [-1, 1]."""
        return 2.0 * torch.sigmoid(self.logits) - 1.0


class Normal:
    def __init__(self, mu, log_sigma):
        self.mu, self.log_sigma = mu, log_sigma

    def mean(self):
        return self.mu

    def sample(self, noise, t=1.0):
        return self.mu + torch.exp(self.log_sigma) * t * noise


class DiscLogistic:
    def __init__(self, logits):
        c = logits.shape[1] // 2
        self.means = logits[:, :c]
        self.log_scales = torch.clamp(logits[:, c:], min=-7.0)

    def mean(self):
        return self.means


# ---------------------------------------------------------------------------------------------------
# The VAE


def _args(args):
    if isinstance(args, dict):
        return SimpleNamespace(**args)
    return args


class NVAE(nn.Module):
    def __init__(self, args):
        super().__init__()
        a = _args(args)
        self.dataset = a.dataset
        self.crop_output = a.dataset in ("mnist", "omniglot")
        self.log_sig_q_scale = float(a.log_sig_q_scale)
        self.num_bits = a.num_x_bits
        self.decoder_dist = a.decoder_dist
        self.num_latent_scales = a.num_latent_scales
        self.num_groups_per_scale = a.num_groups_per_scale
        self.num_latent_per_group = a.num_latent_per_group
        self.groups_per_scale = [a.num_groups_per_scale] * a.num_latent_scales
        self.progressive_input = a.progressive_input_vae
        self.num_flows = a.num_nf
        self.num_mix_output = 10
        self.input_size = image_size(a.dataset)
        arch = arch_cells(a.arch_instance, a.use_se)
        mult = list(a.channel_mult)
        ce, cd = a.num_channels_enc, a.num_channels_dec
        L, nz = a.num_latent_scales, a.num_latent_per_group
        assert a.num_preprocess_blocks == a.num_postprocess_blocks
        assert len(mult) == a.num_preprocess_blocks + L

        top = self.input_size // 2 ** (a.num_preprocess_blocks + L - 1)
        self.prior_ftr0 = nn.Parameter(torch.rand(int(mult[-1] * cd), top, top))

        self.stem = Conv2D(1 if self.crop_output else 3, ce, 3, padding=1, bias=True)

        # pre-process: blocks of (cells-1) normal cells and a down cell
        si = 0
        self.pre_process = nn.ModuleList()
        for _ in range(a.num_preprocess_blocks):
            for c in range(a.num_preprocess_cells):
                if c == a.num_preprocess_cells - 1:
                    self.pre_process.append(Cell(int(ce * mult[si]), int(ce * mult[si + 1]), "down_pre", arch["down_pre"]))
                    si += 1
                else:
                    self.pre_process.append(Cell(int(ce * mult[si]), int(ce * mult[si]), "normal_pre", arch["normal_pre"]))

        # encoder tower: per group cells + a combiner (none after the very last group); down cell between scales
        self.enc_tower = nn.ModuleList()
        self.progressive_input_cells = nn.ModuleList()
        for s in range(L):
            c_scale = int(ce * mult[si])
            for g in range(self.groups_per_scale[s]):
                for _ in range(a.num_cell_per_cond_enc):
                    self.enc_tower.append(Cell(c_scale, c_scale, "normal_enc", arch["normal_enc"]))
                if not (s == L - 1 and g == self.groups_per_scale[s] - 1):
                    self.enc_tower.append(EncCombinerCell(c_scale, int(cd * mult[si])))
            if s < L - 1:
                c_next = int(ce * mult[si + 1])
                self.enc_tower.append(Cell(c_scale, c_next, "down_enc", arch["down_enc"]))
                si += 1
                if self.progressive_input == "input_skip":
                    self.progressive_input_cells.append(InputSkipCombinerCell(c_scale, c_next))

        # posterior heads, AR flows and eps convs, top scale first
        self.enc_sampler = nn.ModuleList()
        self.dec_sampler = nn.ModuleList()  # empty in LSGM (the prior over eps is N(0, I) / the SGM)
        self.nf_cells = nn.ModuleList()
        self.eps_conv = nn.ModuleList()
        sj = si
        for s in range(L):
            for _ in range(self.groups_per_scale[L - s - 1]):
                self.enc_sampler.append(nn.Sequential(nn.ELU(), Conv2D(int(ce * mult[sj]), 2 * nz, 3, padding=1, bias=True)))
                for _ in range(self.num_flows):
                    self.nf_cells.append(PairedCellAR(nz))
                self.eps_conv.append(Conv2D(nz, nz, 3, padding=1, bias=True))
            sj -= 1

        # decoder tower: per group a combiner and cells; up cell between scales
        self.dec_tower = nn.ModuleList()
        for s in range(L):
            c = int(cd * mult[si])
            for _ in range(self.groups_per_scale[L - s - 1]):
                self.dec_tower.append(DecCombinerCell(c, nz))
                for _ in range(a.num_cell_per_cond_dec):
                    self.dec_tower.append(Cell(c, c, "normal_dec", arch["normal_dec"]))
            if s < L - 1:
                self.dec_tower.append(Cell(c, int(cd * mult[si - 1]), "up_dec", arch["up_dec"]))
                si -= 1

        # post-process: blocks of an up cell and (cells-1) normal cells
        self.post_process = nn.ModuleList()
        for _ in range(a.num_postprocess_blocks):
            for c in range(a.num_postprocess_cells):
                if c == 0:
                    self.post_process.append(Cell(int(cd * mult[si]), int(cd * mult[si - 1]), "up_post", arch["up_post"]))
                    si -= 1
                else:
                    self.post_process.append(Cell(int(cd * mult[si]), int(cd * mult[si]), "normal_post", arch["normal_post"]))

        cout = {"normal": 6, "dl": 6, "bin": 1, "dml": 10 * self.num_mix_output}[self.decoder_dist]
        self.image_conditional = nn.Sequential(nn.ELU(), Conv2D(int(cd * mult[si]), cout, 3, padding=1, bias=True))

    # -- helpers ------------------------------------------------------------------------------------

    def num_groups(self):
        return sum(self.groups_per_scale)

    def latent_structure(self):
        """Channels of the concatenated eps per scale (top scale first); [0] is the SGM's input."""
        return [self.num_groups_per_scale * self.num_latent_per_group] * self.num_latent_scales

    def group_shapes(self, batch=1):
        """[B, nz, H, W] of every latent group, in decoder order (top scale first)."""
        shapes, hw = [], self.prior_ftr0.shape[-1]
        for s in range(self.num_latent_scales):
            shapes += [[batch, self.num_latent_per_group, hw, hw]] * self.groups_per_scale[self.num_latent_scales - s - 1]
            hw *= 2
        return shapes

    def sgm_shape(self):
        """C, H, W of the score model's latent (the top scale)."""
        hw = self.prior_ftr0.shape[-1]
        return [self.latent_structure()[0], hw, hw]

    def decompose_eps(self, z):
        """Top-scale latent [B, G*nz, H, W] -> G groups along channels (group 0 first)."""
        return list(torch.chunk(z, self.num_groups_per_scale, dim=1))

    def concat_eps_per_scale(self, eps_groups):
        out, i = [], 0
        for s in range(self.num_latent_scales):
            n = self.groups_per_scale[self.num_latent_scales - s - 1]
            out.append(torch.cat(eps_groups[i:i + n], dim=1))
            i += n
        return out

    def set_bn_batch_stats(self, on=True):
        for m in self.modules():
            if isinstance(m, BatchNorm):
                m.batch_stats = bool(on)

    def preprocess_image(self, x01):
        """[0,1] image -> network input in [-1,1] (bit reduction first for num_x_bits < 8)."""
        if self.num_bits != 8:
            x01 = torch.floor(x01 * 255 / 2 ** (8 - self.num_bits)) / (2 ** self.num_bits - 1)
        return 2.0 * x01 - 1.0

    # -- towers -------------------------------------------------------------------------------------

    def _initial_state(self, batch):
        return self.prior_ftr0.unsqueeze(0).expand(batch, -1, -1, -1)

    def _post(self, s):
        for cell in self.post_process:
            s = cell(s)
        return self.image_conditional(s)

    def encode(self, x, noise, return_logits=False):
        """x: [B, C, H, W] in [-1, 1]. noise: one N(0, I) tensor per group (decoder order).

        Returns a dict with lists `mu`, `log_sigma` (soft-clamped posterior parameters), `eps`
        (mu + sigma * noise, then the AR flows), and `logits` (reconstruction) if asked for."""
        s = self.stem(x)
        for cell in self.pre_process:
            s = cell(s)
        pyramid, p_idx = s, 0
        combiners, features = [], []
        for cell in self.enc_tower:
            if cell.cell_type == "combiner_enc":
                combiners.append(cell)
                features.append(s)
                continue
            s = cell(s)
            if cell.cell_type == "down_enc" and self.progressive_input == "input_skip":
                s, pyramid = self.progressive_input_cells[p_idx](s, pyramid)
                p_idx += 1
        combiners.reverse()
        features.reverse()

        ftr = s
        d = self._initial_state(x.shape[0])
        mus, log_sigmas, eps_all = [], [], []
        g = 0
        for cell in self.dec_tower:
            if cell.cell_type != "combiner_dec":
                d = cell(d)
                continue
            if g > 0:
                ftr = combiners[g - 1](features[g - 1], d)
            mu, log_sig = torch.chunk(self.enc_sampler[g](ftr), 2, dim=1)
            mu = soft_clamp(mu, 5.0)
            log_sig = soft_clamp(log_sig, self.log_sig_q_scale)
            eps = mu + torch.exp(log_sig) * noise[g]
            for k in range(self.num_flows):
                eps = self.nf_cells[g * self.num_flows + k](eps)
            mus.append(mu)
            log_sigmas.append(log_sig)
            eps_all.append(eps)
            d = cell(d, self.eps_conv[g](eps))
            g += 1
        out = {"mu": mus, "log_sigma": log_sigmas, "eps": eps_all}
        if return_logits:
            out["logits"] = self._post(d)
        return out

    def decode(self, eps_groups, noise=None, t=1.0):
        """Latent groups (decoder order) -> output logits. Groups past len(eps_groups) are t * noise[i]
        (noise indexed from the first missing group): the official draw from N(0, t^2 I)."""
        n_given = len(eps_groups)
        batch = eps_groups[0].shape[0] if n_given else noise[0].shape[0]
        s = self._initial_state(batch)
        g = 0
        for cell in self.dec_tower:
            if cell.cell_type != "combiner_dec":
                s = cell(s)
                continue
            eps = eps_groups[g] if g < n_given else t * noise[g - n_given]
            s = cell(s, self.eps_conv[g](eps))
            g += 1
        return self._post(s)

    def output_distribution(self, logits):
        if self.decoder_dist == "dml":
            return DiscMixLogistic(logits, self.num_mix_output, self.num_bits)
        if self.decoder_dist == "bin":
            return Bernoulli(logits)
        if self.decoder_dist == "normal":
            mu, log_sigma = torch.chunk(soft_clamp(logits, 5.0), 2, dim=1)
            return Normal(mu, log_sigma)
        if self.decoder_dist == "dl":
            return DiscLogistic(logits)
        raise NotImplementedError(self.decoder_dist)

    def image(self, logits):
        """The official image: distribution mean, clamped to [-1, 1], mapped to [0, 1]."""
        x = self.output_distribution(logits).mean().clamp(-1.0, 1.0)
        return (x + 1.0) / 2.0

    def sample_from_sgm(self, z, noise=None, t=1.0):
        """LSGM sampling: z is the score model's output for the top scale; lower-scale groups (CelebA) are
        t * noise (the official `vae_temp`). Returns (logits, image in [0, 1])."""
        logits = self.decode(self.decompose_eps(z), noise, t)
        return logits, self.image(logits)
