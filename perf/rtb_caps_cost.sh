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
# shellcheck source=perf/rtb_cost_lib.sh
. perf/rtb_cost_lib.sh
run() {  # run MODE N: one round
  cost_round "$1" "$2" rtb_caps_redis_calls_total --redis_lease_micros=1000000 --caps="$1" --caps_cache_ms="$CAPS_CACHE_MS"
}
i=1
for _ in $(seq "$ROUNDS"); do
  for mode in local redis; do run "$mode" "$i"; i=$((i + 1)); done
done
