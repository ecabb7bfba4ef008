#!/usr/bin/env bash
# perf/flood_fairness.sh — what one greedy connection does to everyone else, side by side.
#
# For each server — the plain-epoll baseline (//perf:epoll_echo_server) and apps/echo with each
# --isolation mode in ISOLATIONS — starts a fresh instance pinned to the last CPU, then from CPU
# 0 runs perf/echo_flood (FLOOD_CONNS connections sending pipelined lines as fast as the server
# takes them) and, while it runs, perf/echo_load (CONNS ping-pong connections that measure
# round-trip latency). A server that lets the greedy connections hold the CPU shows it as low
# ping-pong msgs/s and a long p99 and max. Prints one markdown table on stdout (progress on
# stderr); each row is that server's median round by ping-pong p99. Every process it starts is
# stopped on exit.
#
# apps/echo runs a connection's handler until its process blocks or its dispatch's budget (128
# resumed threads and started I/O ops, runtime/process.h) is spent; ECHO_BIN names another
# build of apps/echo to compare (e.g. one from before the budget).
#
# Environment overrides (defaults in brackets):
#   DURATION_S [3]  CONNS [100]  FLOOD_CONNS [1]  FLOOD_BATCH_KIB [1024]  SIZE [64]  REPS [3]
#   ISOLATIONS ["off mprotect"]  ECHO_ARGS []  ECHO_BIN [the opt build's]  SKIP_BUILD [0]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION_S=${DURATION_S:-3}
CONNS=${CONNS:-100}
FLOOD_CONNS=${FLOOD_CONNS:-1}
FLOOD_BATCH_KIB=${FLOOD_BATCH_KIB:-1024}
SIZE=${SIZE:-64}
REPS=${REPS:-3}
ISOLATIONS=${ISOLATIONS:-"off mprotect"}
ECHO_ARGS=${ECHO_ARGS:-}
SKIP_BUILD=${SKIP_BUILD:-0}

say() { printf 'flood_fairness: %s\n' "$*" >&2; }
# shellcheck source=perf/lib.sh
. perf/lib.sh

if [ "$SKIP_BUILD" != 1 ]; then
  say "building (--config=opt)"
  bazel build --config=opt //apps/echo //perf:epoll_echo_server //perf:echo_load //perf:echo_flood >&2
fi
BIN="$(bazel info --config=opt bazel-bin 2>/dev/null)"
ECHO_BIN=${ECHO_BIN:-$BIN/apps/echo/echo}
for b in "$ECHO_BIN" "$BIN/perf/epoll_echo_server" "$BIN/perf/echo_load" "$BIN/perf/echo_flood"; do
  [ -x "$b" ] || { say "$b is not built (run without SKIP_BUILD=1)"; exit 1; }
done
ncpu=$(nproc)
if [ "$ncpu" -lt 2 ]; then
  say "needs 2 CPUs (this machine has $ncpu)"
  exit 1
fi
SERVER_CPU=$((ncpu - 1))
CLIENT_CPU=0

# name|binary|flags
SERVERS=("epoll baseline|$BIN/perf/epoll_echo_server|")
for iso in $ISOLATIONS; do
  SERVERS+=("echo, isolation $iso|$ECHO_BIN|--shards=1 --isolation=$iso $ECHO_ARGS")
done

declare -A ROWS
for ((rep = 1; rep <= REPS; rep++)); do
  for entry in "${SERVERS[@]}"; do
    IFS='|' read -r name bin flags <<<"$entry"
    say "round $rep/$REPS: $name"
    start_server "$name" "$SERVER_CPU" "$bin" "$flags" || exit 1
    # The flood runs a second longer than the load on each side of it.
    taskset -c "$CLIENT_CPU" "$BIN/perf/echo_flood" --port="$SERVER_PORT" --conns="$FLOOD_CONNS" --size="$SIZE" \
      --batch_kib="$FLOOD_BATCH_KIB" \
      --duration_s="$(awk -v d="$DURATION_S" 'BEGIN { print d + 1.5 }')" >"$TMP/flood.out" 2>&1 &
    flood_pid=$!
    PIDS+=("$flood_pid")
    run_pinned "$CLIENT_CPU" "$BIN/perf/echo_load" --port="$SERVER_PORT" --conns="$CONNS" --size="$SIZE" \
      --warmup_s=0.5 --duration_s="$DURATION_S" --server_pid="$SERVER_PID"
    wait "$flood_pid" || true
    load=$(grep '^RESULT' <<<"$RUN_OUT" || true)
    flood=$(grep '^RESULT' "$TMP/flood.out" || true)
    stop_server
    ROWS[$name]+="$(kv "$load" p99_us) $(kv "$load" msgs_per_s) $(kv "$load" p50_us) $(kv "$load" max_us) $(kv "$load" errors) $(kv "$flood" received_mb_per_s)"$'\n'
  done
done

echo "Command: \`perf/flood_fairness.sh\` (DURATION_S=$DURATION_S CONNS=$CONNS FLOOD_CONNS=$FLOOD_CONNS FLOOD_BATCH_KIB=$FLOOD_BATCH_KIB SIZE=$SIZE REPS=$REPS ISOLATIONS=\"$ISOLATIONS\");"
echo "server pinned to CPU $SERVER_CPU, echo_flood and echo_load on CPU $CLIENT_CPU; each row is the median round by ping-pong p99."
echo
echo "| server | ping-pong msgs/s | p50 µs | p99 µs | max µs | errors | flood replies MB/s |"
echo "|---|---|---|---|---|---|---|"
for entry in "${SERVERS[@]}"; do
  IFS='|' read -r name _ _ <<<"$entry"
  read -r p99 mps p50 max errors flood_mb <<<"$(printf '%s' "${ROWS[$name]}" | median_line)"
  echo "| $name | $(fix "$mps" 0) | $(fix "$p50" 0) | $(fix "$p99" 0) | $(fix "$max" 0) | ${errors:-—} | $(fix "$flood_mb" 1) |"
done
