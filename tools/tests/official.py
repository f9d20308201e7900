"""Imports the official repositories on a CPU, one at a time, for the reference tests.

The official code compiles custom CUDA ops (upfirdn2d, fused leaky ReLU) when it is imported. Here
those modules are replaced by pure-PyTorch stand-ins written for this project, with the same
semantics, so the official networks run on any machine. Two repositories define a top-level
`score_sde` package, so each is imported inside `official(name)`, which restores `sys.modules` and
`sys.path` afterwards.

The checkouts live under $TRILEMMA_OFFICIAL_DIR/{ddgan,cld,lsgm}; tests skip when it is not set.
"""
import contextlib
import importlib
import os
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

REPOS = {
    "ddgan": "NVlabs/denoising-diffusion-gan",
    "cld": "nv-tlabs/CLD-SGM",
    "lsgm": "NVlabs/LSGM",
}

# Where each repository imports its custom ops from.
OP_PACKAGES = {"ddgan": "score_sde.op", "cld": "op", "lsgm": "score_sde.op"}


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample by zero insertion, pad (negative pads crop), filter with `kernel` (true convolution,
    i.e. the kernel flipped for F.conv2d), keep every `down`-th sample. Same in x and y."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    p0, p1 = pad
    if up > 1:
        z = x.new_zeros(n, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    hh, ww = x.shape[2], x.shape[3]
    x = x[:, :, max(-p0, 0): hh - max(-p1, 0), max(-p0, 0): ww - max(-p1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(x).reshape(1, 1, kh, kw).repeat(c, 1, 1, 1)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down]


def fused_leaky_relu(x, bias, negative_slope=0.2, scale=2 ** 0.5):
    shape = [1, -1] + [1] * (x.dim() - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope) * scale


class FusedLeakyReLU(torch.nn.Module):
    def __init__(self, channel, negative_slope=0.2, scale=2 ** 0.5):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(channel))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


def official_dir(name):
    """The checkout of `name`, or None when TRILEMMA_OFFICIAL_DIR is unset or lacks it."""
    root = os.environ.get("TRILEMMA_OFFICIAL_DIR")
    if not root:
        return None
    p = Path(root) / name
    return p if p.is_dir() else None


def _stub_ops(package):
    mod = types.ModuleType(package)
    mod.upfirdn2d = upfirdn2d
    mod.fused_leaky_relu = fused_leaky_relu
    mod.FusedLeakyReLU = FusedLeakyReLU
    mod.__path__ = []  # a package, so `package.upfirdn2d` style submodule imports resolve below
    sub_up = types.ModuleType(package + ".upfirdn2d")
    sub_up.upfirdn2d = upfirdn2d
    sub_act = types.ModuleType(package + ".fused_act")
    sub_act.fused_leaky_relu = fused_leaky_relu
    sub_act.FusedLeakyReLU = FusedLeakyReLU
    return {package: mod, package + ".upfirdn2d": sub_up, package + ".fused_act": sub_act}


@contextlib.contextmanager
def official(name):
    """Context in which `importlib.import_module` finds the official repository `name`."""
    root = official_dir(name)
    if root is None:
        import pytest

        pytest.skip(f"set TRILEMMA_OFFICIAL_DIR to a folder holding {name}/ ({REPOS[name]})")
    saved_modules = {k: m for k, m in sys.modules.items()}
    saved_path = list(sys.path)
    # Drop anything a previous repository left under the names these repositories share.
    shared = ("score_sde", "models", "op", "layers", "util", "thirdparty", "sde_lib", "sampling", "utils")
    for k in list(sys.modules):
        if k.split(".")[0] in shared:
            del sys.modules[k]
    sys.modules.update(_stub_ops(OP_PACKAGES[name]))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module
    finally:
        # Forget the repository's own modules and the stand-ins; keep third-party modules it pulled in
        # (native extensions cannot be imported twice in one process).
        for k, m in list(sys.modules.items()):
            f = getattr(m, "__file__", None) or ""
            if k.split(".")[0] in shared or f.startswith(str(root)):
                del sys.modules[k]
        for k, m in saved_modules.items():
            if k.split(".")[0] in shared:
                sys.modules[k] = m
        sys.path[:] = saved_path
