#!/usr/bin/env bash
# perf/rtb_caps_cost.sh — the bidder's CPU per request with frequency caps shared through Redis
# ([rtb] caps = "redis", apps/rtb/redis_caps.h) against local caps, in the same run: ROUNDS
# rounds, alternating, each a fresh one-shard bidder pinned to CPU 1 and perf/http_load's
# OpenRTB mix on CPU 0, open loop at RATE req/s for DUR s with win and billing notices for half
# the bids. Both modes lease budgets from the same redis-server ([rtb] redis), so the difference
# is the caps alone. CPU per request is the bidder's utime + stime (/proc) over the run divided
# by the answers; the Redis caps calls per request come from its rtb_caps_redis_calls series.
#
#   bazel build --config=opt //apps/rtb //perf:http_load && perf/rtb_caps_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RTB_BIN=${RTB_BIN:-bazel-bin/apps/rtb/rtb}
LOAD=${LOAD:-bazel-bin/perf/http_load}
RATE=${RATE:-4000}
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
CAPS_CACHE_MS=${CAPS_CACHE_MS:-100}
say() { printf 'rtb_caps_cost: %s\n' "$*" >&2; }
# shellcheck source=tests/rtb_fleet_lib.sh
. tests/rtb_fleet_lib.sh
fleet_start_redis
run() {  # run MODE N: one round
  local n=$2 pid t0 t1 out resp calls p99
  fleet_start_bidder "$n" --shards=1 --campaigns="$PWD/apps/rtb/campaigns.toml" --hmac_key=cost-notice-key-xxxx \
    --redis_lease_micros=1000000 --caps="$1" --caps_cache_ms="$CAPS_CACHE_MS"
  pid=${BIDDER_PID[$n]}
  taskset -pc 1 "$pid" >/dev/null
  t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  out=$(taskset -c 0 "$LOAD" --port="${BIDDER_ADDR[$n]##*:}" --rtb_mix=20000 --rate="$RATE" --duration_s="$DUR" --conns=0 \
    --win_share=0.5 --timeout_s=5 2>&1 | grep '^RESULT' || true)
  t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  resp=$(sed -n 's/.*responses=\([0-9]*\).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.* p99_us=\([0-9.]*\).*/\1/p' <<<"$out")
  calls=$(metric_sum "$n" '^rtb_caps_redis_calls_total')
  kill -TERM "$pid"
  wait "$pid" || true
  awk -v m="$1" -v t="$((t1 - t0))" -v r="${resp:-0}" -v c="$calls" -v p="$p99" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%s: %d answers, bidder CPU %.2f s, %.1f µs CPU/request, p99 %s µs, caps calls to Redis %s (%.3f per answer)\n", m, r, t / hz, (r > 0 ? 1e6 * t / hz / r : 0), p, c, (r > 0 ? c / r : 0) }'
}
i=1
for _ in $(seq "$ROUNDS"); do
  for mode in local redis; do run "$mode" "$i"; i=$((i + 1)); done
done
