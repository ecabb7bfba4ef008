#!/usr/bin/env bash
# perf/http_load_vs_wrk.sh — validates perf/http_load (closed loop) against wrk on the same
# server: Debian's nginx pinned to SERVER_CPU, each load tool pinned to CLIENT_CPU in turn, ROUNDS
# interleaved rounds of DURATION_S per scenario (after WARMUP_S), keep-alive (CONNS connections,
# one request outstanding) and pipelined (PIPELINE_DEPTH deep). Each round runs both tools back to
# back (alternating which goes first), so a change in the machine's load hits a round's pair
# alike; the verdict is the median of the rounds' ratios (http_load ÷ wrk), which should be within
# 10%. Also prints each tool's CPU per request and nginx's CPU share during each tool's runs: the
# tools agree only where nginx, not the tool, is the bottleneck (nginx near 100%); on a shared
# machine where every process waits for a CPU, the cheaper tool gets more done.
#
# A third scenario, server-bound, runs keep-alive against apps/http --isolation=mprotect (when
# built), a server slow enough to be the bottleneck on any machine.
#
#   bazel build --config=opt //perf:http_load //apps/http && perf/http_load_vs_wrk.sh
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
# timed VAR CMD...: runs CMD pinned to CLIENT_CPU with its stdout in VAR; TOOL_CPU_S (the tool's
# user+system seconds) and NGINX_PCT (nginx's CPU share over the run) are set.
timed() {
  local var=$1 t0 t1 n0 n1 out; shift
  n0=$(cpu_ticks "$SERVER_PID"); t0=$(date +%s.%N)
  out=$(/usr/bin/time -f 'TOOLCPU %U %S' taskset -c "$CLIENT_CPU" "$@" 2>"$TMP/time")
  t1=$(date +%s.%N); n1=$(cpu_ticks "$SERVER_PID")
  TOOL_CPU_S=$(awk '/^TOOLCPU/ { print $2 + $3 }' "$TMP/time")
  NGINX_PCT=$(awk -v a="$n0" -v b="$n1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (t1 - t0) }')
  printf -v "$var" '%s' "$out"
}
start_nginx nginx "$SERVER_CPU"
echo "| scenario | tool | req/s (runs) | median req/s | p50 µs | p99 µs | tool CPU µs/req | nginx CPU % |"
echo "|---|---|---|---|---|---|---|---|"
# server-bound: keep-alive against apps/http --isolation=mprotect (~180 µs of server CPU per
# request, an mprotect pair per switch), whose one CPU is saturated long before either tool's:
# where the server is the bottleneck, both tools must measure the same rate.
SERVER_BOUND=${SERVER_BOUND:-bazel-bin/apps/http/http}
scenarios="keepalive pipelined"
[ -x "$SERVER_BOUND" ] && scenarios+=" server-bound"
for sc in $scenarios; do
  if [ "$sc" = server-bound ]; then
    stop_server
    start_server "apps/http --isolation=mprotect" "$SERVER_CPU" "$SERVER_BOUND" "--shards=1 --isolation=mprotect"
  fi
  wrk_all="" hl_all="" wrk_lat="" hl_lat="" ratios="" wrk_cpu="" hl_cpu="" wrk_ng="" hl_ng=""
  for r in $(seq "$ROUNDS"); do
    if [ "$sc" != pipelined ]; then
      w=(wrk -t1 -c"$CONNS" -d"${DURATION_S}s" --latency "http://127.0.0.1:$SERVER_PORT/plaintext")
      h=("$LOAD" --port="$SERVER_PORT" --conns="$CONNS" --depth=1)
    else
      w=(wrk -t1 -c"$CONNS" -d"${DURATION_S}s" --latency -s perf/wrk/pipeline.lua "http://127.0.0.1:$SERVER_PORT" -- "$PIPELINE_DEPTH" /plaintext)
      h=("$LOAD" --port="$SERVER_PORT" --conns="$CONNS" --depth="$PIPELINE_DEPTH")
    fi
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP_S}s" "http://127.0.0.1:$SERVER_PORT/plaintext" >/dev/null
    run_wrk() {
      timed wout "${w[@]}"
      wrps=$(wrk_rps <<<"$wout")
      wrk_all+="$wrps "
      wrk_lat="$(wrk_pct 50% <<<"$wout") $(wrk_pct 99% <<<"$wout")"
      wrk_cpu+="$(awk -v c="$TOOL_CPU_S" -v r="$wrps" -v d="$DURATION_S" 'BEGIN { printf "%.1f", c * 1e6 / (r * d) }') "
      wrk_ng+="$NGINX_PCT "
    }
    run_hl() {
      timed hout "${h[@]}" --warmup_s=0 --duration_s="$DURATION_S"
      hout=$(tail -1 <<<"$hout")
      hrps=$(kv "$hout" req_per_s)
      hl_all+="$hrps "
      hl_lat="$(kv "$hout" p50_us) $(kv "$hout" p99_us)"
      hl_cpu+="$(awk -v c="$TOOL_CPU_S" -v r="$hrps" -v d="$DURATION_S" 'BEGIN { printf "%.1f", c * 1e6 / (r * d) }') "
      hl_ng+="$NGINX_PCT "
      [ "$(kv "$hout" conn_errors)" = 0 ] && [ "$(kv "$hout" bad_status)" = 0 ] || say "http_load had errors: $hout"
    }
    if [ $((r % 2)) -eq 1 ]; then run_wrk; run_hl; else run_hl; run_wrk; fi
    ratios+="$(awk -v a="$hrps" -v b="$wrps" 'BEGIN { printf "%.3f", a / b }') "
  done
  wm=$(tr ' ' '\n' <<<"$wrk_all" | grep . | median)
  hm=$(tr ' ' '\n' <<<"$hl_all" | grep . | median)
  rm_=$(tr ' ' '\n' <<<"$ratios" | grep . | median)
  echo "| $sc | wrk | $wrk_all| $wm | ${wrk_lat% *} | ${wrk_lat#* } | $wrk_cpu| $wrk_ng|"
  echo "| $sc | http_load | $hl_all| $hm | ${hl_lat% *} | ${hl_lat#* } | $hl_cpu| $hl_ng|"
  echo "| $sc | http_load ÷ wrk, per round | $ratios| **$rm_** (median) | | | | |"
done
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); nginx (server-bound: apps/http --isolation=mprotect) on CPU $SERVER_CPU, each tool on CPU $CLIENT_CPU, $ROUNDS interleaved rounds of ${DURATION_S} s, $CONNS connections"
stop_server
