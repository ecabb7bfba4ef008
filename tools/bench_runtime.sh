#!/usr/bin/env bash
# tools/bench_runtime.sh — the micro-thread benchmarks and the isolation primitive
# (perf/protect_bench); the runtime ones pinned to one core (the last one).
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=$(( $(nproc) - 1 ))
taskset -c "$cpu" bazel-bin/perf/runtime_bench --benchmark_repetitions="${REPS:-3}" \
  --benchmark_report_aggregates_only=true "$@"
# (not pinned by taskset: its busy-sibling case pins itself and needs a second CPU)
bazel-bin/perf/protect_bench --benchmark_repetitions="${REPS:-3}" \
  --benchmark_report_aggregates_only=true
