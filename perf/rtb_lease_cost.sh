#!/usr/bin/env bash
# perf/rtb_lease_cost.sh — the bidder's CPU per request with budgets leased from Redis
# ([rtb] redis, apps/rtb/lease_keeper.h) against local budgets, in the same run: ROUNDS rounds,
# alternating, each a fresh one-shard bidder pinned to CPU 1 and perf/http_load's OpenRTB mix on
# CPU 0, open loop at RATE req/s for DUR s with win and billing notices for half the bids. CPU
# per request is the bidder's utime + stime (/proc) over the run divided by the answers.
#
#   bazel build --config=opt //apps/rtb //perf:http_load && perf/rtb_lease_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'rtb_lease_cost: %s\n' "$*" >&2; }
RTB_BIN=${RTB_BIN:-bazel-bin/apps/rtb/rtb}
LOAD=${LOAD:-bazel-bin/perf/http_load}
RATE=${RATE:-4000}
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
# shellcheck source=tests/rtb_fleet_lib.sh
. tests/rtb_fleet_lib.sh
fleet_start_redis
# shellcheck source=perf/rtb_cost_lib.sh
. perf/rtb_cost_lib.sh
run() {  # run MODE N: one round
  local extra=(--redis=)
  [ "$1" = redis ] && extra=(--redis_lease_micros=1000000)
  cost_round "$1" "$2" rtb_redis_lease_calls_total "${extra[@]}"
}
i=1
for _ in $(seq "$ROUNDS"); do
  for mode in local redis; do run "$mode" "$i"; i=$((i + 1)); done
done
