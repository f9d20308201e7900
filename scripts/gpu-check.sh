#!/usr/bin/env bash
# The one-call GPU check, on a GPU machine with no Rust toolchain: every bundled test with the GPU
# required, the GPU tests under compute-sanitizer (memcheck, racecheck, initcheck, synccheck), the quick
# benchmarks and the PyTorch baseline; a short table printed last and a markdown report written.
#
#   bash bundle/gpu-check.sh [BUNDLE_DIR]      # report: $OUT/gpu-report.md (or ./gpu-report.md)
#
# Fits one 10-minute command: every step has its own timeout. Exits non-zero if anything failed.
set -uo pipefail
BUNDLE=$(cd "${1:-$(dirname "$0")}" && pwd)
OUTDIR=${OUT:-$PWD}
mkdir -p "$OUTDIR"
STATUS=$OUTDIR/status.tsv
LOG=$OUTDIR/gpu-check.log
: > "$STATUS"
: > "$LOG"
export TRILEMMA_REQUIRE_GPU=1
export TRILEMMA_SOURCE_DIR=$BUNDLE/src
export TRILEMMA_BIN=$BUNDLE/bin/trilemma
export CRITERION_HOME=$OUTDIR/criterion

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$STATUS"; echo "[$1] $2: $3 $4"; }

echo "== device" | tee -a "$LOG"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG"
"$BUNDLE/bin/trilemma" info 2>&1 | tee -a "$LOG"

echo "== tests (TRILEMMA_REQUIRE_GPU=1)" | tee -a "$LOG"
for t in "$BUNDLE"/tests/*; do
  name=$(basename "$t")
  out=$(timeout 240 "$t" 2>&1); rc=$?
  echo "$out" >> "$LOG"
  summary=$(echo "$out" | grep -E '^test result:' | tail -1 | sed 's/; finished.*//')
  if [ $rc -eq 0 ]; then record tests "$name" pass "$summary"; else record tests "$name" fail "rc=$rc $summary"; fi
done

echo "== compute-sanitizer" | tee -a "$LOG"
if command -v compute-sanitizer >/dev/null; then
  for t in "$BUNDLE"/tests/cuda_* "$BUNDLE"/tests/device; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    for tool in memcheck racecheck initcheck synccheck; do
      out=$(timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 99 "$t" --test-threads=1 2>&1); rc=$?
      echo "$out" >> "$LOG"
      errs=$(echo "$out" | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' | tail -1)
      if [ $rc -eq 0 ]; then record sanitizer "$tool $name" pass "$errs"; else record sanitizer "$tool $name" fail "rc=$rc $errs"; fi
    done
  done
else
  record sanitizer compute-sanitizer skip "not installed"
fi

echo "== benchmarks" | tee -a "$LOG"
for b in "$BUNDLE"/benches/*; do
  name=$(basename "$b")
  out=$(timeout 180 "$b" --bench --warm-up-time 1 --measurement-time 3 2>&1); rc=$?
  echo "$out" >> "$LOG"
  if [ $rc -eq 0 ]; then record bench "$name" pass ""; else record bench "$name" fail "rc=$rc"; fi
done

echo "== PyTorch baseline" | tee -a "$LOG"
if timeout 180 python3 "$BUNDLE/bench_pytorch.py" --quick --out "$OUTDIR/pytorch-baseline.json" >> "$LOG" 2>&1; then
  record baseline bench_pytorch pass ""
else
  record baseline bench_pytorch fail "see gpu-check.log"
fi

HEADER=$OUTDIR/header.md
{
  echo "# GPU check $(date -u +%Y-%m-%d)"
  echo
  echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "- Driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
  echo "- Bundle: $(tr '\n' ';' < "$BUNDLE/MANIFEST" | sed 's/;/; /g')"
  echo "- PyTorch: $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null || echo none)"
  echo "- Command: \`bash bundle/gpu-check.sh\` (bundle from \`scripts/gpu-bundle.sh\`)"
} > "$HEADER"
echo "== summary"
python3 "$BUNDLE/gpu_report.py" --status "$STATUS" --criterion "$CRITERION_HOME" \
  --baseline "$OUTDIR/pytorch-baseline.json" --header "$HEADER" --out "$OUTDIR/gpu-report.md"
