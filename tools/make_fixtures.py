#!/usr/bin/env python3
"""Writes the fixtures the Rust tests compare against: tests/fixtures/<op>_<case>.safetensors.

Each file holds the inputs (`in.*`), parameters (`param.*`) and expected outputs (`out.*`) of one op,
block, network call or sampler step, in fp32 and PyTorch's NCHW layout, plus metadata: op, case,
seed, tolerance, torch version and a one-line description. Expected outputs are computed in float64
from the fp32 inputs and rounded once, so they are the most accurate oracle the inputs allow.
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
import os
import sys
import tempfile
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
        assert v.dtype == torch.float32, (name, k, v.dtype)
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
            "tensors": {k: {"shape": list(v.shape), "dtype": "F32"} for k, v in sorted(tensors.items())},
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
