#!/usr/bin/env bash
# perf/redis_compare.sh — Redis round trips from one shard (perf/redis_bench: one
# redis::Connection in one micro-thread) against redis-benchmark, in one run, on the same
# redis-server.
#
# Starts redis-server (Debian's, a fresh temp dir, no persistence) pinned to the last core; then,
# for each command (PING as a bulk command, INCR) and each pipeline depth (1: one call at a time;
# PIPELINE_DEPTH), runs redis-benchmark (-c 1: one connection, like ours per shard) and ours,
# both pinned to core 0, REPS interleaved rounds of REQUESTS commands each; each row is the
# median round by round trips per second. Columns: round trips/s, per-call latency p50/p99 (from
# the batch's send to the command's reply, as redis-benchmark counts it), the client's CPU µs per
# call (user+sys of the whole client process over its REQUESTS calls, start-up included, bash's
# `time`; neither makes warm-up calls), and ours against redis-benchmark.
# Markdown on stdout, progress on stderr; the server is stopped and its dir removed on exit.
#
# Environment (defaults in brackets): REQUESTS [50000] REPS [3] PIPELINE_DEPTH [16]
#   COMMANDS ["ping incr"] SKIP_BUILD [0] (1: use the built bazel-bin/perf/redis_bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REQUESTS=${REQUESTS:-50000}
REPS=${REPS:-3}
PIPELINE_DEPTH=${PIPELINE_DEPTH:-16}
COMMANDS=${COMMANDS:-"ping incr"}
SKIP_BUILD=${SKIP_BUILD:-0}

say() { printf 'redis_compare: %s\n' "$*" >&2; }
# shellcheck source=perf/lib.sh
. perf/lib.sh

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { say "redis-server and redis-benchmark are needed: tools/mnv setup"; exit 1; }
[ "$SKIP_BUILD" = 1 ] || bazel build --config=opt //perf:redis_bench >&2
BENCH="$TMP/redis_bench"
cp bazel-bin/perf/redis_bench "$BENCH"  # (a later build elsewhere may repoint bazel-bin)
LAST=$(( $(nproc) - 1 ))
CLIENT_CPU=0

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c "$LAST" redis-server --port "$PORT" --bind 127.0.0.1 --dir "$TMP" --save "" --appendonly no \
  --daemonize no --logfile "$TMP/redis.log" &
PIDS+=($!)
for _ in $(seq 200); do
  redis-cli -p "$PORT" PING 2>/dev/null | grep -q PONG && break
  sleep 0.05
done
redis-cli -p "$PORT" PING | grep -q PONG || { say "redis-server did not answer: $(tail -3 "$TMP/redis.log")"; exit 1; }

# One round: prints "rps p50_ms p99_ms cpu_us_per_call".
TIMEFORMAT='%U %S'
round() {  # round ours|peer COMMAND DEPTH
  local who=$1 cmd=$2 depth=$3 csv t
  if [ "$who" = peer ]; then
    local test=$cmd; [ "$cmd" = ping ] && test=ping_mbulk
    { time taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -c 1 -n "$REQUESTS" -P "$depth" -t "$test" --csv \
        >"$TMP/out" ; } 2>"$TMP/time"
    csv=$(tail -n 1 "$TMP/out")
  else
    { time taskset -c "$CLIENT_CPU" "$BENCH" --port="$PORT" --requests="$REQUESTS" --warmup=0 --pipeline="$depth" \
        --command="$cmd" >"$TMP/out" ; } 2>"$TMP/time"
    csv=$(tail -n 1 "$TMP/out")
  fi
  t=$(tail -n 1 "$TMP/time")
  echo "$csv" | tr -d '"' | awk -F, -v t="$t" -v n="$REQUESTS" \
    'BEGIN { split(t, c, " ") } { printf "%s %s %s %.2f\n", $2, $5, $7, (c[1] + c[2]) * 1e6 / n }'
}

median_by_rps() { sort -n -k1,1 | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

echo "| command | pipeline | client | round trips/s | p50 ms | p99 ms | client CPU µs/call | vs redis-benchmark (rps) |"
echo "|---|---|---|---|---|---|---|---|"
for cmd in $COMMANDS; do
  for depth in 1 "$PIPELINE_DEPTH"; do
    : >"$TMP/peer.rounds"; : >"$TMP/ours.rounds"
    for rep in $(seq "$REPS"); do
      say "$cmd -P $depth round $rep/$REPS"
      round peer "$cmd" "$depth" >>"$TMP/peer.rounds"
      round ours "$cmd" "$depth" >>"$TMP/ours.rounds"
    done
    read -r prps pp50 pp99 pcpu < <(median_by_rps <"$TMP/peer.rounds")
    read -r orps op50 op99 ocpu < <(median_by_rps <"$TMP/ours.rounds")
    echo "| $cmd | $depth | redis-benchmark | $prps | $pp50 | $pp99 | $pcpu | |"
    echo "| $cmd | $depth | ours (1 shard) | $orps | $op50 | $op99 | $ocpu | $(awk -v a="$orps" -v b="$prps" 'BEGIN { printf "%.2fx", a / b }') |"
  done
done
say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (the machine is shared)"
