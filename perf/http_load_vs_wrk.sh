#!/usr/bin/env bash
# perf/http_load_vs_wrk.sh — validates perf/http_load (closed loop) against wrk on the same
# server: Debian's nginx pinned to SERVER_CPU, each load tool pinned to CLIENT_CPU in turn, ROUNDS
# interleaved rounds of DURATION_S per scenario (after WARMUP_S), keep-alive (CONNS connections,
# one request outstanding) and pipelined (PIPELINE_DEPTH deep). Prints each run's req/s and
# percentiles and the ratio of the medians (http_load ÷ wrk), which should be within 10%.
#
#   bazel build --config=opt //perf:http_load && perf/http_load_vs_wrk.sh
set -euo pipefail
say() { printf 'http_load_vs_wrk: %s\n' "$*" >&2; }
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CONNS=${CONNS:-100}
PIPELINE_DEPTH=${PIPELINE_DEPTH:-16}
DURATION_S=${DURATION_S:-5}
WARMUP_S=${WARMUP_S:-1}
ROUNDS=${ROUNDS:-3}
LOAD=${LOAD:-bazel-bin/perf/http_load}
[ -x "$LOAD" ] || { say "$LOAD is missing: bazel build --config=opt //perf:http_load"; exit 1; }
command -v wrk >/dev/null || { say "wrk is not installed (Debian package wrk)"; exit 1; }
. perf/lib.sh
. perf/http_peers.sh
wrk_rps() { awk '/^Requests\/sec:/ { print $2 }'; }
wrk_pct() { awk -v p="$1" 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v + 0 }
  $1 == p { print us($2) }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
start_nginx nginx "$SERVER_CPU"
echo "| scenario | tool | req/s (runs) | median req/s | p50 µs | p99 µs |"
echo "|---|---|---|---|---|---|"
for sc in keepalive pipelined; do
  wrk_all="" hl_all="" wrk_lat="" hl_lat=""
  for r in $(seq "$ROUNDS"); do
    if [ "$sc" = keepalive ]; then
      w=(wrk -t1 -c"$CONNS" -d"${DURATION_S}s" --latency "http://127.0.0.1:$SERVER_PORT/plaintext")
      h=("$LOAD" --port="$SERVER_PORT" --conns="$CONNS" --depth=1)
    else
      w=(wrk -t1 -c"$CONNS" -d"${DURATION_S}s" --latency -s perf/wrk/pipeline.lua "http://127.0.0.1:$SERVER_PORT" -- "$PIPELINE_DEPTH" /plaintext)
      h=("$LOAD" --port="$SERVER_PORT" --conns="$CONNS" --depth="$PIPELINE_DEPTH")
    fi
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP_S}s" "http://127.0.0.1:$SERVER_PORT/plaintext" >/dev/null
    out=$(taskset -c "$CLIENT_CPU" "${w[@]}")
    wrk_all+="$(wrk_rps <<<"$out") "
    wrk_lat="$(wrk_pct 50% <<<"$out") $(wrk_pct 99% <<<"$out")"
    out=$(taskset -c "$CLIENT_CPU" "${h[@]}" --warmup_s="$WARMUP_S" --duration_s="$DURATION_S" | tail -1)
    hl_all+="$(kv "$out" req_per_s) "
    hl_lat="$(kv "$out" p50_us) $(kv "$out" p99_us)"
    [ "$(kv "$out" conn_errors)" = 0 ] && [ "$(kv "$out" bad_status)" = 0 ] || say "http_load had errors: $out"
  done
  wm=$(tr ' ' '\n' <<<"$wrk_all" | grep . | median)
  hm=$(tr ' ' '\n' <<<"$hl_all" | grep . | median)
  echo "| $sc | wrk | $wrk_all| $wm | ${wrk_lat% *} | ${wrk_lat#* } |"
  echo "| $sc | http_load | $hl_all| $hm | ${hl_lat% *} | ${hl_lat#* } |"
  echo "| $sc | http_load ÷ wrk | | $(awk -v a="$hm" -v b="$wm" 'BEGIN { printf "%.3f", a / b }') | | |"
done
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); nginx on CPU $SERVER_CPU, each tool on CPU $CLIENT_CPU, $ROUNDS interleaved rounds of ${DURATION_S} s, $CONNS connections"
stop_server
