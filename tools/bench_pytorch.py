#!/usr/bin/env python3
"""PyTorch baseline for the engine's benchmarks, on the same GPU in the same run.

Each case carries the id of the engine benchmark it is compared with (benches/*.rs). Timing: CUDA
events around a batch of back-to-back calls after warm-up, repeated; the median per call is reported.

    python3 tools/bench_pytorch.py --out pytorch-baseline.json [--quick] [--only PREFIX] [--device cuda]

Cases:
- memory roofline: `copy/d2d/256MiB` (Tensor.clone) and `randn/philox_<dtype>/<n>` (Tensor.normal_);
- kernels: the speed model's shapes `model/conv.../b<batch>` and `model/attention.../b<batch>`
  (benches/speed_model.tsv): cuDNN conv2d and scaled_dot_product_attention at bf16, channels_last;
- networks: `net/<family>/<preset>/b<batch>/<mode>` for every released configuration, one call of
  the official-size network built by tools/reference (random weights; the speed does not depend on
  them) in the modes `fp32` (eager), `bf16cl` (eager, bf16 weights and activations, channels_last) and
  `compile` (torch.compile max-autotune of the bf16 channels_last model), at batch 1 and a throughput
  batch;
- sampling: `sample/ddgan/<preset>/b<batch>/<mode>` (the whole T-step DDGAN run: generator calls
  and posterior draws) and `sample/cld/<preset>/sscs<N>/b<batch>/<mode>` (N-step SSCS with the
  denoising step, N = 150, 50 with --quick), and the adaptive probability-flow ODE runs
  `sample/cld/<preset>/ode/b1/<mode>` and `sample/lsgm/<preset>/ode/b1/<mode>` (latent ODE plus the
  NVAE decoder), with the solver on the host and the network on the device as in the official code;
  their NFE is recorded (random weights give other step counts than trained ones).

Also records each network's parameter count and FLOPs per call (torch.utils.flop_counter, counted on
the meta device, 2 FLOPs per multiply-add). Writes JSON:
{"device", "torch", "cuda", "results": [{"id", "median_ms", ...}], "networks": [{"id", "params", "gflop"}]}.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Throughput batch per image size: large enough to fill an H100 with these U-Nets.
THROUGHPUT_BATCH = {32: 128, 64: 64, 256: 8}
MODES = ("fp32", "bf16cl", "compile")


def time_call(torch, fn, iters, reps, device):
    for _ in range(3):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
        per_call = []
        for _ in range(reps):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            per_call.append(start.elapsed_time(end) / iters)
        return statistics.median(per_call)
    import time

    per_call = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        per_call.append((time.perf_counter() - t0) * 1e3 / iters)
    return statistics.median(per_call)


def memory_cases(torch, device, iters, reps):
    out = []
    mib = 256
    n = mib * (1 << 20) // 4
    src = torch.randn(n, device=device, dtype=torch.float32)
    ms = time_call(torch, lambda: src.clone(), iters, reps, device)
    out.append({"id": f"copy/d2d/{mib}MiB", "median_ms": ms, "bytes": 2 * n * 4, "what": "Tensor.clone"})
    for name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16), ("f16", torch.float16)):
        buf = torch.empty((64, n // 64), device=device, dtype=dt)
        gen = torch.Generator(device=device)
        gen.manual_seed(7)
        ms = time_call(torch, lambda: buf.normal_(generator=gen), iters, reps, device)
        out.append({"id": f"randn/philox_{name}/{n}", "median_ms": ms, "bytes": n * buf.element_size(),
                    "what": "Tensor.normal_ (Philox4x32-10)"})
    for r in out:
        r["gbps"] = r["bytes"] / (r["median_ms"] * 1e-3) / 1e9
    return out


def speed_model_rows():
    """The rows of benches/speed_model.tsv (next to this script in the GPU bundle, or the repository's)."""
    here = Path(__file__).resolve().parent
    for path in (here / "speed_model.tsv", here.parent / "benches" / "speed_model.tsv"):
        if path.exists():
            break
    else:
        return []
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cid, kind, batch, hw, cin, cout, k, gflop, predicted_us = line.rstrip("\n").split("\t")
            rows.append({"id": cid, "kind": kind, "batch": int(batch), "hw": int(hw), "cin": int(cin),
                         "cout": int(cout), "k": int(k), "gflop": float(gflop),
                         "predicted_us": float(predicted_us)})
    return rows


def kernel_cases(torch, device, iters, reps, only):
    """The speed model's shapes (`model/...` ids) through PyTorch at bf16: cuDNN convolutions on
    channels_last tensors (bias included, as the engine's kernel adds it), and scaled-dot-product
    attention with one head (FlashAttention-2 where torch picks it) plus nothing else: the engine's
    attention kernel also takes q, k, v and writes the weighted values."""
    import torch.nn.functional as F

    torch.backends.cudnn.benchmark = True
    out = []
    for r in speed_model_rows():
        if only and not any(r["id"].startswith(o) or o.startswith(r["id"]) for o in only):
            continue
        g = torch.Generator(device=device).manual_seed(len(out))
        bf = torch.bfloat16
        if r["kind"] == "conv":
            x = torch.randn(r["batch"], r["cin"], r["hw"], r["hw"], device=device, generator=g, dtype=bf)
            x = x.contiguous(memory_format=torch.channels_last)
            w = torch.randn(r["cout"], r["cin"], r["k"], r["k"], device=device, generator=g, dtype=bf)
            w = w.contiguous(memory_format=torch.channels_last)
            b = torch.randn(r["cout"], device=device, generator=g, dtype=bf)
            pad = r["k"] // 2
            fn = lambda x=x, w=w, b=b, pad=pad: F.conv2d(x, w, b, padding=pad)
            what = "cuDNN conv2d, bf16 channels_last"
        else:
            seq = r["hw"] * r["hw"]
            q, k, v = (torch.randn(r["batch"], 1, seq, r["cin"], device=device, generator=g, dtype=bf)
                       for _ in range(3))
            fn = lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v)
            what = "scaled_dot_product_attention, bf16"
        ms = time_call(torch, fn, iters, reps, device)
        out.append({"id": r["id"], "median_ms": ms, "what": what,
                    "tflops": r["gflop"] / (ms * 1e-3) / 1e3})
        print(f"  {r['id']:<44} {ms * 1e3:10.1f} us  {out[-1]['tflops']:7.1f} TFLOP/s", flush=True)
    return out


def example_inputs(torch, net, config, batch, device, dtype):
    """Random inputs of the shapes each family's network takes."""
    a = net.arch
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, a.in_channels, a.image_size, a.image_size, generator=g).to(device, dtype)
    if a.family == "ddgan":
        t = torch.randint(0, 4, (batch,), generator=g).to(device)
        z = torch.randn(batch, int(config.get("nz", 100)), generator=g).to(device, dtype)
        return (x, t, z)
    t = (torch.rand(batch, generator=g) * 0.98 + 0.01).to(device, dtype)
    return (x, t)


def count_flops(torch, family, config):
    from torch.utils.flop_counter import FlopCounterMode

    from reference import ncsnpp

    with torch.device("meta"):
        net = ncsnpp.build(family, config)
        params = sum(p.numel() for p in net.parameters())
        inputs = example_inputs_meta(torch, net, config)
        with FlopCounterMode(display=False) as fc:
            net(*inputs)
    return params, fc.get_total_flops() / 1e9


def example_inputs_meta(torch, net, config):
    a = net.arch
    x = torch.empty(1, a.in_channels, a.image_size, a.image_size)
    if a.family == "ddgan":
        return (x, torch.zeros(1, dtype=torch.long), torch.empty(1, int(config.get("nz", 100))))
    return (x, torch.empty(1))


def prepare(torch, net, mode, device):
    """A copy of the network in the given mode, and the dtype its inputs take."""
    import copy

    net = copy.deepcopy(net).to(device).eval()
    if mode == "fp32":
        return net, torch.float32
    net = net.to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    if mode == "compile":
        net = torch.compile(net, mode="max-autotune")
    return net, torch.bfloat16


def selected(args, base):
    """Whether cases under `base` run: no --only, or an --only prefix of base or below it."""
    return not args.only or any(base.startswith(o) or o.startswith(base) for o in args.only)


def network_cases(torch, args, results, nets):
    """Appends to `results` and `nets` as it goes (so a failure keeps what was measured)."""
    from reference import ncsnpp

    for family, presets in ncsnpp.PRESETS.items():
        for preset, config in presets.items():
            base = f"net/{family}/{preset}"
            if not selected(args, base):
                continue
            params, gflop = count_flops(torch, family, config)
            nets.append({"id": base, "params": params, "gflop": gflop})
            print(f"{base:<36} {params / 1e6:8.2f} M params {gflop:9.2f} GFLOP/call", flush=True)
            torch.manual_seed(0)
            net0 = ncsnpp.build(family, config)
            size = net0.arch.image_size
            batches = [1] if args.quick else [1, THROUGHPUT_BATCH.get(size, 16)]
            for mode in args.modes:
                net, dtype = prepare(torch, net0, mode, args.device)
                for b in batches:
                    cid = f"{base}/b{b}/{mode}"
                    inputs = example_inputs(torch, net0, config, b, args.device, dtype)
                    if mode != "fp32":
                        inputs = tuple(i.contiguous(memory_format=torch.channels_last) if i.dim() == 4 else i
                                       for i in inputs)
                    with torch.no_grad():
                        ms = time_call(torch, lambda: net(*inputs), args.iters, args.reps, args.device)
                    results.append({"id": cid, "median_ms": ms, "flops": gflop * 1e9 * b,
                                    "tflops": gflop * b / ms})
                    print(f"  {cid:<44} {ms:10.3f} ms  {gflop * b / ms:8.1f} TFLOP/s", flush=True)


def sampling_cases(torch, args, out):
    """Appends to `out` as it goes."""
    from reference import cld_sde, ddgan_posterior, lsgm_sde, ncsnpp, nvae

    mode = "bf16cl" if "bf16cl" in args.modes else args.modes[0]
    g = torch.Generator(device="cpu").manual_seed(1)
    # DDGAN: the whole T-step run (generator + posterior), fresh z and noise at every step.
    for preset, config in ncsnpp.PRESETS["ddgan"].items():
        if not selected(args, f"sample/ddgan/{preset}"):
            continue
        T = int(config["num_timesteps"])
        coefs = ddgan_posterior.PosteriorCoefficients.make(T, config.get("beta_min", 0.1), config.get("beta_max", 20.0))
        gnet, dtype = prepare(torch, ncsnpp.build("ddgan", config), mode, args.device)
        cl = torch.channels_last if mode != "fp32" else torch.contiguous_format

        def generator(x, t, z, gnet=gnet, dtype=dtype, cl=cl):
            # The posterior arithmetic stays fp32 (as in the official sampler); the generator runs in
            # the benchmarked precision and layout.
            return gnet(x.to(dtype).contiguous(memory_format=cl), t, z.to(dtype)).float()

        size = config["image_size"]
        for b in [1] if args.quick else [1, THROUGHPUT_BATCH.get(size, 16)]:
            shape = (b, config["num_channels"], size, size)
            x_T = torch.randn(*shape, generator=g).to(args.device)
            zs = [torch.randn(b, config["nz"], generator=g).to(args.device) for _ in range(T)]
            noises = [torch.randn(*shape, generator=g).to(args.device) for _ in range(T)]
            with torch.no_grad():
                ms = time_call(torch, lambda: ddgan_posterior.sample(coefs, generator, x_T, zs, noises),
                               max(1, args.iters // 4), args.reps, args.device)
            cid = f"sample/ddgan/{preset}/b{b}/{mode}"
            out.append({"id": cid, "median_ms": ms, "steps": T})
            print(f"  {cid:<44} {ms:10.3f} ms", flush=True)
    # CLD: N-step SSCS (N - 1 splitting steps, each one network call, plus the denoising call), with
    # the official mixed float32/float64 arithmetic of the reference sampler.
    n_steps = 50 if args.quick else 150
    for preset, config in ncsnpp.PRESETS["cld"].items():
        if not selected(args, f"sample/cld/{preset}/sscs"):
            continue
        cfg = cld_sde.CONFIGS[preset]
        net, dtype = prepare(torch, ncsnpp.build("cld", config), mode, args.device)
        size = config["image_size"]

        cl = torch.channels_last if mode != "fp32" else torch.contiguous_format

        def net32(u, t, net=net, dtype=dtype, cl=cl):
            return net(u.to(dtype).contiguous(memory_format=cl), t.to(dtype)).float()

        for b in [1] if args.quick else [1, THROUGHPUT_BATCH.get(size, 16)]:
            shape = (b, 3, size, size)
            u0 = cld_sde.prior_sample(cfg, torch.randn(*shape, generator=g).to(args.device),
                                      torch.randn(*shape, generator=g).to(args.device))
            noises = [(torch.randn(b, 6, size, size, generator=g).to(args.device),
                       torch.randn(b, 6, size, size, generator=g).to(args.device)) for _ in range(n_steps - 1)]
            with torch.no_grad():
                ms = time_call(torch, lambda: cld_sde.sscs_sample(cfg, net32, u0, n_steps, noises), 1,
                               max(1, args.reps // 5), args.device)
            cid = f"sample/cld/{preset}/sscs{n_steps}/b{b}/{mode}"
            out.append({"id": cid, "median_ms": ms, "steps": n_steps})
            print(f"  {cid:<44} {ms:10.3f} ms", flush=True)
    # Probability-flow ODE runs (CLD, LSGM): the RK45 controller steps on the host and only the network
    # runs on the device, as in the official code (torchdiffeq's SciPy wrapper). With random weights the
    # step count differs from a trained model's, so the NFE is recorded and ms per NFE is the comparable
    # figure.
    def host_stepped(net, dtype):
        cl = torch.channels_last if mode != "fp32" else torch.contiguous_format

        def f(x, t):
            x = x.to(args.device, dtype).contiguous(memory_format=cl)
            return net(x, t.to(args.device, dtype)).float().cpu()
        return f

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    for preset, config in ncsnpp.PRESETS["cld"].items():
        if not selected(args, f"sample/cld/{preset}/ode"):
            continue
        cfg = cld_sde.CONFIGS[preset]
        net, dtype = prepare(torch, ncsnpp.build("cld", config), mode, args.device)
        size = config["image_size"]
        u0 = cld_sde.prior_sample(cfg, torch.randn(1, 3, size, size, generator=g), torch.randn(1, 3, size, size, generator=g))
        f = host_stepped(net, dtype)
        with torch.no_grad():
            import time
            f(u0, torch.full((1,), 0.5))  # warm-up (and compilation, for --modes compile)
            sync()
            t0 = time.perf_counter()
            *_, nfe, _ = cld_sde.ode_sample(cfg, f, u0)
            sync()
            ms = (time.perf_counter() - t0) * 1e3
        cid = f"sample/cld/{preset}/ode/b1/{mode}"
        out.append({"id": cid, "median_ms": ms, "nfe": nfe, "ms_per_nfe": ms / nfe})
        print(f"  {cid:<44} {ms:10.3f} ms  NFE {nfe}  {ms / nfe:.3f} ms/NFE", flush=True)

    for preset, config in ncsnpp.PRESETS["lsgm"].items():
        if not selected(args, f"sample/lsgm/{preset}/ode") or preset not in lsgm_sde.CONFIGS:
            continue
        sde, ode_eps, tol = lsgm_sde.CONFIGS[preset]
        score = ncsnpp.build("lsgm", config)
        logit = score.mixing_logit.detach().clone()
        net, dtype = prepare(torch, score, mode, args.device)
        vae = nvae.NVAE(nvae.PRESETS[preset]).to(args.device).eval()
        c, h, w = vae.sgm_shape()
        noise = torch.randn(1, c, h, w, generator=g)
        lower = [torch.randn(*sh, generator=g).to(args.device) for sh in vae.group_shapes(1)[vae.num_groups_per_scale:]]
        f = host_stepped(net, dtype)
        with torch.no_grad():
            import time
            f(noise, torch.tensor(0.5))  # warm-up (and compilation, for --modes compile)
            vae.sample_from_sgm(noise.to(args.device), lower)
            sync()
            t0 = time.perf_counter()
            z, nfe, _ = lsgm_sde.ode_sample(sde, f, logit, noise, ode_eps, tol)
            vae.sample_from_sgm(z.to(args.device), lower)
            sync()
            ms = (time.perf_counter() - t0) * 1e3
        cid = f"sample/lsgm/{preset}/ode/b1/{mode}"
        out.append({"id": cid, "median_ms": ms, "nfe": nfe, "ms_per_nfe": ms / nfe})
        print(f"  {cid:<44} {ms:10.3f} ms  NFE {nfe}  {ms / nfe:.3f} ms/NFE", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="batch 1 only, fewer repetitions, no compile")
    ap.add_argument("--only", action="append", help="id prefixes to run (repeatable)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--modes", default=None, help=f"comma list of {','.join(MODES)}")
    ap.add_argument("--no-networks", action="store_true", help="memory and kernel cases only")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("bench_pytorch: torch is not installed", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_pytorch: no CUDA device visible to torch", file=sys.stderr)
        return 2
    args.iters, args.reps = (10, 5) if args.quick else (20, 15)
    args.modes = (args.modes.split(",") if args.modes else
                  (["fp32", "bf16cl"] if args.quick else list(MODES)))
    torch.manual_seed(0)
    # "fp32" means IEEE fp32, as the engine's fp32 path: no TF32 in cuDNN convolutions or matmuls
    # (cuDNN allows TF32 by default).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    results, networks = [], []
    if not args.only or any(o.startswith(("copy", "randn")) for o in args.only):
        results += memory_cases(torch, args.device, args.iters, args.reps)
    if not args.only or any(o.startswith("model") for o in args.only):
        results += kernel_cases(torch, args.device, args.iters, args.reps, args.only)
    try:
        if not args.no_networks:
            network_cases(torch, args, results, networks)
            sampling_cases(torch, args, results)
    finally:
        # Whatever was measured is written, even if a later case fails.
        write_results(torch, args, results, networks)
    return 0


def write_results(torch, args, results, networks):
    doc = {
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "tf32": False,
        "results": results,
        "networks": networks,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    for r in results:
        extra = f"  {r['gbps']:8.1f} GB/s" if "gbps" in r else ""
        print(f"{r['id']:<48} {r['median_ms'] * 1e3:12.1f} us{extra}")


if __name__ == "__main__":
    sys.exit(main())
