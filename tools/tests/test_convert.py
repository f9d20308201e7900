"""tools/convert.py on checkpoints written in each official format (the released files are not
reachable here, so they are rebuilt from the reference networks, whose state_dict keys equal the
official ones): the EMA weights end up in model.safetensors under the official names, config.json
describes them, and every kind of bad input is one clear error with no output directory left behind.

    python -m pytest tools/tests/test_convert.py -q
"""
import argparse
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import convert  # noqa: E402
from reference import ncsnpp, nvae  # noqa: E402

torch.set_num_threads(1)

# Small configurations of the released architectures, given to the converter with --set.
DDGAN_SMALL = {"num_channels_dae": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "image_size": 16, "n_mlp": 2,
               "z_emb_dim": 32, "nz": 8}
CLD_SMALL = {"n_channels": 16, "ch_mult": "1,2", "n_resblocks": 1, "image_size": 16, "attn_resolutions": "8"}


def randomised(module, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in module.state_dict().items()}


def small(family, preset, overrides):
    cfg = dict(ncsnpp.PRESETS[family][preset])
    cfg.update(convert.SAMPLER_DEFAULTS[family].get(preset, {}))
    cfg.update(overrides)
    return cfg


def sets(d):
    return [f"{k}={json.dumps(v)}" for k, v in d.items()]


def run(tmp_path, argv, out="out"):
    out_dir = tmp_path / out
    rc = convert.main(argv + ["--out", str(out_dir)])
    return rc, out_dir


def leftovers(tmp_path, out="out"):
    return [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out}.") or p.name == out]


def test_ddgan_netg_file_converts_with_module_prefix_stripped(tmp_path):
    net = ncsnpp.build("ddgan", small("ddgan", "cifar10", DDGAN_SMALL))
    sd = randomised(net, 1)
    # As saved by DDP: `module.` prefix; EMA tensors as views into one stacked storage per shape.
    stacks = {}
    saved = {}
    for k, v in sd.items():
        stacks.setdefault(tuple(v.shape), []).append((k, v))
    for shape, items in stacks.items():
        stack = torch.stack([v for _, v in items])
        for i, (k, _) in enumerate(items):
            saved["module." + k] = stack[i]
    ckpt = tmp_path / "netG_1200.pth"
    torch.save(saved, ckpt)
    rc, out = run(tmp_path, ["ddgan", str(ckpt), "--preset", "cifar10"] + sum([["--set", s] for s in sets(DDGAN_SMALL)], []))
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    assert set(got) == set(sd)
    for k in sd:
        assert torch.equal(got[k], sd[k]), k
    doc = json.loads((out / "config.json").read_text())
    assert doc["family"] == "ddgan" and doc["preset"] == "cifar10" and doc["format"] == convert.FORMAT
    assert doc["config"]["num_channels_dae"] == 16 and doc["config"]["num_timesteps"] == 4
    assert doc["tensors"] == len(sd) and doc["source"]["file"] == "netG_1200.pth"
    assert len(doc["source"]["sha256"]) == 64


def test_cld_takes_ema_shadows_over_trainable_parameters(tmp_path):
    cfg = small("cld", "cifar10", CLD_SMALL)
    net = ncsnpp.build("cld", cfg)
    raw = randomised(net, 2)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert len(trainable) < len(raw), "the Fourier projection W is not trainable"
    shadows = [raw[n] + 1.0 for n in trainable]
    ckpt = tmp_path / "checkpoint_800000.pth"
    torch.save({"model": {"module." + k: v for k, v in raw.items()}, "ema": {"decay": 0.9999, "num_updates": 5,
                "shadow_params": shadows}, "optimizer": {}, "step": 5}, ckpt)
    rc, out = run(tmp_path, ["cld", str(ckpt), "--preset", "cifar10"] + sum([["--set", s] for s in sets(CLD_SMALL)], []))
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    for n, s in zip(trainable, shadows):
        assert torch.equal(got[n], s), n
    for n in set(raw) - set(trainable):
        assert torch.equal(got[n], raw[n]), n  # e.g. all_modules.0.W from `model`
    doc = json.loads((out / "config.json").read_text())
    assert doc["config"]["beta0"] == 4.0 and doc["config"]["numerical_eps"] == 1e-9


def lsgm_args():
    vae = dict(nvae.PRESETS["mnist"])
    vae.update(num_channels_enc=16, num_channels_dec=16, num_groups_per_scale=2, num_latent_per_group=4)
    score = dict(ncsnpp.PRESETS["lsgm"]["mnist"])
    score.update(num_channels_dae=16, num_cell_per_scale_dae=1)
    score.pop("num_input_channels")  # the official args do not hold it; it comes from the VAE
    merged = dict(vae)
    merged.update({k: v for k, v in score.items() if k not in vae})
    merged.update(sde_type="vpsde", sigma2_0=0.0, beta_start=0.1, beta_end=20.0)
    return argparse.Namespace(**merged)


def test_lsgm_checkpoint_takes_ema_from_the_optimizer_state(tmp_path):
    args = lsgm_args()
    vae = nvae.NVAE(vars(args))
    cfg = dict(vars(args))
    cfg["num_input_channels"] = vae.sgm_shape()[0]
    dae = ncsnpp.build("lsgm", cfg)
    vae_sd = {k: (v.clone() if not v.is_floating_point() else torch.randn(v.shape) * 0.1)
              for k, v in vae.state_dict().items()}
    dae_sd = randomised(dae, 3)
    emas = {i: {"ema": v + 2.0} for i, v in enumerate(dae_sd.values())}
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"args": args, "epoch": 1, "global_step": 1, "vae_state_dict": vae_sd, "dae_state_dict": dae_sd,
                "dae_optimizer": {"state": emas, "param_groups": []}}, ckpt)
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    for i, (k, v) in enumerate(dae_sd.items()):
        assert torch.equal(got["score." + k], v + 2.0), k
    for k, v in vae_sd.items():
        if k.endswith("num_batches_tracked") or k.endswith("weight_normalized"):
            assert "vae." + k not in got
        else:
            assert torch.equal(got["vae." + k], v.float()), k
    doc = json.loads((out / "config.json").read_text())
    assert doc["config"]["num_input_channels"] == vae.sgm_shape()[0]
    assert doc["preset"] == "mnist" and doc["config"]["ode_eps"] == 1e-5 and doc["config"]["ode_solver_tol"] == 1e-5
    assert "optimizer" in doc["source"]["weights"]


@pytest.mark.parametrize("mutate,needle", [
    (lambda sd: sd.pop("module.z_transform.1.weight"), "1 missing: z_transform.1.weight"),
    (lambda sd: sd.__setitem__("module.extra.weight", torch.zeros(1)), "1 unexpected: extra.weight"),
    (lambda sd: sd.__setitem__("module.all_modules.2.weight", torch.zeros(3, 3)), "`all_modules.2.weight` has shape [3, 3]"),
])
def test_ddgan_mismatches_are_named_and_nothing_is_written(tmp_path, mutate, needle, capsys):
    net = ncsnpp.build("ddgan", small("ddgan", "cifar10", DDGAN_SMALL))
    sd = {"module." + k: v for k, v in randomised(net, 4).items()}
    mutate(sd)
    ckpt = tmp_path / "netG.pth"
    torch.save(sd, ckpt)
    rc, _ = run(tmp_path, ["ddgan", str(ckpt), "--preset", "cifar10"] + sum([["--set", s] for s in sets(DDGAN_SMALL)], []))
    assert rc == 2
    assert needle in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    cases = [
        (["ddgan", str(tmp_path / "missing.pth")], "no such file"),
        (["ddgan", str(garbage)], "not a readable PyTorch checkpoint"),
        (["stylegan", str(garbage)], "unknown family `stylegan`"),
    ]
    for argv, needle in cases:
        rc, _ = run(tmp_path, argv)
        assert rc == 2, argv
        assert needle in capsys.readouterr().err, argv
    ok = tmp_path / "lsgm_like.pth"
    torch.save({"model": {}}, ok)
    rc, _ = run(tmp_path, ["lsgm", str(ok)])
    assert rc == 2 and "vae_state_dict" in capsys.readouterr().err
    rc, _ = run(tmp_path, ["cld", str(ok)])
    assert rc == 2 and "`model` and `ema`" in capsys.readouterr().err
    torch.save({"a.weight": torch.zeros(1)}, ok)
    rc, _ = run(tmp_path, ["ddgan", str(ok), "--preset", "nope"])
    assert rc == 2 and "unknown preset `nope`" in capsys.readouterr().err
    rc, _ = run(tmp_path, ["ddgan", str(ok)])
    assert rc == 2 and "choose --preset" in capsys.readouterr().err
    rc, _ = run(tmp_path, ["ddgan", str(ok), "--preset", "cifar10", "--set", "novalue"])
    assert rc == 2 and "key=value" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_existing_output_directory_is_refused(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    ok = tmp_path / "x.pth"
    torch.save({"a.weight": torch.zeros(1)}, ok)
    rc, _ = run(tmp_path, ["ddgan", str(ok), "--preset", "cifar10"])
    assert rc == 2 and "already exists" in capsys.readouterr().err


def test_cld_celeba_every_parameter_is_trainable(tmp_path):
    over = {"n_channels": 16, "ch_mult": "1,2", "n_resblocks": 1, "image_size": 16, "attn_resolutions": "8"}
    net = ncsnpp.build("cld", small("cld", "celeba_paper", over))
    raw = randomised(net, 5)
    names = [n for n, _ in net.named_parameters()]
    assert len(names) == len(raw), "no fixed Fourier projection in the positional-embedding configs"
    shadows = [raw[n] - 1.0 for n in names]
    ckpt = tmp_path / "checkpoint.pth"
    torch.save({"model": {"module." + k: v for k, v in raw.items()},
                "ema": {"decay": 0.9999, "num_updates": 1, "shadow_params": shadows}, "step": 1}, ckpt)
    rc, out = run(tmp_path, ["cld", str(ckpt), "--preset", "celeba_paper"] + sum([["--set", s] for s in sets(over)], []))
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(got[n], s) for n, s in zip(names, shadows))
    assert json.loads((out / "config.json").read_text())["config"]["numerical_eps"] == 1e-6


def test_lsgm_best_metric_file_uses_dae_state_dict(tmp_path):
    args = lsgm_args()
    vae = nvae.NVAE(vars(args))
    cfg = dict(vars(args), num_input_channels=vae.sgm_shape()[0])
    dae_sd = randomised(ncsnpp.build("lsgm", cfg), 6)
    vae_sd = {k: (v.clone() if not v.is_floating_point() else torch.randn(v.shape) * 0.1)
              for k, v in vae.state_dict().items()}
    ckpt = tmp_path / "checkpoint_fid.pt"
    torch.save({"args": args, "epoch": 1, "global_step": 1, "best_score_fid": 1.0, "best_score_nll": 1.0,
                "vae_state_dict": vae_sd, "dae_state_dict": dae_sd}, ckpt)
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(got["score." + k], v) for k, v in dae_sd.items())
    doc = json.loads((out / "config.json").read_text())
    assert "swapped in" in doc["source"]["weights"]


def test_every_preset_builds_on_the_meta_device():
    """The converter validates shapes against networks built on the meta device (no memory)."""
    for family, presets in ncsnpp.PRESETS.items():
        for name, cfg in presets.items():
            cfg = dict(cfg, **convert.SAMPLER_DEFAULTS[family].get(name, {}))
            assert convert.shapes(convert.reference_net(family, cfg)), (family, name)
    for name, cfg in nvae.PRESETS.items():
        assert convert.shapes(convert.reference_vae(dict(cfg))), name


def test_a_configuration_that_cannot_be_built_is_a_clear_error(tmp_path, capsys):
    ok = tmp_path / "x.pth"
    torch.save({"a.weight": torch.zeros(1)}, ok)
    rc, _ = run(tmp_path, ["ddgan", str(ok), "--preset", "cifar10", "--set", "ch_mult=\"oops\""])
    assert rc == 2
    assert "does not describe a buildable ddgan model" in capsys.readouterr().err
    assert leftovers(tmp_path) == []
