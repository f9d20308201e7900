"""tools/convert.py on checkpoints written in each official format (the released files are not
reachable here, so they are rebuilt from the reference networks, whose state_dict keys equal the
official ones): the EMA weights end up in model.safetensors under the official names, config.json
describes them, and every kind of bad input is one clear error with no output directory left behind.

    python -m pytest tools/tests/test_convert.py -q
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import convert  # noqa: E402
from official_checkpoints import optimizer_state_with_ema  # noqa: E402
from reference import ncsnpp, nvae  # noqa: E402
from tests.official import official  # noqa: E402

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
    groups = {g["source"]: g for g in doc["source"]["weights"]["from"]}
    assert groups["ema.shadow_params"]["tensors"] == len(trainable)
    assert groups["model"]["names"] == sorted(set(raw) - set(trainable)) == ["all_modules.0.W"]


def lsgm_args(**over):
    vae = dict(nvae.PRESETS["mnist"])
    vae.update(num_channels_enc=16, num_channels_dec=16, num_groups_per_scale=2, num_latent_per_group=4)
    score = dict(ncsnpp.PRESETS["lsgm"]["mnist"])
    score.update(num_channels_dae=16, num_cell_per_scale_dae=1)
    score.pop("num_input_channels")  # the official args do not hold it; it comes from the VAE
    merged = dict(vae)
    merged.update({k: v for k, v in score.items() if k not in vae})
    merged.update(sde_type="vpsde", sigma2_0=0.0, beta_start=0.1, beta_end=20.0, ema_decay=0.9999)
    merged.update(over)
    return argparse.Namespace(**merged)


def lsgm_parts(args, seed):
    """(vae_sd, dae reference network, raw dae_sd) for `args`."""
    vae = nvae.NVAE(vars(args))
    cfg = dict(vars(args), num_input_channels=vae.sgm_shape()[0])
    dae = ncsnpp.build("lsgm", cfg)
    vae_sd = {k: (v.clone() if not v.is_floating_point() else torch.randn(v.shape) * 0.1)
              for k, v in vae.state_dict().items()}
    return vae, vae_sd, dae, randomised(dae, seed)


def save_lsgm(path, args, vae_sd, dae_sd, dae_optimizer=None):
    content = {"args": args, "epoch": 1, "global_step": 1, "vae_state_dict": vae_sd, "dae_state_dict": dae_sd}
    if dae_optimizer is not None:
        content["dae_optimizer"] = dae_optimizer
    torch.save(content, path)


def source_groups(doc):
    return {(g["source"], g.get("why")): g for g in doc["source"]["weights"]["from"]}


def test_lsgm_checkpoint_takes_ema_from_the_optimizer_state(tmp_path):
    args = lsgm_args()
    vae, vae_sd, dae, dae_sd = lsgm_parts(args, 3)
    opt = optimizer_state_with_ema(dae, dae_sd, lambda n, v: v + 2.0)
    ckpt = tmp_path / "checkpoint.pt"
    save_lsgm(ckpt, args, vae_sd, dae_sd, opt)
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    for k, v in dae_sd.items():
        assert torch.equal(got["score." + k], v + 2.0), k
    for k, v in vae_sd.items():
        if k.endswith("num_batches_tracked") or k.endswith("weight_normalized"):
            assert "vae." + k not in got
        else:
            assert torch.equal(got["vae." + k], v.float()), k
    doc = json.loads((out / "config.json").read_text())
    assert doc["config"]["num_input_channels"] == vae.sgm_shape()[0]
    assert doc["preset"] == "mnist" and doc["config"]["ode_eps"] == 1e-5 and doc["config"]["ode_solver_tol"] == 1e-5
    groups = source_groups(doc)
    assert groups[("dae_optimizer state `ema`", None)]["tensors"] == len(dae_sd)
    assert groups[("vae_state_dict", "the VAE has no EMA")]["tensors"] == sum(1 for k in got if k.startswith("vae."))
    assert "swap_parameters_with_ema" in doc["source"]["weights"]["rule"]
    assert "args_backfilled" not in doc["source"]


def test_lsgm_fourier_embedding_keeps_the_frozen_w_from_the_state_dict(tmp_path):
    """--embedding_type fourier: `temb_fun.w` is requires_grad=False, so the official EMA keeps no
    entry for it and the swap leaves the state dict's value; every other parameter takes its EMA."""
    args = lsgm_args(embedding_type="fourier")
    _, vae_sd, dae, dae_sd = lsgm_parts(args, 7)
    frozen = [n for n, p in dae.named_parameters() if not p.requires_grad]
    assert frozen == ["temb_fun.w"]
    opt = optimizer_state_with_ema(dae, dae_sd, lambda n, v: v - 1.0)
    index = {n: i for i, (n, _) in enumerate(dae.named_parameters())}
    assert index["temb_fun.w"] not in opt["state"], "no optimizer state for a frozen parameter"
    ckpt = tmp_path / "checkpoint.pt"
    save_lsgm(ckpt, args, vae_sd, dae_sd, opt)
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    assert torch.equal(got["score.temb_fun.w"], dae_sd["temb_fun.w"])
    for k, v in dae_sd.items():
        if k != "temb_fun.w":
            assert torch.equal(got["score." + k], v - 1.0), k
    groups = source_groups(json.loads((out / "config.json").read_text()))
    kept = groups[("dae_state_dict", convert.FROZEN_WHY)]
    assert kept["names"] == ["score.temb_fun.w"] and kept["tensors"] == 1
    assert groups[("dae_optimizer state `ema`", None)]["tensors"] == len(dae_sd) - 1
    # A resumed run (--cont_training) loads this state into a fresh optimizer by index and saves it
    # again: the same entries, so the same conversion.
    resumed = torch.optim.Adam(copy.deepcopy(dae).parameters())
    resumed.load_state_dict(opt)
    ckpt2 = tmp_path / "resumed" / "checkpoint.pt"
    ckpt2.parent.mkdir()
    save_lsgm(ckpt2, args, vae_sd, dae_sd, resumed.state_dict())
    rc, out2 = run(tmp_path, ["lsgm", str(ckpt2)], out="out2")
    assert rc == 0
    again = load_file(str(out2 / "model.safetensors"))
    assert set(again) == set(got) and all(torch.equal(again[k], got[k]) for k in got)


def test_lsgm_trainable_parameter_without_ema_is_named(tmp_path, capsys):
    args = lsgm_args(embedding_type="fourier")
    _, vae_sd, dae, dae_sd = lsgm_parts(args, 8)
    opt = optimizer_state_with_ema(dae, dae_sd, lambda n, v: v)
    index = {n: i for i, (n, _) in enumerate(dae.named_parameters())}
    victim = "all_modules.0.weight"
    del opt["state"][index[victim]]["ema"]
    ckpt = tmp_path / "checkpoint.pt"
    save_lsgm(ckpt, args, vae_sd, dae_sd, opt)
    rc, _ = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"trainable parameter `{victim}` (optimizer index {index[victim]}) has no `ema`" in err, err
    assert leftovers(tmp_path) == []
    # An optimizer of another configuration (a different parameter count) is refused up front.
    opt = optimizer_state_with_ema(dae, dae_sd, lambda n, v: v)
    opt["param_groups"][0]["params"] = opt["param_groups"][0]["params"][:-1]
    save_lsgm(ckpt, args, vae_sd, dae_sd, opt)
    rc, _ = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 2 and f"covers {len(index) - 1} parameters, the network has {len(index)}" in capsys.readouterr().err


def test_lsgm_vae_without_bn_step_counters_converts(tmp_path):
    """`num_batches_tracked` is a BN step counter no inference reads (and older PyTorch did not write
    it); a VAE state dict without it converts to the same weights."""
    args = lsgm_args()
    _, vae_sd, _, dae_sd = lsgm_parts(args, 17)
    counters = [k for k in vae_sd if k.endswith("num_batches_tracked")]
    assert counters
    ckpt = tmp_path / "checkpoint_fid.pt"
    save_lsgm(ckpt, args, {k: v for k, v in vae_sd.items() if k not in counters}, dae_sd)
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(got["vae." + k], v) for k, v in vae_sd.items() if k not in counters
               and not k.endswith("weight_normalized"))


def test_a_non_finite_weight_is_named_and_nothing_is_written(tmp_path, capsys):
    net = ncsnpp.build("ddgan", small("ddgan", "cifar10", DDGAN_SMALL))
    sd = {"module." + k: v for k, v in randomised(net, 18).items()}
    sd["module.all_modules.0.weight"][3, 5] = float("nan")
    ckpt = tmp_path / "netG_5.pth"
    torch.save(sd, ckpt)
    rc, _ = run(tmp_path, ["ddgan", str(ckpt), "--preset", "cifar10"] + sum([["--set", s] for s in sets(DDGAN_SMALL)], []))
    assert rc == 2
    assert "`all_modules.0.weight` has 1 non-finite values" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_lsgm_without_ema_uses_dae_state_dict(tmp_path):
    """ema_decay 0: the official EMA wrapper applies none and its swap is a no-op."""
    args = lsgm_args(ema_decay=0.0)
    _, vae_sd, dae, dae_sd = lsgm_parts(args, 9)
    opt = optimizer_state_with_ema(dae, dae_sd, None)
    assert all("ema" not in st for st in opt["state"].values())
    ckpt = tmp_path / "checkpoint.pt"
    save_lsgm(ckpt, args, vae_sd, dae_sd, opt)
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(got["score." + k], v) for k, v in dae_sd.items())
    assert "ema_decay" in json.loads((out / "config.json").read_text())["source"]["weights"]["rule"]


def test_lsgm_args_of_older_code_are_backfilled_as_the_official_loader_does(tmp_path):
    """evaluate_vada.py sets num_x_bits = 8, channel_mult = [1, 2] and mixing_logit_init = -3 on args
    that lack them (checkpoints of older code versions)."""
    args = lsgm_args(channel_mult=[1, 2], num_x_bits=8, num_preprocess_blocks=1, num_postprocess_blocks=1)
    _, vae_sd, dae, dae_sd = lsgm_parts(args, 10)
    for k in ("num_x_bits", "channel_mult", "mixing_logit_init"):
        delattr(args, k)
    ckpt = tmp_path / "checkpoint_fid.pt"
    save_lsgm(ckpt, args, vae_sd, dae_sd)
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    doc = json.loads((out / "config.json").read_text())
    assert doc["source"]["args_backfilled"] == {"channel_mult": [1, 2], "mixing_logit_init": -3.0, "num_x_bits": 8}
    assert doc["config"]["num_x_bits"] == 8 and doc["config"]["channel_mult"] == [1, 2]


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
    assert "swapped in" in doc["source"]["weights"]["rule"]


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


def ddgan_args(**over):
    a = dict(small("ddgan", "cifar10", DDGAN_SMALL), dataset="cifar10", use_ema=True, ema_decay=0.9999,
             exp="small", num_epoch=10, lr_g=1.5e-4)
    a.update(over)
    return argparse.Namespace(**a)


def save_ddgan_content(path, args, raw, opt_state):
    torch.save({"epoch": 5, "global_step": 50, "args": args, "netG_dict": {"module." + k: v for k, v in raw.items()},
                "optimizerG": opt_state, "schedulerG": {}, "netD_dict": {"module.x": torch.zeros(1)},
                "optimizerD": {}, "schedulerD": {}}, path)


def test_ddgan_content_file_takes_the_ema_and_the_runs_own_args(tmp_path):
    """content.pth (train_ddgan.py --save_content): the EMA from optimizerG swapped in as the trainer
    does before writing netG_<epoch>.pth; the architecture from its args (no --preset, no --set)."""
    args = ddgan_args(embedding_type="fourier")
    net = ncsnpp.build("ddgan", vars(args))
    raw = randomised(net, 12)
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen == ["all_modules.0.W"], frozen
    ckpt = tmp_path / "content.pth"
    save_ddgan_content(ckpt, args, raw, optimizer_state_with_ema(net, raw, lambda n, v: v * 3.0))
    rc, out = run(tmp_path, ["ddgan", str(ckpt)])
    assert rc == 0
    got = load_file(str(out / "model.safetensors"))
    assert set(got) == set(raw)
    for k, v in raw.items():
        assert torch.equal(got[k], v if k in frozen else v * 3.0), k
    doc = json.loads((out / "config.json").read_text())
    assert doc["preset"] == "cifar10" and doc["config"]["num_channels_dae"] == 16
    assert doc["config"]["embedding_type"] == "fourier"
    groups = {g["source"]: g for g in doc["source"]["weights"]["from"]}
    assert groups["netG_dict"]["names"] == frozen and groups["netG_dict"]["why"] == convert.FROZEN_WHY
    # Without --use_ema the run's netG files hold the raw weights, and so does the conversion.
    ckpt2 = tmp_path / "content2.pth"
    save_ddgan_content(ckpt2, ddgan_args(use_ema=False, embedding_type="fourier"), raw, optimizer_state_with_ema(net, raw, None))
    rc, out2 = run(tmp_path, ["ddgan", str(ckpt2)], out="out2")
    assert rc == 0
    got = load_file(str(out2 / "model.safetensors"))
    assert all(torch.equal(got[k], v) for k, v in raw.items())
    assert "use_ema" in json.loads((out2 / "config.json").read_text())["source"]["weights"]["rule"]


# ---- against the official EMA code (skipped without TRILEMMA_OFFICIAL_DIR) ------------------------


def _train_a_few_steps(opt, net, loss_of, steps=3):
    for _ in range(steps):
        net.zero_grad(set_to_none=True)
        loss_of(net).backward()
        opt.step()


def test_lsgm_conversion_equals_the_official_ema_swap(tmp_path):
    """Official util/ema.py around Adam on the Fourier-embedding score network, a few real steps,
    checkpoint.pt as train_vada.py writes it: the converted weights equal the parameters after the
    official swap_parameters_with_ema, the frozen `temb_fun.w` included."""
    with official("lsgm") as imp:
        EMA = imp("util.ema").EMA
    args = lsgm_args(embedding_type="fourier")
    vae, vae_sd, dae, dae_sd = lsgm_parts(args, 13)
    dae.load_state_dict(dae_sd)
    g = torch.Generator().manual_seed(14)
    z, t = torch.randn(2, *vae.sgm_shape(), generator=g), torch.tensor([0.3, 0.8])
    opt = EMA(torch.optim.Adam(dae.parameters(), lr=1e-2), ema_decay=0.5)
    # The mixing logit enters the official loss through the mixed prediction; here through a sum.
    _train_a_few_steps(opt, dae, lambda m: (m(z, t) + m.mixing_logit).square().mean())
    raw = {k: v.detach().clone() for k, v in dae.state_dict().items()}
    ckpt = tmp_path / "checkpoint.pt"
    # EMA wraps the inner optimizer's state and param_groups, so both state_dicts are the same content.
    save_lsgm(ckpt, args, vae_sd, raw, opt.optimizer.state_dict())
    rc, out = run(tmp_path, ["lsgm", str(ckpt)])
    assert rc == 0
    opt.swap_parameters_with_ema(store_params_in_ema=True)
    swapped = dae.state_dict()
    got = load_file(str(out / "model.safetensors"))
    for k, v in swapped.items():
        assert torch.equal(got["score." + k], v), k
    assert not torch.equal(swapped["all_modules.0.weight"], raw["all_modules.0.weight"]), "EMA differs from raw"
    assert torch.equal(swapped["temb_fun.w"], raw["temb_fun.w"])


def test_ddgan_content_conversion_equals_the_official_ema_swap(tmp_path):
    with official("ddgan") as imp:
        EMA = imp("EMA").EMA
    args = ddgan_args(embedding_type="fourier")
    net = ncsnpp.build("ddgan", vars(args))
    net.load_state_dict(randomised(net, 15))
    g = torch.Generator().manual_seed(16)
    x, tt, zz = torch.randn(2, 3, 16, 16, generator=g), torch.tensor([1, 3]), torch.randn(2, 8, generator=g)
    opt = EMA(torch.optim.Adam(net.parameters(), lr=1e-2), ema_decay=0.5)
    _train_a_few_steps(opt, net, lambda m: m(x, tt, zz).square().mean())
    raw = {k: v.detach().clone() for k, v in net.state_dict().items()}
    ckpt = tmp_path / "content.pth"
    save_ddgan_content(ckpt, args, raw, opt.optimizer.state_dict())
    rc, out = run(tmp_path, ["ddgan", str(ckpt)])
    assert rc == 0
    opt.swap_parameters_with_ema(store_params_in_ema=True)
    got = load_file(str(out / "model.safetensors"))
    for k, v in net.state_dict().items():
        assert torch.equal(got[k], v), k
