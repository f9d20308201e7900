#!/usr/bin/env python3
"""Writes the converted test models the Rust tests load: tests/models/<family>_small/.

For each family a small configuration of a released architecture is built with the reference
(`tools/reference`), given random weights, saved as an official-format checkpoint (DDGAN netG file, CLD
checkpoint with EMA shadows, LSGM checkpoint with args and optimizer EMA), and converted with
`tools/convert.py` exactly as a user would. Beside the converted model, each directory holds the inputs
of one `trilemma forward` call per network (`forward_<part>.inputs.safetensors`, NCHW, the names of
docs/model-format.md) and the expected outputs (`forward_<part>.expected.safetensors`, float64 reference
rounded once).

    python tools/make_test_models.py [--out tests/models]
"""
import argparse
import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import convert  # noqa: E402
from official_checkpoints import optimizer_state_with_ema  # noqa: E402
from reference import cld_sde, ddgan_posterior, lsgm_sde, ncsnpp, nvae  # noqa: E402
from st_io import save_safetensors  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CLD_SMALL = {"n_channels": 16, "ch_mult": "1,2", "n_resblocks": 1, "image_size": 16, "attn_resolutions": "8"}
DDGAN_SMALL = {"num_channels_dae": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "image_size": 16, "n_mlp": 2,
               "z_emb_dim": 32, "nz": 8}


def randomised(module, gen, scale=0.1):
    return {k: (torch.randn(v.shape, generator=gen, dtype=torch.float64) * scale).float()
            if v.is_floating_point() else v.clone() for k, v in module.state_dict().items()}


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).float()


def sets(d):
    return {k: v for k, v in d.items()}


def f64(module, sd):
    m = copy.deepcopy(module)
    m.load_state_dict(sd, strict=True)
    return m.double().eval()


def write_call(out, part, inputs, expected, what):
    save_safetensors(out / f"forward_{part}.inputs.safetensors", inputs, {"part": part, "description": what})
    save_safetensors(out / f"forward_{part}.expected.safetensors",
                     {k: v.float() for k, v in expected.items()}, {"part": part, "tolerance_rel_l2": "1e-5"})


def small_cfg(family, preset, over):
    cfg = dict(ncsnpp.PRESETS[family][preset])
    cfg.update(convert.SAMPLER_DEFAULTS[family].get(preset, {}))
    cfg.update(over)
    return cfg


def make_cld(tmp, out_root, gen):
    cfg = small_cfg("cld", "cifar10", CLD_SMALL)
    net = ncsnpp.build("cld", cfg)
    sd = randomised(net, gen)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    ckpt = tmp / "checkpoint_800000.pth"
    torch.save({"model": {"module." + k: v for k, v in sd.items()},
                "ema": {"decay": 0.9999, "num_updates": 1, "shadow_params": [sd[n] for n in trainable]},
                "optimizer": {}, "step": 1}, ckpt)
    out = out_root / "cld_small"
    convert.convert("cld", ckpt, out, "cifar10", CLD_SMALL)
    u, t = randn(gen, 3, 6, 16, 16), torch.tensor([0.01, 0.3, 0.9])
    with torch.no_grad():
        alpha = f64(net, sd)(u.double(), t.double())
    write_call(out, "score", {"u": u, "t": t}, {"alpha": alpha}, "CLD alpha(u, t), batch 3")
    # Whole SSCS and Euler-Maruyama runs with recorded draws (docs/sampling.md names), 5 NFE each,
    # with the fp32 network as the official sampler runs it.
    net32 = copy.deepcopy(net)
    net32.load_state_dict(sd, strict=True)
    net32.eval()
    ccfg = cld_sde.CONFIGS["cifar10"]
    n_steps, b = 5, 2

    def score_net(uu, tt):
        with torch.no_grad():
            return net32(uu, tt)

    for sampler in ("sscs", "em"):
        draws = {"prior.x": randn(gen, b, 3, 16, 16), "prior.v": randn(gen, b, 3, 16, 16)}
        u0 = cld_sde.prior_sample(ccfg, draws["prior.x"], draws["prior.v"])
        noises = []
        for i in range(n_steps - 1):
            if sampler == "sscs":
                draws[f"noise_a.{i}"], draws[f"noise_b.{i}"] = randn(gen, b, 6, 16, 16), randn(gen, b, 6, 16, 16)
                noises.append((draws[f"noise_a.{i}"], draws[f"noise_b.{i}"]))
            else:
                draws[f"noise.{i}"] = randn(gen, b, 6, 16, 16)
                noises.append(draws[f"noise.{i}"])
        run = cld_sde.sscs_sample if sampler == "sscs" else cld_sde.em_sample
        x, v = run(ccfg, score_net, u0, n_steps, noises)
        save_safetensors(out / f"sample_{sampler}.noise.safetensors", draws,
                         {"sampler": sampler, "n_discrete_steps": str(n_steps),
                          "description": f"every draw of a {n_steps}-NFE {sampler} run, batch {b}"})
        save_safetensors(out / f"sample_{sampler}.expected.safetensors", {"x": x.float(), "v": v.float()},
                         {"sampler": sampler, "n_discrete_steps": str(n_steps), "tolerance_rel_l2": "1e-5"})


def make_ddgan(tmp, out_root, gen):
    cfg = small_cfg("ddgan", "cifar10", DDGAN_SMALL)
    net = ncsnpp.build("ddgan", cfg)
    sd = randomised(net, gen)
    ckpt = tmp / "netG_1200.pth"
    torch.save({"module." + k: v for k, v in sd.items()}, ckpt)
    out = out_root / "ddgan_small"
    convert.convert("ddgan", ckpt, out, "cifar10", DDGAN_SMALL)
    x, t, z = randn(gen, 3, 3, 16, 16), torch.tensor([0, 1, 3]), randn(gen, 3, 8)
    with torch.no_grad():
        x0 = f64(net, sd)(x.double(), t, z.double())
    write_call(out, "generator", {"x_t": x, "t": t.float(), "z": z}, {"x0": x0},
               "DDGAN x0 = G(x_t, t index, z), batch 3")
    # The same call with `t` as the official sampler passes it (int64 step indices), and as int32;
    # the expected outputs are forward_generator.expected.safetensors.
    for dtype, name in ((torch.int64, "i64"), (torch.int32, "i32")):
        save_safetensors(out / f"forward_generator_{name}.inputs.safetensors", {"x_t": x, "t": t.to(dtype), "z": z},
                         {"part": "generator", "description": f"DDGAN x0 = G(x_t, t index as {dtype}, z), batch 3",
                          "expected": "forward_generator.expected.safetensors"})
    # A whole sampling run with recorded draws (docs/sampling.md names): x_T, z.{j}, noise.{j}.
    T, b = cfg["num_timesteps"], 3
    coefs = ddgan_posterior.PosteriorCoefficients.make(T, cfg["beta_min"], cfg["beta_max"])
    draws = {"x_T": randn(gen, b, 3, 16, 16)}
    for j in range(T):
        draws[f"z.{j}"] = randn(gen, b, cfg["nz"])
        if j < T - 1:
            draws[f"noise.{j}"] = randn(gen, b, 3, 16, 16)
    g64 = f64(net, sd)
    with torch.no_grad():
        x_0 = ddgan_posterior.sample(coefs, lambda x, t, z: g64(x, t, z), draws["x_T"].double(),
                                     [draws[f"z.{j}"].double() for j in range(T)],
                                     [draws[f"noise.{j}"].double() if j < T - 1 else None for j in range(T)])
    save_safetensors(out / "sample.noise.safetensors", draws,
                     {"sampler": "ddgan", "description": f"every draw of a {T}-step run, batch {b}"})
    save_safetensors(out / "sample.expected.safetensors", {"x_0": x_0.float()},
                     {"sampler": "ddgan", "tolerance_rel_l2": "1e-5"})


def lsgm_args(**over):
    vae = dict(nvae.PRESETS["mnist"])
    vae.update(num_channels_enc=8, num_channels_dec=8, num_groups_per_scale=2, num_latent_per_group=4,
               num_preprocess_cells=2, num_postprocess_cells=2)
    score = dict(ncsnpp.PRESETS["lsgm"]["mnist"])
    score.update(num_channels_dae=16, num_cell_per_scale_dae=1, embedding_dim=32)
    score.pop("num_input_channels")
    merged = dict(vae)
    merged.update({k: v for k, v in score.items() if k not in vae})
    merged.update(sde_type="vpsde", sigma2_0=0.0, beta_start=0.1, beta_end=20.0, ema_decay=0.9999)
    merged.update(over)
    return argparse.Namespace(**merged)


def nvae_state(vae, gen):
    """Random NVAE weights as the official code saves them: positive running variances, and each
    `weight_normalized` buffer equal to its `weight`."""
    sd = randomised(vae, gen)
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = sd[k].abs() + 0.5
    return {k: sd[k.replace("weight_normalized", "weight")] if k.endswith("weight_normalized") else v
            for k, v in sd.items()}


def make_lsgm(tmp, out_root, gen):
    args = lsgm_args()
    vae = nvae.NVAE(vars(args)).eval()
    cfg = dict(vars(args))
    cfg["num_input_channels"] = vae.sgm_shape()[0]
    dae = ncsnpp.build("lsgm", cfg)
    vae_sd = nvae_state(vae, gen)
    dae_sd = randomised(dae, gen)
    ckpt = tmp / "checkpoint.pt"
    torch.save({"args": args, "epoch": 1, "global_step": 1, "vae_state_dict": vae_sd, "dae_state_dict": dae_sd,
                "dae_optimizer": optimizer_state_with_ema(dae, dae_sd, lambda name, v: v)}, ckpt)
    out = out_root / "lsgm_small"
    convert.convert("lsgm", ckpt, out)
    v64, d64 = f64(vae, vae_sd), f64(dae, dae_sd)
    c, h, w = vae.sgm_shape()
    z, t = randn(gen, 2, c, h, w), torch.tensor([1e-3, 0.6])
    with torch.no_grad():
        eps = d64(z.double(), t.double())
    write_call(out, "score", {"z_t": z, "t": t}, {"eps": eps}, "LSGM eps'(z_t, t) (unmixed), batch 2")
    x = torch.rand(2, 1, 32, 32, generator=gen, dtype=torch.float64).float() * 2 - 1
    noise = [randn(gen, *s) for s in vae.group_shapes(2)]
    with torch.no_grad():
        enc = v64.encode(x.double(), [n.double() for n in noise])
    expected = {}
    for g in range(len(noise)):
        expected.update({f"mu.{g}": enc["mu"][g], f"log_sigma.{g}": enc["log_sigma"][g], f"eps.{g}": enc["eps"][g]})
    write_call(out, "encoder", {"x": x, **{f"noise.{g}": n for g, n in enumerate(noise)}}, expected,
               "NVAE encoder: posterior per group, batch 2")
    groups = [randn(gen, *s) for s in vae.group_shapes(2)]
    with torch.no_grad():
        logits = v64.decode([e.double() for e in groups])
    write_call(out, "decoder", {f"eps.{g}": e for g, e in enumerate(groups)}, {"logits": logits},
               "NVAE decoder: Bernoulli logits, batch 2")
    # A whole sampling run (latent ODE with the mixed score, decoder, image) with its recorded draw,
    # fp32 networks as the official evaluation runs them.
    doc = json.loads((out / "config.json").read_text())["config"]
    sde = lsgm_sde.LSGMSDE(doc["sde_type"], doc["beta_start"], doc["beta_end"], doc["sigma2_0"])
    v32, d32 = copy.deepcopy(vae), copy.deepcopy(dae)
    v32.load_state_dict(vae_sd, strict=True)
    d32.load_state_dict(dae_sd, strict=True)
    v32.eval()
    d32.eval()
    prior = randn(gen, 2, c, h, w)
    with torch.no_grad():
        z_0, nfe, _ = lsgm_sde.ode_sample(sde, lambda zz, tt: d32(zz, tt), d32.mixing_logit, prior,
                                          doc["ode_eps"], doc["ode_solver_tol"], doc["temp"])
        logits_s, image = v32.sample_from_sgm(z_0, None, 1.0)
    save_safetensors(out / "sample.noise.safetensors", {"prior.z": prior},
                     {"sampler": "ode", "description": "the prior draw of a latent-ODE run, batch 2"})
    save_safetensors(out / "sample.expected.safetensors",
                     {"z_0": z_0.float(), "logits": logits_s.float(), "image": image.float()},
                     {"sampler": "ode", "nfe": str(nfe), "tolerance_rel_l2": "1e-5"})


def make_lsgm_fourier(tmp, out_root, gen):
    """LSGM with --embedding_type fourier: the score network's `temb_fun.w` is frozen, so the official
    EMA keeps no entry for it. The checkpoint.pt optimizer state is in the official form (no state for
    the frozen parameter); the EMA differs from the raw weights, and the expected output is that of the
    network after the official swap (EMA for the trainable parameters, `temb_fun.w` as stored)."""
    args = lsgm_args(embedding_type="fourier", embedding_scale=16.0)
    vae = nvae.NVAE(vars(args)).eval()
    cfg = dict(vars(args), num_input_channels=vae.sgm_shape()[0])
    dae = ncsnpp.build("lsgm", cfg)
    assert [n for n, p in dae.named_parameters() if not p.requires_grad] == ["temb_fun.w"]
    vae_sd = nvae_state(vae, gen)
    raw = randomised(dae, gen)
    raw["temb_fun.w"] = randn(gen, *raw["temb_fun.w"].shape) * 16.0  # W ~ N(0, scale^2) as at init
    ema = {k: (v + randn(gen, *v.shape) * 0.05) for k, v in raw.items() if k != "temb_fun.w"}
    ckpt = tmp / "checkpoint.pt"
    torch.save({"args": args, "epoch": 1, "global_step": 1, "vae_state_dict": vae_sd, "dae_state_dict": raw,
                "dae_optimizer": optimizer_state_with_ema(dae, raw, lambda name, v: ema[name])}, ckpt)
    out = out_root / "lsgm_fourier_small"
    convert.convert("lsgm", ckpt, out)
    swapped = dict(raw, **ema)
    c, h, w = vae.sgm_shape()
    z, t = randn(gen, 2, c, h, w), torch.tensor([1e-3, 0.6])
    with torch.no_grad():
        eps = f64(dae, swapped)(z.double(), t.double())
    write_call(out, "score", {"z_t": z, "t": t}, {"eps": eps},
               "LSGM (Fourier time embedding) eps'(z_t, t) with the EMA swapped in, batch 2")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "models"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    out_root = Path(a.out)
    out_root.mkdir(parents=True, exist_ok=True)
    for i, make in enumerate((make_cld, make_ddgan, make_lsgm, make_lsgm_fourier)):
        name = make.__name__.removeprefix("make_") + "_small"
        shutil.rmtree(out_root / name, ignore_errors=True)
        gen = torch.Generator().manual_seed(7001 + i)
        with tempfile.TemporaryDirectory() as tmp:
            make(Path(tmp), out_root, gen)
        size = sum(p.stat().st_size for p in (out_root / name).iterdir())
        print(f"{name}: {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
