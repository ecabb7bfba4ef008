#!/usr/bin/env bash
# perf/http_load_canary.sh — the coordinated-omission canary: apps/http (1 shard) is stopped with
# SIGSTOP for STALL_S (1 s) in the middle of a run, under perf/http_load's open loop at RATE, under
# its closed loop (CONNS connections) and under wrk (closed loop, CONNS connections). The open loop
# shows about RATE x STALL_S answers late by up to STALL_S (every request scheduled during the
# stall); a closed loop sees about CONNS (one per connection), because it stops sending while the
# server is stopped. wrk 4.1 (Debian's) back-fills its histogram after the run (stats_correct:
# for each sample above twice the mean per-connection interval, synthetic samples one interval
# apart), so its percentiles show the stall too, as an estimate at its own achieved rate; its
# request count has no such samples. Prints the percentiles and the answers later than 100 ms,
# and writes OUT/{ours,closed,wrk}.csv (percentile spectra) and OUT/canary.png.
#
#   bazel build --config=opt //perf:http_load //apps/http && perf/http_load_canary.sh
set -euo pipefail
say() { printf 'http_load_canary: %s\n' "$*" >&2; }
cd "$(dirname "$0")/.."
RATE=${RATE:-5000}
DURATION_S=${DURATION_S:-5}
STALL_AT_S=${STALL_AT_S:-2}
STALL_S=${STALL_S:-1}
CONNS=${CONNS:-100}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=${OUT:-perf/out/canary}
LOAD=${LOAD:-bazel-bin/perf/http_load}
SERVER=${SERVER:-bazel-bin/apps/http/http}
for b in "$LOAD" "$SERVER"; do
  [ -x "$b" ] || { say "$b is missing: bazel build --config=opt //perf:http_load //apps/http"; exit 1; }
done
command -v wrk >/dev/null || { say "wrk is not installed (Debian package wrk)"; exit 1; }
. perf/lib.sh
mkdir -p "$OUT"

# stall PID: after STALL_AT_S, stops PID for STALL_S, then lets it go on.
stall() {
  sleep "$STALL_AT_S"
  kill -STOP "$1"
  sleep "$STALL_S"
  kill -CONT "$1"
}

start_server apps/http "$SERVER_CPU" "$SERVER" "--shards=1"
stall "$SERVER_PID" &
stall_pid=$!
ours=$(taskset -c "$CLIENT_CPU" "$LOAD" --port="$SERVER_PORT" --rate="$RATE" --duration_s="$DURATION_S" --conns=0 \
  --deadline_ms=100 --progress=off --out="$OUT" | grep '^RESULT')
wait "$stall_pid"
cp "$OUT/spectrum_1.csv" "$OUT/ours.csv"

stall "$SERVER_PID" &
stall_pid=$!
closed=$(taskset -c "$CLIENT_CPU" "$LOAD" --port="$SERVER_PORT" --conns="$CONNS" --warmup_s=0 --duration_s="$DURATION_S" \
  --deadline_ms=100 --out="$OUT" | grep '^RESULT')
wait "$stall_pid"
cp "$OUT/spectrum_1.csv" "$OUT/closed.csv"

stall "$SERVER_PID" &
stall_pid=$!
wrk_out=$(WRK_SPECTRUM="$OUT/wrk.csv" taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION_S}s" --latency \
  -s perf/wrk/spectrum.lua "http://127.0.0.1:$SERVER_PORT/plaintext")
wait "$stall_pid"
stop_server

# The share of answers above 100 ms, from a spectrum: 100 - the percentile where it crosses.
above_100ms() { awk -F, 'NR > 1 && $2 > 100 && !done { print 100 - $1; done = 1 } END { if (!done) print 0 }' "$1"; }
wrk_n=$(awk '/requests in/ { print $1 }' <<<"$wrk_out")
echo "| tool | requests | p50 ms | p90 ms | p99 ms | max ms | answers > 100 ms |"
echo "|---|---|---|---|---|---|---|"
echo "| http_load --rate=$RATE (open loop, from intended send) | $(kv "$ours" responses) | $(awk -v v="$(kv "$ours" p50_us)" 'BEGIN{printf "%.3f", v/1000}') | $(awk -v v="$(kv "$ours" p90_us)" 'BEGIN{printf "%.3f", v/1000}') | $(awk -v v="$(kv "$ours" p99_us)" 'BEGIN{printf "%.3f", v/1000}') | $(awk -v v="$(kv "$ours" max_us)" 'BEGIN{printf "%.1f", v/1000}') | $(kv "$ours" timeouts) |"
ms() { awk -v v="$1" 'BEGIN { printf "%.3f", v / 1000 }'; }
echo "| http_load --conns=$CONNS (closed loop, from actual send) | $(kv "$closed" responses) | $(ms "$(kv "$closed" p50_us)") | $(ms "$(kv "$closed" p90_us)") | $(ms "$(kv "$closed" p99_us)") | $(ms "$(kv "$closed" max_us)") | $(kv "$closed" timeouts) |"
wrk_pct() { awk -F, -v p="$1" 'NR > 1 && $1 >= p - 1e-9 && !done { printf "%.3f", $2; done = 1 }' "$OUT/wrk.csv"; }
echo "| wrk -c$CONNS (closed loop, back-filled after the run) | $wrk_n | $(wrk_pct 50) | $(wrk_pct 90) | $(wrk_pct 99) | $(tail -1 "$OUT/wrk.csv" | cut -d, -f2 | awk '{printf "%.1f", $1}') | ~$(awk -v s="$(above_100ms "$OUT/wrk.csv")" -v n="$wrk_n" 'BEGIN { printf "%.0f", s * n / 100 }') |"
echo
echo "server stopped for ${STALL_S} s at ${STALL_AT_S} s of ${DURATION_S} s; expected for an open loop: about $(awk -v r="$RATE" -v s="$STALL_S" 'BEGIN { printf "%.0f", r * s * 0.9 }') answers > 100 ms (RATE x (STALL_S - 0.1 s)); for a closed loop about $CONNS"
if [ -x tools/plot_latency.sh ]; then
  tools/plot_latency.sh spectrum "$OUT/canary.png" "SIGSTOP for ${STALL_S} s: latency spectrum" "$OUT/ours.csv" "http_load open loop ${RATE}/s" "$OUT/closed.csv" "http_load closed loop -c$CONNS" "$OUT/wrk.csv" "wrk -c$CONNS (back-filled by stats_correct)"
  echo "plot: $OUT/canary.png"
fi
