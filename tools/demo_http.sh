#!/usr/bin/env bash
# tools/demo_http.sh — the HTTP server (apps/http) as a client sees it, with our open-loop load
# generator (perf/http_load): its capacity, then steps at 25%, 50%, 100% and 200% of it.
#
# Starts //apps/http pinned to the last core(s) (2 shards where there are 4+ cores, else 1) and
# measures its capacity with a short closed loop (CONNS keep-alive connections, GET /plaintext).
# Then offers a fixed rate per step for STEP_S each (open loop: requests leave on schedule
# whatever the answers do, latency counts from when each request was due, so a queue shows as
# latency and an overload as a run that cannot keep its schedule), with a progress line once a
# second (with each shard's share of the requests, from the server's /metrics), and prints the
# table per step: offered and achieved rate, answers, p50/p90/p99/p99.9
# from the intended send time, timeouts (answers after DEADLINE_MS), errors, late sends, and
# whether the step could keep its rate ("valid"; the 200% step is not expected to). Then each
# shard's share of the requests (from the server's exit report) and the plots
# (out/demo_http/latency_over_time.png, latency_spectrum.png). Expects
# `bazel build --config=opt //apps/http //perf:http_load` to have run (tools/mnv demo does it).
set -euo pipefail
cd "$(dirname "$0")/.."

ncpu=$(nproc)
STEP_S=${STEP_S:-3}
CAPACITY_S=${CAPACITY_S:-2}
CONNS=${CONNS:-100}
DEADLINE_MS=${DEADLINE_MS:-100}
OUT=${OUT:-out/demo_http}
if [ "$ncpu" -ge 4 ]; then shards=2; server_cpus="$((ncpu - 2)),$((ncpu - 1))"; else shards=1; server_cpus=$((ncpu - 1)); fi
client_cpu=0
LOAD=bazel-bin/perf/http_load

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$OUT"
rm -f "$OUT"/*.csv "$OUT"/*.png

mkfifo "$tmp/stdout"
taskset -c "$server_cpus" bazel-bin/apps/http/http --host=127.0.0.1 --port=0 --shards="$shards" --admin_port=0 \
  >"$tmp/stdout" 2>"$tmp/stderr" &
server_pid=$!
exec 3<"$tmp/stdout"
read -r first <&3
port=${first##*:}
# The admin listener (GET /metrics): the progress line shows each shard's share from it.
admin=""
if IFS= read -r -t 5 second <&3 && [[ "$second" == "admin listening on "* ]]; then admin=${second#admin listening on }; fi
echo "== HTTP demo: apps/http, $shards shard(s) on CPU(s) $server_cpus; perf/http_load on CPU $client_cpu =="

kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
cap_line=$(taskset -c "$client_cpu" "$LOAD" --port="$port" --conns="$CONNS" --warmup_s=0.5 --duration_s="$CAPACITY_S" \
  --expect_body='Hello, World!' | grep '^RESULT')
capacity=$(kv "$cap_line" req_per_s)
echo "capacity (closed loop, $CONNS connections, ${CAPACITY_S} s): $capacity req/s, p99 $(kv "$cap_line" p99_us) µs"
rates=$(awk -v c="$capacity" 'BEGIN { printf "%.0f,%.0f,%.0f,%.0f", c * 0.25, c * 0.5, c, c * 2 }')
echo "open-loop steps at 25%, 50%, 100%, 200% of it: $rates req/s, ${STEP_S} s each, answers after ${DEADLINE_MS} ms count as timeouts"
echo
# Exit status 1 just says a step could not keep its rate (the overload step): the table shows it.
taskset -c "$client_cpu" "$LOAD" --port="$port" --rate="$rates" --duration_s="$STEP_S" --conns=0 \
  --deadline_ms="$DEADLINE_MS" --timeout_s=5 --expect_body='Hello, World!' --out="$OUT" \
  ${admin:+--shares_from="$admin"} >"$tmp/load" || true
sed -n '/^| step/,$p' "$tmp/load"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
echo
echo "per-shard share of the requests (the server's exit report):"
awk '/shard [0-9]+ served [0-9]+ requests/ { for (i = 1; i <= NF; i++) if ($i == "served") { n[$(i - 1)] = $(i + 1); t += $(i + 1) } }
     END { for (s in n) printf "  shard %s: %d requests (%.1f%%)\n", s, n[s], (t > 0 ? 100 * n[s] / t : 0) }' "$tmp/stderr"
tools/plot_latency.sh run "$OUT" "apps/http ($shards shard(s)), open-loop steps"
echo "plots: $OUT/latency_over_time.png $OUT/latency_spectrum.png (data: $OUT/steps.csv, timeline.csv)"
