#!/usr/bin/env python3
"""PyTorch baseline for the engine's benchmarks, on the same GPU in the same run.

Each case carries the id of the engine benchmark it is compared with (benches/*.rs). Timing: CUDA
events around a batch of back-to-back calls after warm-up, repeated; the median per call is reported.
Writes JSON: {"device", "torch", "cuda", "results": [{"id", "median_ms", "bytes", "gbps", ...}]}.

    python3 tools/bench_pytorch.py --out pytorch-baseline.json [--quick]

Later work adds the networks (eager fp32, eager bf16 channels_last, torch.compile) under the same
scheme; this file holds the memory-roofline cases: a device-to-device copy and Philox normals.
"""
import argparse
import json
import statistics
import sys


def time_cuda(torch, fn, iters, reps):
    for _ in range(3):
        fn()
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("bench_pytorch: torch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("bench_pytorch: no CUDA device visible to torch", file=sys.stderr)
        return 2
    iters, reps = (10, 5) if args.quick else (20, 15)
    torch.manual_seed(0)
    results = []
    mib = 256
    n = mib * (1 << 20) // 4

    src = torch.randn(n, device="cuda", dtype=torch.float32)
    ms = time_cuda(torch, lambda: src.clone(), iters, reps)
    results.append({"id": f"copy/d2d/{mib}MiB", "median_ms": ms, "bytes": 2 * n * 4, "what": "Tensor.clone"})

    for name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16), ("f16", torch.float16)):
        out = torch.empty((64, n // 64), device="cuda", dtype=dt)
        gen = torch.Generator(device="cuda")
        gen.manual_seed(7)
        ms = time_cuda(torch, lambda: out.normal_(generator=gen), iters, reps)
        results.append({
            "id": f"randn/philox_{name}/{n}",
            "median_ms": ms,
            "bytes": n * out.element_size(),
            "what": "Tensor.normal_ (Philox4x32-10)",
        })
    for r in results:
        r["gbps"] = r["bytes"] / (r["median_ms"] * 1e-3) / 1e9
    doc = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "results": results,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    for r in results:
        print(f"{r['id']:<32} {r['median_ms']*1e3:10.1f} us  {r['gbps']:8.1f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
