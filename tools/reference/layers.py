"""NCSN++ building blocks, as the three official repositories run them at inference time.

Attribute names (`GroupNorm_0`, `Conv_0`, `Dense_0`, `NIN_0.W`, `Conv2d_0`, `style`, ...) equal the
official state_dict keys, so official weights load with strict=True. Initialisation is irrelevant
for the reference (weights always come from a checkpoint); the constructors use a simple
variance-scaling init only so that a freshly built module produces finite numbers.

Conventions (specs: cld.md §3, ddgan.md §3, lsgm.md §3):
- GroupNorm: groups = min(C // 4, 32), eps = 1e-6.
- NIN (per-pixel linear map) stores W as [in, out]: y = x·W + b.
- Every residual merge in NCSN++ with skip_rescale is (x + h) / sqrt(2).
- FIR resampling is upfirdn2d with the separable kernel [1,3,3,1], zero borders.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------------------------
# upfirdn2d and FIR resampling
# ----------------------------------------------------------------------------------------------

def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Per-channel upsample / FIR filter / downsample of x [N, C, H, W], same on both axes.

    1. zero insertion: sample n goes to index n*up (length N*up);
    2. pad p0 zeros before and p1 after (a negative pad crops that many samples);
    3. true convolution with `kernel` [kh, kw] (the kernel is flipped), valid outputs only;
    4. keep every `down`-th output, starting at index 0.
    Output length per axis: (N*up + p0 + p1 - k) // down + 1.
    """
    if not torch.is_tensor(kernel):
        kernel = torch.as_tensor(kernel)
    if kernel.dim() == 1:
        kernel = torch.outer(kernel, kernel)
    p0, p1 = int(pad[0]), int(pad[1])
    n, c, h, w = x.shape
    if up > 1:
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    # Positive pads add zeros; negative pads crop.
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        c0, c1 = max(-p0, 0), max(-p1, 0)
        x = x[:, :, c0: x.shape[2] - c1, c0: x.shape[3] - c1]
    kh, kw = kernel.shape
    # conv2d is a cross-correlation; flipping the kernel makes it a true convolution.
    weight = kernel.flip(0).flip(1).to(dtype=x.dtype, device=x.device)
    weight = weight.expand(c, 1, kh, kw).contiguous()
    return F.conv2d(x, weight, stride=down, groups=c)


def fir_kernel_2d(k):
    """The separable 2-D FIR kernel outer(k, k), normalised to sum 1 (float32, as the official
    code builds it with numpy float32)."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.dim() == 1:
        k = torch.outer(k, k)
    return k / k.sum()


def fir_upsample_2d(x, k=(1, 3, 3, 1), factor=2, gain=1.0):
    """Upsample by `factor` with FIR kernel k (gain so that a constant input keeps its value)."""
    kk = fir_kernel_2d(k) * (gain * factor ** 2)
    p = kk.shape[0] - factor
    return upfirdn2d(x, kk, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def fir_downsample_2d(x, k=(1, 3, 3, 1), factor=2, gain=1.0):
    """Downsample by `factor` after filtering with FIR kernel k."""
    kk = fir_kernel_2d(k) * gain
    p = kk.shape[0] - factor
    return upfirdn2d(x, kk, down=factor, pad=((p + 1) // 2, p // 2))


def fir_conv_downsample_2d(x, weight, k=(1, 3, 3, 1), factor=2, gain=1.0):
    """Fused FIR filter + strided conv (the pyramid down-conv): filter with k padded so that the
    following `weight` conv (stride `factor`, no padding) halves the size."""
    kk = fir_kernel_2d(k) * gain
    kw = weight.shape[-1]
    p = (kk.shape[0] - factor) + (kw - 1)
    x = upfirdn2d(x, kk, pad=((p + 1) // 2, p // 2))
    return F.conv2d(x, weight, stride=factor, padding=0)


def naive_upsample_2d(x, factor=2):
    """Nearest-neighbour repeat."""
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def naive_downsample_2d(x, factor=2):
    """Mean over factor x factor blocks."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


# ----------------------------------------------------------------------------------------------
# Primitive layers
# ----------------------------------------------------------------------------------------------

def _variance_scaling_(w, scale=1.0):
    """fan_avg uniform variance scaling (the DDPM default); scale 0 is treated as 1e-10."""
    scale = 1e-10 if scale == 0 else scale
    if w.dim() < 2:
        nn.init.zeros_(w)
        return w
    receptive = w[0, 0].numel() if w.dim() > 2 else 1
    fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
    bound = math.sqrt(3.0 * scale / ((fan_in + fan_out) / 2))
    with torch.no_grad():
        return w.uniform_(-bound, bound)


def conv3x3(in_ch, out_ch, stride=1, bias=True, padding=1, init_scale=1.0):
    """Plain 3x3 nn.Conv2d (keys `weight` [out, in, 3, 3], `bias`)."""
    conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=padding, bias=bias)
    _variance_scaling_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def conv1x1(in_ch, out_ch, stride=1, bias=True, padding=0, init_scale=1.0):
    """Plain 1x1 nn.Conv2d."""
    conv = nn.Conv2d(in_ch, out_ch, 1, stride=stride, padding=padding, bias=bias)
    _variance_scaling_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def dense(in_dim, out_dim, init_scale=1.0):
    """nn.Linear (weight [out, in])."""
    lin = nn.Linear(in_dim, out_dim)
    _variance_scaling_(lin.weight, init_scale)
    nn.init.zeros_(lin.bias)
    return lin


def group_norm(channels, affine=True):
    """GroupNorm with min(C // 4, 32) groups and eps 1e-6."""
    return nn.GroupNorm(min(channels // 4, 32), channels, eps=1e-6, affine=affine)


def get_act(name):
    """Activation by the CLD config name (`nonlinearity`)."""
    if name == "swish" or name == "silu":
        return nn.SiLU()
    if name == "elu":
        return nn.ELU()
    if name == "relu":
        return nn.ReLU()
    if name == "lrelu":
        return nn.LeakyReLU(0.2)
    raise ValueError(f"unknown activation {name!r}")


class NIN(nn.Module):
    """Per-pixel linear map y[b, :, h, w] = x[b, :, h, w] · W + b, W stored [in, out]."""

    def __init__(self, in_dim, out_dim, init_scale=0.1):
        super().__init__()
        self.W = nn.Parameter(_variance_scaling_(torch.empty(out_dim, in_dim), init_scale).t().contiguous())
        self.b = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x):
        return torch.einsum("bihw,io->bohw", x, self.W) + self.b[None, :, None, None]


class PixelNorm(nn.Module):
    """z / sqrt(mean(z^2 over features) + 1e-8)."""

    def forward(self, z):
        return z / torch.sqrt(torch.mean(z * z, dim=1, keepdim=True) + 1e-8)


def z_mapping(nz, z_emb_dim, n_mlp):
    """DDGAN's latent mapping network `z_transform`: PixelNorm, Linear(nz→E), SiLU, then n_mlp
    times [Linear(E→E), SiLU]. Linear layers sit at indices 1, 3, 5, ..."""
    layers = [PixelNorm(), dense(nz, z_emb_dim), nn.SiLU()]
    for _ in range(n_mlp):
        layers += [dense(z_emb_dim, z_emb_dim), nn.SiLU()]
    return nn.Sequential(*layers)


class AdaptiveGroupNorm(nn.Module):
    """DDGAN's AdaGN: gamma * GroupNorm(x) + beta (no affine of its own), with
    [gamma, beta] = style(zemb) (gamma first; no "1 +")."""

    def __init__(self, num_groups, channels, style_dim):
        super().__init__()
        self.num_groups = num_groups
        self.style = dense(style_dim, 2 * channels)
        with torch.no_grad():
            self.style.bias[:channels] = 1.0

    def forward(self, x, zemb):
        s = self.style(zemb)[:, :, None, None]
        gamma, beta = s.chunk(2, dim=1)
        return gamma * F.group_norm(x, self.num_groups, eps=1e-6) + beta


def _norm(channels, zemb_dim):
    """Plain affine GroupNorm, or AdaGN when a z-embedding width is given."""
    if zemb_dim is None:
        return group_norm(channels)
    return AdaptiveGroupNorm(min(channels // 4, 32), channels, zemb_dim)


def _apply_norm(norm, x, zemb):
    return norm(x, zemb) if isinstance(norm, AdaptiveGroupNorm) else norm(x)


# ----------------------------------------------------------------------------------------------
# Time embeddings
# ----------------------------------------------------------------------------------------------

def _sinusoid_freqs(half, max_positions, device):
    # float32, as both official codes build it: exp(-j * ln(max_positions) / (half - 1)).
    step = math.log(max_positions) / (half - 1)
    return torch.exp(torch.arange(half, dtype=torch.float32, device=device) * -step)


def timestep_embedding(timesteps, dim, max_positions=10000):
    """Sinusoidal embedding of CLD / DDGAN (`layers.get_timestep_embedding`): computed entirely in
    float32 (t is cast to float32 first), [sin, cos], zero-padded to an odd `dim`."""
    assert timesteps.dim() == 1
    half = dim // 2
    arg = timesteps.float()[:, None] * _sinusoid_freqs(half, max_positions, timesteps.device)[None, :]
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class PositionalEmbedding(nn.Module):
    """LSGM's sinusoidal embedding (`util/utils.py: PositionalEmbedding`): u = t * scale in t's
    dtype, frequencies in float32, [sin(u f), cos(u f)]. No parameters."""

    def __init__(self, embedding_dim, scale):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.scale = scale

    def forward(self, t):
        assert t.dim() == 1
        u = t * self.scale
        arg = u[:, None] * _sinusoid_freqs(self.embedding_dim // 2, 10000, t.device)[None, :]
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class GaussianFourierProjection(nn.Module):
    """CLD / DDGAN Fourier features: p = x · W · 2π (the caller passes log t), [sin p, cos p].
    W [embedding_size] is fixed (requires_grad False) but stored in the state_dict."""

    def __init__(self, embedding_size=256, scale=1.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, x):
        p = x[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(p), torch.cos(p)], dim=-1)


class RandomFourierEmbedding(nn.Module):
    """LSGM Fourier features (`util/utils.py: RandomFourierEmbedding`): w [1, dim/2] fixed,
    p = t · (w · 2 · 3.14159265359) (raw t, no log), [sin p, cos p]."""

    def __init__(self, embedding_dim, scale):
        super().__init__()
        self.w = nn.Parameter(torch.randn(1, embedding_dim // 2) * scale, requires_grad=False)

    def forward(self, t):
        p = t[:, None] @ (self.w * 2 * 3.14159265359)
        return torch.cat([torch.sin(p), torch.cos(p)], dim=1)


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------

class AttnBlockpp(nn.Module):
    """Single-head self-attention over all H·W positions: GroupNorm (no activation), q/k/v by NIN,
    softmax(q·k / sqrt(C)), NIN_3 on the result, residual (divided by sqrt 2 with skip_rescale)."""

    def __init__(self, channels, skip_rescale=False, init_scale=0.0):
        super().__init__()
        self.GroupNorm_0 = group_norm(channels)
        self.NIN_0 = NIN(channels, channels)
        self.NIN_1 = NIN(channels, channels)
        self.NIN_2 = NIN(channels, channels)
        self.NIN_3 = NIN(channels, channels, init_scale=init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.GroupNorm_0(x)
        q = self.NIN_0(h).reshape(b, c, hh * ww)
        k = self.NIN_1(h).reshape(b, c, hh * ww)
        v = self.NIN_2(h).reshape(b, c, hh * ww)
        logits = torch.bmm(q.transpose(1, 2), k) * (c ** -0.5)  # [b, query, key]
        a = torch.softmax(logits, dim=-1)
        o = torch.bmm(v, a.transpose(1, 2)).reshape(b, c, hh, ww)  # o[c, n] = sum_m a[n, m] v[c, m]
        o = self.NIN_3(o)
        return (x + o) / SQRT2 if self.skip_rescale else x + o


class FIRConv2d(nn.Module):
    """The StyleGAN2-style conv with fused FIR resampling (`up_or_down_sampling.Conv2d`); keys
    `weight` [out, in, k, k] and `bias`. down: FIR filter then stride-2 valid conv. up: the official
    fused transpose path fails under PyTorch (negative-step slicing) and no released config uses
    it, so it is not implemented."""

    def __init__(self, in_ch, out_ch, kernel, up=False, down=False, resample_kernel=(1, 3, 3, 1),
                 use_bias=True):
        super().__init__()
        assert not (up and down) and kernel % 2 == 1
        self.weight = nn.Parameter(_variance_scaling_(torch.empty(out_ch, in_ch, kernel, kernel)))
        if use_bias:
            self.bias = nn.Parameter(torch.zeros(out_ch))
        self.up, self.down, self.kernel = up, down, kernel
        self.resample_kernel = tuple(resample_kernel)
        self.use_bias = use_bias

    def forward(self, x):
        if self.up:
            raise NotImplementedError("fused FIR upsample-conv: fails in the official code too")
        if self.down:
            x = fir_conv_downsample_2d(x, self.weight, self.resample_kernel)
        else:
            x = F.conv2d(x, self.weight, padding=self.kernel // 2)
        if self.use_bias:
            x = x + self.bias[None, :, None, None]
        return x


class Upsample(nn.Module):
    """layerspp.Upsample: nearest (+ optional Conv_0 3x3) or FIR (without conv; the FIR + conv
    variant `Conv2d_0` is constructed for key parity but cannot run, as in the official code)."""

    def __init__(self, in_ch=None, out_ch=None, with_conv=False, fir=False, fir_kernel=(1, 3, 3, 1)):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        if with_conv:
            if fir:
                self.Conv2d_0 = FIRConv2d(in_ch, out_ch, 3, up=True, resample_kernel=fir_kernel)
            else:
                self.Conv_0 = conv3x3(in_ch, out_ch)
        self.fir, self.with_conv, self.fir_kernel = fir, with_conv, tuple(fir_kernel)

    def forward(self, x):
        if self.fir:
            return self.Conv2d_0(x) if self.with_conv else fir_upsample_2d(x, self.fir_kernel)
        h = naive_upsample_2d(x)
        return self.Conv_0(h) if self.with_conv else h


class Downsample(nn.Module):
    """layerspp.Downsample: FIR (optionally fused with a stride-2 conv `Conv2d_0`), or 2x2 mean, or
    pad (0,1,0,1) + stride-2 valid 3x3 conv `Conv_0`."""

    def __init__(self, in_ch=None, out_ch=None, with_conv=False, fir=False, fir_kernel=(1, 3, 3, 1)):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        if with_conv:
            if fir:
                self.Conv2d_0 = FIRConv2d(in_ch, out_ch, 3, down=True, resample_kernel=fir_kernel)
            else:
                self.Conv_0 = conv3x3(in_ch, out_ch, stride=2, padding=0)
        self.fir, self.with_conv, self.fir_kernel = fir, with_conv, tuple(fir_kernel)

    def forward(self, x):
        if self.fir:
            return self.Conv2d_0(x) if self.with_conv else fir_downsample_2d(x, self.fir_kernel)
        if self.with_conv:
            return self.Conv_0(F.pad(x, (0, 1, 0, 1)))
        return naive_downsample_2d(x)


class Combine(nn.Module):
    """Input-skip combiner: Conv_0 (1x1) on the pyramid x, then concat [h, y] or sum h + y."""

    def __init__(self, dim1, dim2, method="cat"):
        super().__init__()
        self.Conv_0 = conv1x1(dim1, dim2)
        self.method = method

    def forward(self, x, y):
        h = self.Conv_0(x)
        if self.method == "cat":
            return torch.cat([h, y], dim=1)
        if self.method == "sum":
            return h + y
        raise ValueError(f"unknown combine method {self.method!r}")


class ResnetBlockBigGANpp(nn.Module):
    """BigGAN-style residual block of NCSN++ (CLD, LSGM) and, with `zemb_dim`, DDGAN's
    ResnetBlockBigGANpp_Adagn (both norms adaptive) or, with one_adagn, ..._Adagn_one (only
    GroupNorm_0 adaptive).

    h = act(N0(x)); optional up/down (FIR or naive) of h and of the raw x; h = Conv_0(h);
    h += Dense_0(act(temb)); h = Conv_1(Dropout(act(N1(h)))); x = Conv_2(x) (1x1) when the width
    changes or the block resamples; out = (x + h) / sqrt 2 (skip_rescale).
    """

    def __init__(self, act, in_ch, out_ch=None, temb_dim=None, up=False, down=False, dropout=0.1,
                 fir=False, fir_kernel=(1, 3, 3, 1), skip_rescale=True, init_scale=0.0,
                 zemb_dim=None, one_adagn=False):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        self.GroupNorm_0 = _norm(in_ch, zemb_dim)
        self.up, self.down, self.fir, self.fir_kernel = up, down, fir, tuple(fir_kernel)
        self.Conv_0 = conv3x3(in_ch, out_ch)
        if temb_dim is not None:
            self.Dense_0 = dense(temb_dim, out_ch)
        self.GroupNorm_1 = _norm(out_ch, None if one_adagn else zemb_dim)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv3x3(out_ch, out_ch, init_scale=init_scale)
        self.has_shortcut = in_ch != out_ch or up or down
        if self.has_shortcut:
            self.Conv_2 = conv1x1(in_ch, out_ch)
        self.skip_rescale = skip_rescale
        self.act = act

    def _resample(self, x):
        if self.up:
            return fir_upsample_2d(x, self.fir_kernel) if self.fir else naive_upsample_2d(x)
        if self.down:
            return fir_downsample_2d(x, self.fir_kernel) if self.fir else naive_downsample_2d(x)
        return x

    def forward(self, x, temb=None, zemb=None):
        h = self.act(_apply_norm(self.GroupNorm_0, x, zemb))
        h = self._resample(h)
        x = self._resample(x)
        h = self.Conv_0(h)
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.act(_apply_norm(self.GroupNorm_1, h, zemb))
        h = self.Conv_1(self.Dropout_0(h))
        if self.has_shortcut:
            x = self.Conv_2(x)
        return (x + h) / SQRT2 if self.skip_rescale else x + h


class ResnetBlockDDPMpp(nn.Module):
    """DDPM-style residual block (no internal resampling; NIN_0 shortcut when the width changes, or
    Conv_2 3x3 with conv_shortcut). With `zemb_dim` it is DDGAN's ResnetBlockDDPMpp_Adagn. No
    released configuration uses it."""

    def __init__(self, act, in_ch, out_ch=None, temb_dim=None, conv_shortcut=False, dropout=0.1,
                 skip_rescale=False, init_scale=0.0, zemb_dim=None):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        self.GroupNorm_0 = _norm(in_ch, zemb_dim)
        self.Conv_0 = conv3x3(in_ch, out_ch)
        if temb_dim is not None:
            self.Dense_0 = dense(temb_dim, out_ch)
        self.GroupNorm_1 = _norm(out_ch, zemb_dim)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv3x3(out_ch, out_ch, init_scale=init_scale)
        if in_ch != out_ch:
            if conv_shortcut:
                self.Conv_2 = conv3x3(in_ch, out_ch)
            else:
                self.NIN_0 = NIN(in_ch, out_ch)
        self.out_ch, self.conv_shortcut = out_ch, conv_shortcut
        self.skip_rescale = skip_rescale
        self.act = act

    def forward(self, x, temb=None, zemb=None):
        h = self.act(_apply_norm(self.GroupNorm_0, x, zemb))
        h = self.Conv_0(h)
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.act(_apply_norm(self.GroupNorm_1, h, zemb))
        h = self.Conv_1(self.Dropout_0(h))
        if x.shape[1] != self.out_ch:
            x = self.Conv_2(x) if self.conv_shortcut else self.NIN_0(x)
        return (x + h) / SQRT2 if self.skip_rescale else x + h
