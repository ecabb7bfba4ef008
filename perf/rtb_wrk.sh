#!/usr/bin/env bash
# perf/rtb_wrk.sh — the bidder's CPU per bid request against our own /plaintext, one core each,
# in one run: the closed-loop part of `tools/mnv bench rtb` (perf/rtb_overload.sh is the
# open-loop part).
#
# Each server (apps/rtb on the sample campaigns, one shard; apps/http, one shard) is started
# pinned to SERVER_CPU, warmed for WARMUP_S, then driven by wrk (1 thread, CONNS keep-alive
# connections) pinned to CLIENT_CPU for DURATION_S: the bidder with perf/wrk/rtb_post.lua (the
# five hand-written requests of apps/rtb/testdata in rotation: banner, video, native, app,
# multi-impression), apps/http with GET /plaintext. Per row: req/s, p50/p99 (wrk's) and server
# CPU µs per request (utime+stime from /proc/PID/stat over the measured window); the last line
# the bidder's CPU per request over /plaintext's. With `perf` present, a profile of the bidder
# (perf record -g for PROFILE_S) is summarised (top symbols by self time).
#
#   bazel build --config=opt //apps/rtb //apps/http && perf/rtb_wrk.sh
# Environment: DURATION_S [5] WARMUP_S [1] CONNS [50] SERVER_CPU [last] CLIENT_CPU [0]
#   PROFILE_S [3] (0: no profile)
set -euo pipefail
say() { printf 'rtb_wrk: %s\n' "$*" >&2; }
cd "$(dirname "$0")/.."
DURATION_S=${DURATION_S:-5}
WARMUP_S=${WARMUP_S:-1}
CONNS=${CONNS:-50}
SERVER_CPU=${SERVER_CPU:-$(( $(nproc) - 1 ))}
CLIENT_CPU=${CLIENT_CPU:-0}
PROFILE_S=${PROFILE_S:-3}
RTB_BIN=${RTB_BIN:-bazel-bin/apps/rtb/rtb}
HTTP_BIN=${HTTP_BIN:-bazel-bin/apps/http/http}
for b in "$RTB_BIN" "$HTTP_BIN"; do [ -x "$b" ] || { say "$b is missing: bazel build --config=opt //apps/rtb //apps/http"; exit 1; }; done
command -v wrk >/dev/null || { say "wrk is not installed (tools/mnv setup)"; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# Starts "$@" pinned to SERVER_CPU; sets pid and port from its "listening on HOST:PORT" line.
start() {
  mkfifo "$tmp/out"
  taskset -c "$SERVER_CPU" "$@" --port=0 --shards=1 >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  exec 3<"$tmp/out"
  IFS= read -r -t 30 first <&3 || { say "no 'listening on' from $1:"; cat "$tmp/err" >&2; exit 1; }
  port=${first##*:}
  rm -f "$tmp/out"
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; exec 3<&-; pid=""; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# Runs wrk against the server in $pid (URL, then a Lua script and its argument, or none); prints
# "req/s p50 p99 cpu_us_per_request".
measure() {
  local url=$1 script=${2:-} arg=${3:-}
  local opts=() tail=()
  [ -n "$script" ] && opts=(-s "$script") && tail=(-- "$arg")
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP_S}s" "${opts[@]}" "$url" "${tail[@]}" >/dev/null
  local t0; t0=$(ticks)
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION_S}s" --latency "${opts[@]}" "$url" "${tail[@]}" >"$tmp/wrk"
  local t1; t1=$(ticks)
  local reqs rps p50 p99
  reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk")
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$tmp/wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk")
  local hz; hz=$(getconf CLK_TCK)
  local us; us=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')
  grep -q 'Non-2xx' "$tmp/wrk" && say "non-2xx answers: $(grep 'Non-2xx' "$tmp/wrk")"
  echo "$rps $p50 $p99 $us"
}

start "$RTB_BIN" --campaigns="$PWD/apps/rtb/campaigns.toml" --hmac_key=bench-only-notice-key \
  --max_reservations=4194304
read -r rtb_rps rtb_p50 rtb_p99 rtb_us < <(measure "http://127.0.0.1:$port" perf/wrk/rtb_post.lua "$PWD/apps/rtb/testdata/")
bids=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^rtb_bid_requests_total\{result="bid"/ {s += $2} END {print s + 0}')
nobids=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^rtb_no_bids_total/ {s += $2} END {print s + 0}')
profile=""
if [ "$PROFILE_S" != 0 ] && command -v perf >/dev/null; then
  ( taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$((PROFILE_S + 1))s" -s perf/wrk/rtb_post.lua "http://127.0.0.1:$port" -- "$PWD/apps/rtb/testdata/" >/dev/null 2>&1 & )
  if perf record -q -g -p "$pid" -o "$tmp/perf.data" -- sleep "$PROFILE_S" >/dev/null 2>&1; then
    profile=$(perf report -q -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null \
      | awk '/^ +[0-9.]+%/ && n++ < 15 {sub(/^ +/, ""); sub(/ +- +- *$/, ""); print}' || true)
  fi
  sleep 1.5
fi
stop
start "$HTTP_BIN"
read -r http_rps http_p50 http_p99 http_us < <(measure "http://127.0.0.1:$port/plaintext")
stop

ratio=$(awk -v a="$rtb_us" -v b="$http_us" 'BEGIN {printf "%.2f", a / b}')
cat <<MD
Command: \`perf/rtb_wrk.sh\` (DURATION_S=$DURATION_S, CONNS=$CONNS, servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU; $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg) at the end — the machine is shared)

| server | endpoint | req/s | p50 | p99 | server CPU µs/request |
|---|---|---:|---:|---:|---:|
| apps/rtb (1 shard) | POST /openrtb2/bid (5 requests in rotation) | $rtb_rps | $rtb_p50 | $rtb_p99 | $rtb_us |
| apps/http (1 shard) | GET /plaintext | $http_rps | $http_p50 | $http_p99 | $http_us |

Bidder CPU per bid request / per /plaintext request: **${ratio}x**. Bid requests answered with a bid: $bids; no-bids: $nobids (warm-up included).
MD
if [ -n "$profile" ]; then
  echo
  echo "Bidder profile (perf record -g, ${PROFILE_S} s, self time, top 15):"
  echo
  echo '```'
  echo "$profile"
  echo '```'
fi
