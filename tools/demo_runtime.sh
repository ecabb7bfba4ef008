#!/usr/bin/env bash
# tools/demo_runtime.sh — runs the micro-thread benchmark and prints a readable summary.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=$(( $(nproc) - 1 ))
out=$(taskset -c "$cpu" bazel-bin/perf/runtime_bench --benchmark_format=csv 2>/dev/null)
field() {  # field NAME COUNTER: the counter's value from the CSV row of benchmark NAME
  echo "$out" | awk -F, -v name="\"$1\"" -v col="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == col || $i == "\"" col "\"") c = i }
    $1 == name { printf "%.1f", $c * 1e9 }'
}
yield_ns=$(field BM_YieldResume ns_per_op)
spawn_ns=$(field BM_SpawnFinish ns_per_op)
rr_ns=$(field BM_RequestRespond ns_per_op)
heap_ns=$(field BM_HeapAllocFreeStackOrder ns_per_op)
cat <<SUMMARY

mnvkd micro-threads, one core (cpu $cpu), optimized build:
  yield + resume            ${yield_ns} ns   (target <= 10 ns)
  spawn + finish            ${spawn_ns} ns   (target <= 100 ns)
  request/respond trip      ${rr_ns} ns   (target <= 50 ns)
  micro-heap alloc or free  ${heap_ns} ns
All frames live in the process's micro-heap; none of this touches the global heap.
SUMMARY
