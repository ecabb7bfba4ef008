# shellcheck shell=bash
# perf/rtb_cost_lib.sh — one round of a bidder cost comparison (perf/rtb_lease_cost.sh,
# perf/rtb_caps_cost.sh). Source it after tests/rtb_fleet_lib.sh, with RTB_BIN, LOAD, RATE and
# DUR set and a redis-server started (fleet_start_redis).
#
#   cost_round NAME N SERIES FLAGS...  bidder N (one shard, the sample campaigns, FLAGS; leasing
#                                      from the Redis above unless FLAGS say --redis=) pinned to
#                                      CPU 1, perf/http_load's OpenRTB mix on CPU 0, open loop at
#                                      RATE req/s for DUR s with win and billing notices for half
#                                      the bids; then SIGTERM. Prints one line: NAME, answers, the
#                                      bidder's CPU (utime + stime from /proc) and CPU per answer,
#                                      p99, and the sum of its /metrics series SERIES per answer.
cost_round() {
  local name=$1 n=$2 series=$3 pid t0 t1 out resp calls p99
  shift 3
  fleet_start_bidder "$n" --shards=1 --campaigns="$PWD/apps/rtb/campaigns.toml" --hmac_key=cost-notice-key-xxxx "$@"
  pid=${BIDDER_PID[$n]}
  taskset -pc 1 "$pid" >/dev/null
  t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  out=$(taskset -c 0 "$LOAD" --port="${BIDDER_ADDR[$n]##*:}" --rtb_mix=20000 --rate="$RATE" --duration_s="$DUR" --conns=0 \
    --win_share=0.5 --timeout_s=5 2>&1 | grep '^RESULT' || true)
  t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  resp=$(sed -n 's/.*responses=\([0-9]*\).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.* p99_us=\([0-9.]*\).*/\1/p' <<<"$out")
  calls=$(metric_sum "$n" "^$series")
  kill -TERM "$pid"
  wait "$pid" || true
  awk -v m="$name" -v t="$((t1 - t0))" -v r="${resp:-0}" -v c="$calls" -v p="$p99" -v s="$series" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%s: %d answers, bidder CPU %.2f s, %.1f µs CPU/request, p99 %s µs, %s %s (%.3f per answer)\n", m, r, t / hz, (r > 0 ? 1e6 * t / hz / r : 0), p, s, c, (r > 0 ? c / r : 0) }'
}
