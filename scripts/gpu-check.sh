#!/usr/bin/env bash
# The one-call GPU check, on a GPU machine with no Rust toolchain: every bundled test with the GPU
# required, the GPU tests under compute-sanitizer (memcheck, initcheck, racecheck, synccheck), the quick
# benchmarks and the PyTorch baseline; a short table printed last and a markdown report written.
#
#   bash bundle/gpu-check.sh [BUNDLE_DIR]      # report: $OUT/gpu-report.md (or ./gpu-report.md)
#
# Fits one 10-minute command: the whole check has a deadline (CHECK_SECONDS, default 540 s) that caps
# every step, steps past it are recorded as skipped, and the report is written whatever happens.
# Exits non-zero if anything failed.
set -uo pipefail
BUNDLE=$(cd "${1:-$(dirname "$0")}" && pwd)
OUTDIR=${OUT:-$PWD}
mkdir -p "$OUTDIR"
STATUS=$OUTDIR/status.tsv
LOG=$OUTDIR/gpu-check.log
: > "$STATUS"
: > "$LOG"
END=$((SECONDS + ${CHECK_SECONDS:-540}))
export TRILEMMA_REQUIRE_GPU=1
# A real GPU only: the CUDA emulator (which the test suite uses where no driver is) must not stand in.
export TRILEMMA_CUDA=driver
export TRILEMMA_SOURCE_DIR=$BUNDLE/src
export TRILEMMA_BIN=$BUNDLE/bin/trilemma
export CRITERION_HOME=$OUTDIR/criterion

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$STATUS"; echo "[$1] $2: $3 $4"; }

# record_rc SECTION NAME RC DETAIL: pass on 0, skip on 125 (deadline), fail otherwise.
record_rc() {
  case $3 in
    0) record "$1" "$2" pass "$4" ;;
    125) record "$1" "$2" skip "deadline reached" ;;
    *) record "$1" "$2" fail "rc=$3 $4" ;;
  esac
}

# step LIMIT CMD...: runs CMD under min(LIMIT, time left); 125 when no time is left at all.
step() {
  local limit=$1; shift
  local left=$((END - SECONDS))
  [ "$left" -lt 5 ] && return 125
  timeout $((limit < left ? limit : left)) "$@"
}

finish() {
  HEADER=$OUTDIR/header.md
  {
    echo "# GPU check $(date -u +%Y-%m-%d)"
    echo
    echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)"
    echo "- Driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
    echo "- Bundle: $(tr '\n' ';' < "$BUNDLE/MANIFEST" | sed 's/;/; /g')"
    echo "- PyTorch: $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null || echo none)"
    echo "- Command: \`bash bundle/gpu-check.sh bundle\` (bundle from \`scripts/gpu-bundle.sh\`), $SECONDS s"
  } > "$HEADER"
  echo "== summary"
  python3 "$BUNDLE/gpu_report.py" --status "$STATUS" --criterion "$CRITERION_HOME" \
    --baseline "$OUTDIR/pytorch-baseline.json" --header "$HEADER" --targets "$BUNDLE/targets.tsv" \
    --speed-model "$BUNDLE/speed_model.tsv" --side-by-side "$OUTDIR/engine-vs-pytorch.txt" \
    --networks-engine "$OUTDIR/engine-networks.json" --networks-baseline "$OUTDIR/pytorch-networks.json" \
    --out "$OUTDIR/gpu-report.md"
}
trap 'rc=$?; trap - EXIT; finish; rc2=$?; exit $(( rc != 0 ? rc : rc2 ))' EXIT

echo "== device" | tee -a "$LOG"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG"
"$BUNDLE/bin/trilemma" info 2>&1 | tee -a "$LOG"

echo "== tests (TRILEMMA_REQUIRE_GPU=1)" | tee -a "$LOG"
for t in "$BUNDLE"/tests/*; do
  name=$(basename "$t")
  out=$(step 120 "$t" 2>&1); rc=$?
  echo "$out" >> "$LOG"
  summary=$(echo "$out" | grep -E '^test result:' | tail -1 | sed 's/; finished.*//')
  record_rc tests "$name" $rc "$summary"
done

echo "== the Python package on the GPU (python/tests/test_gpu.py: DLPack with torch CUDA tensors)" | tee -a "$LOG"
# The package the bundle holds unpacked (nothing is fetched there); the image's python3 has torch,
# numpy and pytest.
if [ -d "$BUNDLE/python/trilemma" ]; then
  out=$(PYTHONPATH=$BUNDLE/python step 120 python3 -m pytest -q -p no:cacheprovider \
    "$BUNDLE/src/python/tests/test_gpu.py" 2>&1); rc=$?
  echo "$out" >> "$LOG"
  record_rc python test_gpu $rc "$(echo "$out" | tail -1)"
else
  record python test_gpu skip "no Python package in the bundle"
fi

echo "== compute-sanitizer" | tee -a "$LOG"
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck initcheck racecheck synccheck; do
    # Every test executable: an op's GPU and CPU tests are one test (tests/ops/<stem>.rs), and the
    # sanitizer costs nothing where no kernel runs.
    for t in "$BUNDLE"/tests/*; do
      [ -x "$t" ] || continue
      name=$(basename "$t")
      [ "$name" = bindings_fresh ] && continue
      # The out-of-memory test makes the driver fail an allocation on purpose; the sanitizer would
      # report that API error.
      out=$(step 120 compute-sanitizer --tool "$tool" --error-exitcode 99 "$t" --test-threads=1 \
        --skip out_of_memory_is_an_error_not_a_crash 2>&1); rc=$?
      echo "$out" >> "$LOG"
      errs=$(echo "$out" | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' | tail -1)
      record_rc sanitizer "$tool $name" $rc "$errs"
    done
  done
else
  record sanitizer compute-sanitizer skip "not installed"
fi

echo "== benchmarks" | tee -a "$LOG"
for b in "$BUNDLE"/benches/*; do
  name=$(basename "$b")
  out=$(step 150 "$b" --bench --warm-up-time 1 --measurement-time 3 2>&1); rc=$?
  echo "$out" >> "$LOG"
  record_rc bench "$name" $rc ""
done

echo "== PyTorch baseline" | tee -a "$LOG"
# The memory-roofline cases and the speed model's kernel shapes (cuDNN, SDPA); the network and sampling baselines
# (tools/bench_pytorch.py without --no-networks) take longer than this check's budget.
step 150 python3 "$BUNDLE/bench_pytorch.py" --quick --no-networks --out "$OUTDIR/pytorch-baseline.json" >> "$LOG" 2>&1
case $? in
  0) record baseline bench_pytorch pass "" ;;
  2) record baseline bench_pytorch skip "no torch or no CUDA for torch" ;;
  125) record baseline bench_pytorch skip "deadline reached" ;;
  *) record baseline bench_pytorch fail "see gpu-check.log" ;;
esac

echo "== engine vs PyTorch: networks and the DDGAN run" | tee -a "$LOG"
# A quick subset at batch 1 (official sizes, random weights; SSCS at 50 steps): PyTorch fp32 eager and bf16
# channels_last, then `trilemma bench` on the same ids, side by side.
NET_IDS="--only net/ddgan/cifar10/b1 --only sample/ddgan/cifar10/b1 --only net/cld/cifar10/b1 --only sample/cld/cifar10/sscs50/b1 --only net/lsgm/mnist/b1"
# shellcheck disable=SC2086
step 150 python3 "$BUNDLE/bench_pytorch.py" --quick --modes fp32,bf16cl $NET_IDS \
  --out "$OUTDIR/pytorch-networks.json" >> "$LOG" 2>&1
rc=$?
[ $rc -eq 0 ] || record baseline bench_pytorch_networks skip "rc=$rc (the table has no PyTorch column)"
baseline_arg=()
[ -f "$OUTDIR/pytorch-networks.json" ] && baseline_arg=(--baseline "$OUTDIR/pytorch-networks.json")
step 150 "$BUNDLE/bin/trilemma" bench --device cuda --min-seconds 1 "${baseline_arg[@]}" \
  --json "$OUTDIR/engine-networks.json" > "$OUTDIR/engine-vs-pytorch.txt" 2>> "$LOG"
record_rc bench trilemma_bench $? "see engine-vs-pytorch.txt"
cat "$OUTDIR/engine-vs-pytorch.txt" >> "$LOG"

echo "== sampling runs: memory per sample at batch 1/64/256, every GPU of the node" | tee -a "$LOG"
# `sample` probes the working set per sample before it runs and prints it in its summary line.
for b in 1 64 256; do
  out=$(step 60 "$BUNDLE/bin/trilemma" sample --model ddgan-digits --device cuda --batch "$b" --num "$b" \
    --out "$OUTDIR/ddgan-b$b.npz" 2>> "$LOG"); rc=$?
  echo "$out" >> "$LOG"
  record_rc sample "ddgan_b$b" $rc "$(echo "$out" | grep -o '[0-9.]* MiB per sample' | head -1); $(echo "$out" | grep -o '[0-9.]* images/s' | head -1)"
done
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "${gpus:-0}" -gt 1 ]; then
  for dev in cuda cuda:all; do
    out=$(step 90 "$BUNDLE/bin/trilemma" sample --model ddgan-digits --device "$dev" --batch 64 --num 1024 \
      --out "$OUTDIR/ddgan-${dev/:/-}.npz" 2>> "$LOG"); rc=$?
    echo "$out" >> "$LOG"
    record_rc sample "ddgan_1024_$dev" $rc "$(echo "$out" | grep -o '[0-9.]* images/s' | head -1)"
  done
  if cmp -s "$OUTDIR/ddgan-cuda.npz" "$OUTDIR/ddgan-cuda-all.npz"; then
    record sample cuda_all_identity pass "$gpus GPUs: the one-GPU images"
  else
    record sample cuda_all_identity fail "cuda:all images differ from one GPU's"
  fi
else
  record sample cuda_all skip "one GPU on this machine"
fi

echo "== CUDA graphs on vs off: batch-1 DDGAN and SSCS (launch-bound), the same images either way" | tee -a "$LOG"
# 64 batches of 1: the first runs uncaptured, the second is captured, the rest are replays, so the
# images/s ratio is the launch overhead the graph removes.
for run in "ddgan ddgan-digits" "sscs cld-digits --sampler sscs --steps 50"; do
  set -- $run
  tag=$1; shift
  for g in off on; do
    out=$(step 120 "$BUNDLE/bin/trilemma" sample --model "$@" --device cuda --batch 1 --num 64 --graph "$g" \
      --out "$OUTDIR/graph-$tag-$g.npz" 2>> "$LOG"); rc=$?
    echo "$out" >> "$LOG"
    record_rc sample "graph_${tag}_$g" $rc "$(echo "$out" | grep -o '[0-9.]* images/s' | head -1)"
  done
  if cmp -s "$OUTDIR/graph-$tag-off.npz" "$OUTDIR/graph-$tag-on.npz"; then
    record sample "graph_${tag}_identity" pass "graph and non-graph images identical"
  else
    record sample "graph_${tag}_identity" fail "graph and non-graph images differ"
  fi
done
