#!/usr/bin/env python3
"""Converts an official checkpoint into the engine's model directory (docs/model-format.md).

    python tools/convert.py {cld|ddgan|lsgm} CHECKPOINT --out DIR [--preset NAME] [--set key=value ...]

Writes DIR/model.safetensors (the EMA weights, `module.` stripped, official tensor names, fp32) and
DIR/config.json (the official hyperparameters under their official names, the family, the sampler
defaults, the source file's sha256). Every tensor is checked against the reference network built
from the configuration: a missing or unexpected key, or a shape that does not match, is an error that
names it. DIR must not exist; it is written under a temporary name and renamed at the end, so a failed
conversion leaves nothing behind.

Which weights are the EMA weights, per family (see the model specs), following the official evaluation:
- ddgan: `netG_<epoch>.pth` is the generator's state_dict saved with the EMA swapped in.
  `content.pth` (the resume file) holds the raw `netG_dict` and, with `args.use_ema`, the EMA in
  `optimizerG['state'][i]['ema']`; its `args` give the architecture.
- cld: `checkpoint_<step>.pth` holds `model` (raw weights) and `ema.shadow_params` (a list in
  trainable-parameter order); the EMA values replace the trainable parameters, the rest (the Fourier
  projection `W`) comes from `model`.
- lsgm: `checkpoint.pt` holds the raw score model in `dae_state_dict` and its EMA in
  `dae_optimizer['state'][i]['ema']`; `checkpoint_fid.pt`/`checkpoint_nll.pt` were saved with the EMA
  swapped in. The VAE has no EMA. The architecture comes from the checkpoint's own `args`.
Where the EMA lives in an optimizer's state (LSGM `util/ema.py`, DDGAN `EMA.py`), the official swap
skips parameters with requires_grad=False (a frozen Fourier projection: no gradient, so no EMA entry
either); those keep the state dict's value. `source.weights` in config.json records which tensors came
from where.
LSGM `args` from older code versions lack fields the official evaluation (`evaluate_vada.py`) fills in
with fixed values; the converter fills the same ones and lists them in `source.args_backfilled`.
"""
import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from st_io import save_safetensors  # noqa: E402

FORMAT = "trilemma-model/1"


class ConvertError(Exception):
    """A problem with the user's input, reported as one clear message and exit status 2."""


# --- sampler and SDE settings per released configuration (official names) ---------------------------
# The network hyperparameters come from reference.ncsnpp.PRESETS / reference.nvae.PRESETS; these are
# the rest of each official configuration, which the sampler needs.

# main.py defaults shared by every CLD configuration: the SciPy RK45 tolerances of the ODE sampler and
# the SSCS/EM settings.
_CLD_SAMPLING = {"sampling_solver": "scipy_solver", "sampling_rtol": 1e-5, "sampling_atol": 1e-5,
                 "sscs_num_stab": 0.0, "striding": "linear"}
# evaluate_vada.py: latent temperature, lower-scale latent temperature, and the VAE's BN mode (the
# CelebA-HQ-256 FID evaluation runs the decoder with batch statistics, --vae_train_mode).
_LSGM_EVAL = {"sampler": "ode", "temp": 1.0, "vae_temp": 1.0, "vae_train_mode": False}

SAMPLER_DEFAULTS = {
    "cld": {
        "cifar10": {
            "sde": "cld", "beta_type": "linear", "beta0": 4.0, "beta1": 0.0, "m_inv": 4.0, "gamma": 0.04,
            "numerical_eps": 1e-9, "mixed_score": True, "sampling_method": "ode", "sampling_eps": 1e-3,
            "denoising": True, "image_size": 32, "image_channels": 3, "center_image": True,
            **_CLD_SAMPLING,
        },
        "celeba_paper": {
            "sde": "cld", "beta_type": "linear", "beta0": 4.0, "beta1": 0.0, "m_inv": 4.0, "gamma": 0.04,
            "numerical_eps": 1e-6, "mixed_score": True, "sampling_method": "ode", "sampling_eps": 1e-3,
            "denoising": True, "image_size": 256, "image_channels": 3, "center_image": True,
            **_CLD_SAMPLING,
        },
        "celeba_post_paper": {
            "sde": "cld", "beta_type": "linear", "beta0": 0.1, "beta1": 6.9, "m_inv": 4.0, "gamma": 0.04,
            "numerical_eps": 1e-6, "mixed_score": True, "sampling_method": "ode", "sampling_eps": 1e-3,
            "denoising": True, "image_size": 256, "image_channels": 3, "center_image": True,
            **_CLD_SAMPLING,
        },
    },
    "ddgan": {
        "cifar10": {"num_timesteps": 4, "beta_min": 0.1, "beta_max": 20.0, "use_geometric": False, "nz": 100,
                    "image_size": 32, "num_channels": 3},
        "celeba_256": {"num_timesteps": 2, "beta_min": 0.1, "beta_max": 20.0, "use_geometric": False, "nz": 100,
                       "image_size": 256, "num_channels": 3},
        "lsun": {"num_timesteps": 4, "beta_min": 0.1, "beta_max": 20.0, "use_geometric": False, "nz": 100,
                 "image_size": 256, "num_channels": 3},
    },
    # LSGM's architecture and SDE come from the checkpoint's own args; the ODE settings of the official
    # evaluation (evaluate_vada.py arguments, not stored in the checkpoint) per released model:
    "lsgm": {
        "cifar10": {**_LSGM_EVAL, "ode_eps": 1e-6, "ode_solver_tol": 1e-5},
        "cifar10_nll": {**_LSGM_EVAL, "ode_eps": 1e-6, "ode_solver_tol": 1e-5},
        "mnist": {**_LSGM_EVAL, "ode_eps": 1e-5, "ode_solver_tol": 1e-5},
        "celeba256_quant": {**_LSGM_EVAL, "ode_eps": 1e-5, "ode_solver_tol": 1e-2, "vae_train_mode": True},
        "celeba256_qual": {**_LSGM_EVAL, "ode_eps": 1e-5, "ode_solver_tol": 1e-5, "vae_train_mode": True},
    },
}


def lsgm_preset(config):
    """The released LSGM model an args dict describes (None for anything else)."""
    dataset = config.get("dataset")
    if dataset == "cifar10":
        return "cifar10_nll" if config.get("sde_type") == "geometric_sde" else "cifar10"
    if dataset == "mnist":
        return "mnist"
    if dataset == "celeba_256":
        return {3: "celeba256_quant", 2: "celeba256_qual"}.get(config.get("num_latent_scales"))
    return None


def parse_set(items):
    """`key=value` pairs; values parse as JSON (numbers, booleans, lists), else stay strings."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConvertError(f"--set expects key=value, got `{item}`")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_checkpoint(path):
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"{path}: no such file")
    try:
        # Official checkpoints pickle an argparse.Namespace (LSGM) and plain dicts: not weights-only.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle is the user's file
        raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def strip_module(sd, what):
    if not isinstance(sd, dict) or not sd:
        raise ConvertError(f"{what}: expected a non-empty state_dict")
    prefixed = [k.startswith("module.") for k in sd]
    if all(prefixed):
        return {k[len("module."):]: v for k, v in sd.items()}
    if any(prefixed):
        raise ConvertError(f"{what}: some keys carry `module.` and some do not")
    return dict(sd)


def check_against(expected, found, what):
    """`expected` and `found` map names to shapes (tuples); raise naming every difference."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != tuple(found[k]))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: " + ", ".join(unexpected[:8]) + (" ..." if len(unexpected) > 8 else ""))
    for k in wrong[:8]:
        problems.append(f"`{k}` has shape {list(found[k])}, the configuration gives {list(expected[k])}")
    if problems:
        raise ConvertError(f"{what} does not match the configuration:\n  " + "\n  ".join(problems)
                           + "\n(wrong --preset, or a --set that differs from how the checkpoint was trained?)")


class Provenance:
    """Where the output came from, for config.json's `source`: which tensors from which part of the
    checkpoint (`weights`), and which args the official loader would have filled in (`args_backfilled`).

    `take(source, names, why)` records a group of tensors; groups that are exceptions to the family's
    rule (kept as stored instead of from the EMA) list their names, the bulk groups are counted."""

    def __init__(self, rule):
        self.rule = rule
        self.groups = []
        self.args_backfilled = {}

    def take(self, source, names, why=None, list_names=False):
        names = list(names)
        if not names:
            return
        g = {"source": source, "tensors": len(names)}
        if why:
            g["why"] = why
        if list_names:
            g["names"] = names
        self.groups.append(g)

    def doc(self, tensor_count):
        counted = sum(g["tensors"] for g in self.groups)
        assert counted == tensor_count, f"weight sources cover {counted} of {tensor_count} tensors"
        return {"rule": self.rule, "from": self.groups}


FROZEN_WHY = ("requires_grad=False: never updated by training, so the official EMA holds no entry "
              "for it and swap_parameters_with_ema skips it")


def optimizer_index(opt, n_params, what):
    """The optimizer's state index of each of the network's `n_params` parameters, in
    `net.parameters()` order: torch numbers parameters through `param_groups[*]['params']` in order."""
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict):
        raise ConvertError(f"{what}: not an optimizer state_dict (no `state` dict)")
    groups = opt.get("param_groups")
    if not groups:  # a state without groups: positions are the indices
        return list(range(n_params))
    try:
        index = [i for g in groups for i in g["params"]]
    except (TypeError, KeyError):
        raise ConvertError(f"{what}: `param_groups` entries lack a `params` list") from None
    if len(index) != n_params:
        raise ConvertError(f"{what}: the optimizer covers {len(index)} parameters, the network has "
                           f"{n_params} (a checkpoint of another configuration?)")
    return index


def swap_in_optimizer_ema(raw, net, opt, what, prefix=""):
    """The official `swap_parameters_with_ema` (LSGM util/ema.py, DDGAN EMA.py) applied to the state
    dict `raw` of `net`'s configuration: a trainable parameter takes `state[i]['ema']`; a frozen one
    keeps `raw`'s value. Returns (state dict, trainable names, frozen names); a trainable parameter
    without an EMA (which the official swap fails on too) is an error naming it."""
    params = list(net.named_parameters())
    index = optimizer_index(opt, len(params), what)
    state = opt["state"]
    sd, taken, frozen = dict(raw), [], []
    for (name, p), i in zip(params, index):
        if not p.requires_grad:
            frozen.append(prefix + name)
            continue
        entry = state.get(i)
        ema = entry.get("ema") if isinstance(entry, dict) else None
        if not isinstance(ema, torch.Tensor):
            raise ConvertError(
                f"{what}: trainable parameter `{name}` (optimizer index {i}) has no `ema` entry; the "
                "official swap_parameters_with_ema needs one for every trainable parameter (was the "
                "checkpoint saved before the first optimizer step, or without EMA?)")
        if tuple(ema.shape) != tuple(raw[name].shape):
            raise ConvertError(f"{what}: EMA for `{name}` (optimizer index {i}) has shape {list(ema.shape)}, "
                               f"the parameter {list(raw[name].shape)} (parameter order differs from the "
                               "configuration)")
        sd[name] = ema
        taken.append(prefix + name)
    return sd, taken, frozen


# --- reference networks (shapes only, built on the meta device) -------------------------------------


def reference_net(family, config):
    from reference import ncsnpp

    with torch.device("meta"):
        return ncsnpp.build(family, config)


def reference_vae(config):
    from reference import nvae

    with torch.device("meta"):
        return nvae.NVAE(config)


def network_presets(family):
    from reference import ncsnpp

    return ncsnpp.PRESETS[family]


def shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# --- families ---------------------------------------------------------------------------------------


def resolve_config(family, preset, overrides):
    presets = network_presets(family)
    if preset is None:
        if len(presets) == 1:
            preset = next(iter(presets))
        else:
            raise ConvertError(f"{family}: choose --preset from {', '.join(sorted(presets))}")
    if preset not in presets:
        raise ConvertError(f"{family}: unknown preset `{preset}`; known: {', '.join(sorted(presets))}")
    config = dict(presets[preset])
    config.update(SAMPLER_DEFAULTS[family].get(preset, {}))
    config.update(overrides)
    return preset, config


def ddgan_preset_from_args(config, preset):
    presets = network_presets("ddgan")
    if preset is None and config.get("dataset") in presets:
        return config["dataset"]
    return preset


def convert_ddgan(ckpt, path, preset, overrides):
    if isinstance(ckpt, dict) and "netG_dict" in ckpt:
        return convert_ddgan_content(ckpt, path, preset, overrides)
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ConvertError(f"{path}: expected the generator's state_dict (netG_<epoch>.pth) or the "
                           "training state (content.pth)")
    sd = strip_module(ckpt, f"{path}")
    preset, config = resolve_config("ddgan", preset, overrides)
    check_against(shapes(reference_net("ddgan", config)), {k: tuple(v.shape) for k, v in sd.items()}, f"{path}")
    sources = Provenance("netG file saved with the EMA swapped in (train_ddgan.py --use_ema)")
    sources.take("netG file", sd)
    return preset, config, sd, sources


def convert_ddgan_content(ckpt, path, preset, overrides):
    """content.pth, which train_ddgan.py --save_content writes for resuming: the raw generator in
    `netG_dict`, its Adam+EMA state in `optimizerG`, the run's `args`. With `args.use_ema` the EMA is
    swapped in as the training script does before it writes netG_<epoch>.pth."""
    args = ckpt.get("args")
    arg_config = vars(args) if args is not None and hasattr(args, "__dict__") else {}
    preset = ddgan_preset_from_args(arg_config, preset)
    preset, config = resolve_config("ddgan", preset, {})
    # The run's own hyperparameters (official argument names) over the preset, the user's --set last.
    config.update({k: arg_config[k] for k in config if k in arg_config})
    config.update(overrides)
    raw = strip_module(ckpt["netG_dict"], f"{path}: `netG_dict`")
    net = reference_net("ddgan", config)
    check_against(shapes(net), {k: tuple(v.shape) for k, v in raw.items()}, f"{path}: `netG_dict`")
    if not arg_config.get("use_ema", False):
        sources = Provenance("netG_dict (the run had no --use_ema: its netG files hold these weights)")
        sources.take("netG_dict", raw)
        return preset, config, raw, sources
    if "optimizerG" not in ckpt:
        raise ConvertError(f"{path}: args.use_ema is set but there is no `optimizerG` holding the EMA")
    sd, taken, frozen = swap_in_optimizer_ema(raw, net, ckpt["optimizerG"], f"{path}: `optimizerG`")
    sources = Provenance("optimizerG state `ema` over netG_dict (EMA.swap_parameters_with_ema)")
    sources.take("optimizerG state `ema`", taken)
    sources.take("netG_dict", frozen, FROZEN_WHY, list_names=True)
    sources.take("netG_dict", sorted(set(raw) - set(taken) - set(frozen)), "buffers: not parameters",
                 list_names=True)
    return preset, config, sd, sources


def convert_cld(ckpt, path, preset, overrides):
    if not isinstance(ckpt, dict) or "model" not in ckpt or "ema" not in ckpt:
        raise ConvertError(f"{path}: expected a CLD-SGM checkpoint dict with `model` and `ema` "
                           f"(found keys: {', '.join(map(str, list(ckpt)[:8])) if isinstance(ckpt, dict) else type(ckpt).__name__})")
    raw = strip_module(ckpt["model"], f"{path}: `model`")
    preset, config = resolve_config("cld", preset, overrides)
    net = reference_net("cld", config)
    check_against(shapes(net), {k: tuple(v.shape) for k, v in raw.items()}, f"{path}: `model`")
    # models/ema.py: shadow_params holds one tensor per requires_grad parameter, in parameters() order;
    # copy_to writes them over exactly those.
    trainable = [name for name, p in net.named_parameters() if p.requires_grad]
    shadows = ckpt["ema"].get("shadow_params") if isinstance(ckpt["ema"], dict) else None
    if not isinstance(shadows, list):
        raise ConvertError(f"{path}: `ema.shadow_params` missing or not a list")
    if len(shadows) != len(trainable):
        raise ConvertError(f"{path}: `ema.shadow_params` has {len(shadows)} tensors, the network has "
                           f"{len(trainable)} trainable parameters")
    sd = dict(raw)
    for name, s in zip(trainable, shadows):
        if not isinstance(s, torch.Tensor) or tuple(s.shape) != tuple(raw[name].shape):
            found = list(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise ConvertError(f"{path}: EMA shadow for `{name}` has shape {found}, the parameter "
                               f"{list(raw[name].shape)} (parameter order differs from the configuration)")
        sd[name] = s
    sources = Provenance("ema.shadow_params over model (trainable parameters, in order; ema.copy_to)")
    sources.take("ema.shadow_params", trainable)
    sources.take("model", [k for k in raw if k not in set(trainable)], FROZEN_WHY.replace(
        "the official EMA holds no entry for it and swap_parameters_with_ema skips it",
        "ExponentialMovingAverage keeps no shadow for it and copy_to skips it"), list_names=True)
    return preset, config, sd, sources


def vae_tensor_kept(name):
    """BN step counters and the `weight_normalized` aliases of res_mbconv convs are not weights."""
    return not name.endswith("num_batches_tracked") and not name.endswith("weight_normalized")


# evaluate_vada.py and util/utils.py: override_architecture_fields fill these in for checkpoints written
# by older code versions, before building the models.
LSGM_ARGS_BACKFILL = {"num_x_bits": 8, "channel_mult": [1, 2], "mixing_logit_init": -3.0}


def convert_lsgm(ckpt, path, preset, overrides):
    if not isinstance(ckpt, dict) or "vae_state_dict" not in ckpt or "dae_state_dict" not in ckpt:
        raise ConvertError(f"{path}: expected an LSGM checkpoint with `vae_state_dict` and `dae_state_dict` "
                           "(a stage-1 VAE checkpoint has no score model)")
    args = ckpt.get("args")
    if args is None:
        raise ConvertError(f"{path}: no `args` in the checkpoint; the architecture cannot be known")
    config = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    backfilled = sorted(k for k in LSGM_ARGS_BACKFILL if k not in config)
    for k in backfilled:
        config[k] = LSGM_ARGS_BACKFILL[k]
    if preset is None:
        preset = lsgm_preset(config)
    elif preset not in SAMPLER_DEFAULTS["lsgm"]:
        raise ConvertError(f"lsgm: unknown preset `{preset}`; known: {', '.join(sorted(SAMPLER_DEFAULTS['lsgm']))}")
    if preset is None:
        raise ConvertError(f"{path}: args describe no released LSGM model (dataset {config.get('dataset')!r}); "
                           "give --preset for the sampler settings, or --set ode_eps=... ode_solver_tol=...")
    for k, v in SAMPLER_DEFAULTS["lsgm"][preset].items():
        config.setdefault(k, v)
    config.update(overrides)
    vae_sd = {k: v for k, v in strip_module(ckpt["vae_state_dict"], f"{path}: `vae_state_dict`").items()
              if vae_tensor_kept(k)}
    dae_raw = strip_module(ckpt["dae_state_dict"], f"{path}: `dae_state_dict`")
    vae = reference_vae(config)
    # The official score network's input width is the VAE's top-scale latent channels, computed when
    # the model is built rather than stored in args.
    config.setdefault("num_input_channels", int(vae.sgm_shape()[0]))
    expected = {k: v for k, v in shapes(vae).items() if vae_tensor_kept(k)}
    check_against(expected, {k: tuple(v.shape) for k, v in vae_sd.items()}, f"{path}: `vae_state_dict`")
    dae = reference_net("lsgm", config)
    check_against(shapes(dae), {k: tuple(v.shape) for k, v in dae_raw.items()}, f"{path}: `dae_state_dict`")
    score_names = [f"score.{k}" for k in dae_raw]
    # EMA(opt, ema_decay) applies no EMA when ema_decay <= 0; its swap is then a no-op.
    ema_decay = config.get("ema_decay", 0.9999)
    if "dae_optimizer" in ckpt and isinstance(ema_decay, (int, float)) and ema_decay <= 0:
        sources = Provenance("dae_state_dict (args.ema_decay <= 0: the run kept no EMA)")
        sources.take("dae_state_dict", score_names)
        dae_sd = dae_raw
    elif "dae_optimizer" in ckpt:
        dae_sd, taken, frozen = swap_in_optimizer_ema(dae_raw, dae, ckpt["dae_optimizer"],
                                                      f"{path}: `dae_optimizer`", prefix="score.")
        sources = Provenance("dae_optimizer state `ema` over dae_state_dict (EMA.swap_parameters_with_ema, "
                                "as evaluate_vada.py does for checkpoint.pt)")
        sources.take("dae_optimizer state `ema`", taken)
        sources.take("dae_state_dict", frozen, FROZEN_WHY, list_names=True)
        sources.take("dae_state_dict", [n for n in score_names if n not in set(taken) | set(frozen)],
                     "buffers: not parameters", list_names=True)
    else:
        sources = Provenance("dae_state_dict saved with the EMA swapped in (checkpoint_fid.pt, "
                                "checkpoint_nll.pt)")
        sources.take("dae_state_dict", score_names)
        dae_sd = dae_raw
    sources.take("vae_state_dict", [f"vae.{k}" for k in vae_sd], "the VAE has no EMA")
    sources.args_backfilled = {k: LSGM_ARGS_BACKFILL[k] for k in backfilled}
    sd = {f"vae.{k}": v for k, v in vae_sd.items()}
    sd.update({f"score.{k}": v for k, v in dae_sd.items()})
    return preset, config, sd, sources


CONVERTERS = {"cld": convert_cld, "ddgan": convert_ddgan, "lsgm": convert_lsgm}


def convert(family, checkpoint, out, preset=None, overrides=None):
    if family not in CONVERTERS:
        raise ConvertError(f"unknown family `{family}`; expected one of {', '.join(CONVERTERS)}")
    out = Path(out)
    if out.exists():
        raise ConvertError(f"{out}: already exists; choose a new output directory")
    ckpt = load_checkpoint(checkpoint)
    preset, config, sd, sources = CONVERTERS[family](ckpt, Path(checkpoint), preset, overrides or {})
    tensors = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            raise ConvertError(f"{checkpoint}: `{k}` is not a floating-point tensor")
        # Views into shared EMA storages are materialised here (clone), in fp32.
        t = v.detach().to(torch.float32).contiguous().clone()
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ConvertError(f"{checkpoint}: `{k}` has {bad} non-finite values (NaN or Inf) of {t.numel()}; "
                               "the checkpoint was saved after training diverged")
        tensors[k] = t
    doc = {
        "format": FORMAT,
        "family": family,
        "preset": preset,
        "config": config,
        "source": {"file": Path(checkpoint).name, "sha256": sha256(checkpoint),
                   "weights": sources.doc(len(tensors))},
        "tensors": len(tensors),
        "parameters": int(sum(t.numel() for t in tensors.values())),
    }
    if sources.args_backfilled:
        # Arguments an older code version did not store, set as the official loader sets them.
        doc["source"]["args_backfilled"] = sources.args_backfilled
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_safetensors(tmp / "model.safetensors", tensors, {"format": FORMAT, "family": family})
        with open(tmp / "config.json", "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return doc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("family")
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter")
    args = ap.parse_args(argv)
    try:
        doc = convert(args.family, args.checkpoint, args.out, args.preset, parse_set(args.set))
    except ConvertError as e:
        print(f"convert: {e}", file=sys.stderr)
        return 2
    except (KeyError, AttributeError, AssertionError, ValueError, TypeError, NotImplementedError) as e:
        # The reference network could not be built from the configuration: a --set value of the wrong
        # kind, or args of an older code version lacking a field.
        print(f"convert: the configuration does not describe a buildable {args.family} model "
              f"({type(e).__name__}: {e}); check --preset and --set", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {doc['family']} ({doc['preset']}), {doc['tensors']} tensors, "
          f"{doc['parameters']:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
