#!/usr/bin/env python3
"""Compares the CUDA emulator's counters of two runs of the GPU tests (.ci/run): for every process that
wrote `reverse-<exe>.json`, the `forward-<exe>.json` of the same executable must report the same
launches, the same copies and the same digest of every device-to-host copy's bytes, i.e. bit-identical
results under the forward and the reverse order of blocks and threads."""
import json
import pathlib
import sys

d = pathlib.Path(sys.argv[1])
reverse = sorted(d.glob("reverse-*.json"))
if not reverse:
    sys.exit(f"no emulator counters in {d}: did the GPU tests run on the emulator?")
bad = 0
for r in reverse:
    f = d / r.name.replace("reverse-", "forward-", 1)
    if not f.exists():
        print(f"{r.name}: no forward run to compare with")
        bad += 1
        continue
    a, b = json.loads(f.read_text()), json.loads(r.read_text())
    for key in ("launches", "copies", "dtoh_digest"):
        if a[key] != b[key]:
            print(f"{r.name[len('reverse-'):]}: `{key}` differs between orders:\n  forward {a[key]}\n  reverse {b[key]}")
            bad += 1
    launches = sum(a["launches"].values())
    print(f"{r.name[len('reverse-'):]}: {launches} launches, {a['copies']['dtoh']['count']} device-to-host copies, "
          f"digest {a['dtoh_digest']}: {'same' if a == b or all(a[k] == b[k] for k in ('launches', 'copies', 'dtoh_digest')) else 'DIFFERENT'}")
sys.exit(1 if bad else 0)
