#!/usr/bin/env bash
# Builds the GPU bundle (here, where Rust is): release test, bench and CLI executables with kernels for
# sm_90a (the H100/H200 the check runs on; every architecture is compile-checked in CI), and what they
# read at run time, in one folder that scripts/gpu-check.sh runs on a GPU machine with no Rust
# toolchain. For another GPU name its architecture, e.g. TRILEMMA_CUDA_ARCHS=sm_80,compute_80.
#
#   scripts/gpu-bundle.sh            # -> bundle/ and bundle.tar.xz (git-ignored)
#   BUNDLE=dir TRILEMMA_CUDA_ARCHS=sm_90a scripts/gpu-bundle.sh
#
# What travels to the GPU machine is the repository's tracked files plus the carried archive, 64 MiB
# in all: the archive must fit in what the tracked files leave (LIMIT_MIB overrides). xz with its
# 64 MiB window stores the weights and fatbins every executable embeds about once.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-bundle}
tracked=$(git ls-files -z | du --files0-from=- -cb 2>/dev/null | tail -1 | cut -f1)
# 1 MiB of margin for what changes between the bundle and the call.
LIMIT_MIB=${LIMIT_MIB:-$(( (64 * 1048576 - ${tracked:-0}) / 1048576 - 1 ))}
export TRILEMMA_CUDA_ARCHS=${TRILEMMA_CUDA_ARCHS:-sm_90a}
# The GPU machine runs the real driver only: no host builds of the kernels for the CUDA emulator.
export TRILEMMA_EMU_KERNELS=0
export TRILEMMA_REQUIRE_NVCC=1

rm -rf "$BUNDLE" "$BUNDLE.tar.xz"
mkdir -p "$BUNDLE"/tests "$BUNDLE"/benches "$BUNDLE"/bin "$BUNDLE"/src

# Executables named without cargo's hash suffix; kind is "test" or "bench".
collect() {
  python3 -c '
import json, sys
kind = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    kinds = m["target"]["kind"]
    if kind == "bench" and "bench" in kinds:
        print(m["target"]["name"], m["executable"])
    elif kind == "test" and m["profile"]["test"] and "bench" not in kinds:
        name = m["target"]["name"]
        unit = "lib" in kinds or "bin" in kinds
        print(("unit-" + kinds[0] + "-" + name) if unit else name, m["executable"])
' "$1"
}

cargo build --release --bin trilemma
cp target/release/trilemma "$BUNDLE/bin/"
# Only tests with a GPU path travel: those whose source uses the GPU helpers (tests/<name>.rs, or the
# files of tests/<name>/, mention gpu_or_skip, devices(, Device::cuda or TRILEMMA_REQUIRE_GPU). The host-only rest (CPU numerics, samplers on the
# CPU, unit tests) runs in CI on every submission; every executable embeds all kernel fatbins (and
# some the default models), so each costs 1 to 10 MiB of the transfer budget. Host-only benches stay
# out too: the CPU bench would spend the check's device time on the host.
HOST_ONLY_BENCHES=" cpu_networks "
has_gpu_path() {
  local src="tests/$1.rs"
  [ -f "$src" ] || src="tests/$1"
  [ "$1" != emulator ] && [ -e "$src" ] && grep -rqE 'gpu_or_skip|devices\(|Device::cuda|TRILEMMA_REQUIRE_GPU' "$src"
}
cargo test --release --no-run --message-format=json 2>/dev/null | collect test | while read -r name exe; do
  has_gpu_path "$name" || continue
  cp "$exe" "$BUNDLE/tests/$name"
done
cargo bench --no-run --message-format=json 2>/dev/null | collect bench | while read -r name exe; do
  case "$HOST_ONLY_BENCHES" in *" $name "*) continue ;; esac
  cp "$exe" "$BUNDLE/benches/$name"
done

# The Python package (abi3, so the GPU machine's python3 takes it), installed unpacked into
# bundle/python for PYTHONPATH (an unpacked library compresses with the rest), and its GPU tests.
wheels=$(mktemp -d)
"${PYTHON:-python3}" -m pip wheel --quiet --no-deps -w "$wheels" .
"${PYTHON:-python3}" -m pip install --quiet --no-deps --no-compile --target "$BUNDLE/python" "$wheels"/*.whl
rm -rf "$wheels"
cp -r --parents python/tests "$BUNDLE/src/"
find "$BUNDLE/src/python" -name __pycache__ -prune -exec rm -rf {} +

# Files the tests read at run time (they look under TRILEMMA_SOURCE_DIR), and the check's own scripts.
cp -r --parents fuzz/corpus/safetensors_load kernels/common kernels/resource-allowances.tsv "$BUNDLE/src/"
[ -d tests/fixtures ] && cp -r --parents tests/fixtures "$BUNDLE/src/"
[ -d tests/models ] && cp -r --parents tests/models "$BUNDLE/src/"
cp scripts/gpu-check.sh scripts/gpu_report.py tools/bench_pytorch.py benches/targets.tsv benches/speed_model.tsv "$BUNDLE/"
# The baseline builds its networks from the reference (bench_pytorch.py imports it from its own folder).
mkdir -p "$BUNDLE/reference" && cp tools/reference/*.py "$BUNDLE/reference/"
{
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "archs: $TRILEMMA_CUDA_ARCHS"
  echo "nvcc: $(${NVCC:-nvcc} --version 2>/dev/null | grep -o 'release [0-9.]*' || echo unknown)"
  echo "rustc: $(rustc --version)"
} > "$BUNDLE/MANIFEST"

find "$BUNDLE/tests" "$BUNDLE/benches" "$BUNDLE/bin" "$BUNDLE/python" -type f \( -perm -u+x -o -name '*.so' \) \
  -exec strip --strip-debug {} +
ls -l "$BUNDLE"/tests "$BUNDLE"/benches "$BUNDLE"/bin
tar -C "$(dirname "$BUNDLE")" -cf - "$(basename "$BUNDLE")" | xz -9 > "$BUNDLE.tar.xz"
size=$(stat -c %s "$BUNDLE.tar.xz")
limit=$((LIMIT_MIB * 1048576))
echo "bundle: $BUNDLE ($(( $(du -sb "$BUNDLE" | cut -f1) / 1048576 )) MiB), $BUNDLE.tar.xz $((size / 1024)) KiB of $((limit / 1024)) KiB allowed"
echo "carry $BUNDLE.tar.xz; there: tar xJf $BUNDLE.tar.xz && bash $BUNDLE/gpu-check.sh $BUNDLE"
if [ "$size" -gt "$limit" ]; then
  echo "error: $BUNDLE.tar.xz exceeds ${LIMIT_MIB} MiB" >&2
  exit 1
fi
