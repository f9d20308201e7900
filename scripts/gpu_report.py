#!/usr/bin/env python3
"""Combines the GPU check's results into a markdown report and a short table.

    python3 gpu_report.py --status STATUS_TSV --criterion DIR [--baseline JSON] --header FILE --out REPORT.md

STATUS_TSV rows: section, name, result (pass|fail|skip), detail. Benchmarks come from criterion's
`new/benchmark.json` + `new/estimates.json`; the PyTorch baseline from tools/bench_pytorch.py. Speed is
given as GB/s, as % of the measured device-to-device copy bandwidth (the memory roofline on this GPU),
and as PyTorch time / our time (above 1: we are faster).
"""
import argparse
import json
import os
import sys


def load_criterion(root):
    out = {}
    if not os.path.isdir(root):
        return out
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) == "new" and "benchmark.json" in files and "estimates.json" in files:
            with open(os.path.join(dirpath, "benchmark.json")) as f:
                bench = json.load(f)
            with open(os.path.join(dirpath, "estimates.json")) as f:
                est = json.load(f)
            median_ns = est["median"]["point_estimate"]
            tp = bench.get("throughput") or {}
            out[bench["full_id"]] = {"median_ms": median_ns / 1e6, "bytes": tp.get("Bytes")}
    return out


# The targets for the speed-model shapes: the main 3x3 convolutions at batch 256 reach half
# the measured bf16 GEMM peak; attention reaches half of FlashAttention-2's rate (PyTorch's SDPA).
BF16_PEAK_TFLOPS = 790.0


def speed_model_table(path, ours, base, rows):
    """Markdown lines: each model/ id measured (ours, at bf16), predicted and PyTorch's time; appends
    the targets' verdicts to `rows`."""
    if not path or not os.path.exists(path):
        return []
    out = ["", "## Speed model: predicted vs measured (engine at bf16; PyTorch bf16 channels_last)", "",
           "Predicted: docs/kernels.md (FLOPs at the measured 790 TFLOP/s bf16 peak scaled by wave efficiency, "
           "or bytes at 3.0 TB/s). The engine's convolutions read and write fp32 tensors; PyTorch's bf16.", "",
           "| id | GFLOP | predicted us | ours us | ours TFLOP/s | % of bf16 peak | ours / predicted | PyTorch us | PyTorch / ours | target |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cid, kind, batch, _hw, _cin, _cout, k, gflop, predicted = line.rstrip("\n").split("\t")
            gflop, predicted = float(gflop), float(predicted)
            r, b = ours.get(cid), base.get(cid)
            us = r["median_ms"] * 1e3 if r else None
            tflops = gflop / (us * 1e-6) / 1e3 if us else None
            pct = 100 * tflops / BF16_PEAK_TFLOPS if tflops else None
            torch_us = b["median_ms"] * 1e3 if b else None
            ratio = torch_us / us if us and torch_us else None
            verdict = ""
            targeted = (kind == "conv" and batch == "256" and k == "3") or (kind == "attention" and batch == "256")
            if targeted and us is None:
                verdict = "not measured"
                rows.append(["target", cid, "skip", verdict])
            elif kind == "conv" and batch == "256" and k == "3":
                ok = pct is not None and pct >= 50
                verdict = f"≥ 50% of bf16 peak: {'met' if ok else 'missed'}"
                rows.append(["target", cid, "pass" if ok else "fail", verdict])
            elif kind == "attention" and batch == "256":
                ok = ratio is not None and ratio >= 0.5
                verdict = f"≥ 50% of SDPA's rate: {'met' if ok else 'missed'}"
                rows.append(["target", cid, "pass" if ok else "fail", verdict])
            cells = [cid, f"{gflop:.3f}", f"{predicted:.1f}", f"{us:.1f}" if us else "",
                     f"{tflops:.1f}" if tflops else "", f"{pct:.1f}%" if pct else "",
                     f"{us / predicted:.2f}x" if us else "", f"{torch_us:.1f}" if torch_us else "",
                     f"{ratio:.2f}x" if ratio else "", verdict]
            out.append("| " + " | ".join(cells) + " |")
    return out


# The latency target for the whole DDGAN run: T = 4 steps at batch 1 (generator calls and
# posterior draws, one sample) in at most a tenth of PyTorch eager's time, both in fp32.
LATENCY_TARGETS = [("sample/ddgan/cifar10/b1/fp32", 0.1, "DDGAN T=4 at batch 1 vs PyTorch eager")]


def latency_targets(engine_path, baseline_path, rows):
    """Appends a target row per LATENCY_TARGETS id: the engine's time (`trilemma bench --json`) over
    PyTorch's (tools/bench_pytorch.py) at most the bound; a skip where either side did not measure it."""
    def medians(path):
        if not path or not os.path.exists(path):
            return {}
        with open(path) as f:
            return {r["id"]: r["median_ms"] for r in json.load(f).get("results", [])}
    ours, torch = medians(engine_path), medians(baseline_path)
    for tid, bound, what in LATENCY_TARGETS:
        o, t = ours.get(tid), torch.get(tid)
        if o is None or t is None:
            missing = " and ".join(n for n, v in (("engine", o), ("PyTorch", t)) if v is None)
            rows.append(["target", tid, "skip", f"{what}: not measured ({missing})"])
            continue
        ratio = o / t
        verdict = f"{what}: {o:.3f} ms vs {t:.3f} ms = {ratio:.3f} of PyTorch's time (bound {bound})"
        rows.append(["target", tid, "pass" if ratio <= bound else "fail", verdict])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", required=True)
    ap.add_argument("--criterion", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--header", required=True)
    ap.add_argument("--targets", help="benches/targets.tsv")
    ap.add_argument("--side-by-side", help="`trilemma bench` output (engine vs PyTorch)")
    ap.add_argument("--speed-model", help="benches/speed_model.tsv: predicted times of the model/ ids")
    ap.add_argument("--networks-engine", help="`trilemma bench --json` output (the latency targets)")
    ap.add_argument("--networks-baseline", help="tools/bench_pytorch.py output for the same ids")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    rows = []
    with open(a.status) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                rows.append(parts + [""] * (4 - len(parts)))
    ours = load_criterion(a.criterion)
    base = {}
    if a.baseline and os.path.exists(a.baseline):
        with open(a.baseline) as f:
            base = {r["id"]: r for r in json.load(f)["results"]}

    targets = []
    if a.targets and os.path.exists(a.targets):
        with open(a.targets) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    prefix, vs_torch, pct, *_ = line.rstrip("\n").split("\t")
                    targets.append((prefix, float(vs_torch), float(pct)))

    roof = None
    for bid, r in ours.items():
        if bid.startswith("copy/d2d/") and r["bytes"]:
            roof = r["bytes"] / (r["median_ms"] * 1e-3) / 1e9

    table = ["| id | ours ms | GB/s | % roofline | PyTorch ms | PyTorch / ours | target |",
             "|---|---|---|---|---|---|---|"]
    for bid in sorted(ours):
        r = ours[bid]
        gbps = r["bytes"] / (r["median_ms"] * 1e-3) / 1e9 if r["bytes"] else None
        pct = 100 * gbps / roof if gbps and roof else None
        b = base.get(bid)
        ratio = b["median_ms"] / r["median_ms"] if b else None
        verdict = ""
        for prefix, min_ratio, min_pct in targets:
            if bid.startswith(prefix):
                misses = []
                if ratio is None:
                    misses.append("no PyTorch baseline")
                elif ratio < min_ratio:
                    misses.append(f"{ratio:.2f}x < {min_ratio}x PyTorch")
                if min_pct and (pct is None or pct < min_pct):
                    misses.append(f"{pct or 0:.1f}% < {min_pct:.0f}% roofline")
                verdict = "miss: " + "; ".join(misses) if misses else "met"
                rows.append(["target", bid, "fail" if misses else "pass", verdict])
        cells = [bid, f"{r['median_ms']:.4f}", f"{gbps:.1f}" if gbps else "", f"{pct:.0f}%" if pct else "",
                 f"{b['median_ms']:.4f}" if b else "", f"{ratio:.2f}x" if ratio else "", verdict]
        table.append("| " + " | ".join(cells) + " |")

    model = speed_model_table(a.speed_model, ours, base, rows)
    latency_targets(a.networks_engine, a.networks_baseline, rows)

    lines = [open(a.header).read().rstrip(), ""]
    fails = [r for r in rows if r[2] == "fail"]
    lines.append(f"## Checks: {sum(r[2] == 'pass' for r in rows)} passed, {len(fails)} failed, "
                 f"{sum(r[2] == 'skip' for r in rows)} skipped")
    lines.append("")
    lines.append("| section | name | result | detail |")
    lines.append("|---|---|---|---|")
    for s_, n, res, d in rows:
        lines.append(f"| {s_} | {n} | {res} | {d} |")
    lines.append("")
    lines.append("## Benchmarks (median per call)")
    lines.append("")
    roof_txt = f"{roof:.0f} GB/s" if roof else "n/a"
    lines.append(f"Memory roofline: the measured device-to-device copy, {roof_txt} (bytes read + written).")
    lines.append("")
    lines += table
    lines += model
    if a.side_by_side and os.path.exists(a.side_by_side):
        lines += ["", "## Networks and sampling: engine vs PyTorch (`trilemma bench`)", "", "```",
                  open(a.side_by_side).read().rstrip(), "```"]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(table))
    print(f"checks: {len(rows) - len(fails)} ok, {len(fails)} failed" + "".join(f"\n  FAIL {r[0]} {r[1]}: {r[3]}" for r in fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
