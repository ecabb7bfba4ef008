#!/usr/bin/env bash
# shellcheck disable=SC2016  # (wait_for's conditions are single-quoted: evaluated at each poll)
# tests/rtb_fleet_lost_test.sh — a Redis without persistence (the demo's setting) SIGKILLed and
# started again empty under a bidder fleet (apps/rtb/lease_keeper.h, redis/budget_lease.h):
#  * a fresh fleet against an empty Redis sets the campaigns' budgets (as always);
#  * after the restart no bidder sets them again: the keepers find them gone, mark them lost
#    ({budget:<id>}:lost), stop leasing (the slices spend what they hold, then no-bid: budget),
#    log one line with the operator's way back and show rtb_redis_budgets_lost; a bidder started
#    afterwards sets nothing either; nothing is granted after the loss (no budget spent twice);
#  * the operator's re-seed (SET {budget:<id>}:left, DEL {budget:<id>}:lost) is picked up by the
#    running bidders without a restart; SIGTERM: exit 0.
set -euo pipefail
root="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}"
[ -f "$root/tests/rtb_fleet_lib.sh" ] || root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tests/rtb_fleet_lib.sh
. "$root/tests/rtb_fleet_lib.sh"
FLAGS=(--campaigns="$CAMPAIGNS" --hmac_key=fleet-test-notice-key --reservation_ms=300 --redis_lease_micros=50000)
keys() { rcli --scan --pattern "{budget:*}:$1" | wc -l; }
sum_all() {  # sum_all REGEX: over the bidders started
  local n s=0
  for n in "${!BIDDER_PID[@]}"; do s=$((s + $(metric_sum "$n" "$1"))); done
  echo "$s"
}

fleet_start_redis  # (no persistence: a restart comes back empty)
ncamp=$(campaign_ids "$CAMPAIGNS" | wc -l)
fleet_start_bidder 1 "${FLAGS[@]}" --shards=2
fleet_start_bidder 2 "${FLAGS[@]}" --shards=1
if wait_for 10 '[ "$(keys left)" -eq "$ncamp" ]'; then seeded=1; else seeded=0; fi
check "a fresh fleet against an empty Redis sets every campaign's budget ($(keys left) of $ncamp)" "$seeded == 1"
loads=()
for n in 1 2; do
  "$LOAD" --port="${BIDDER_ADDR[$n]##*:}" --rtb_mix=2000 --seed="$n" --rate=800 --duration_s=6 --conns=0 \
    --win_share=1 --timeout_s=5 --progress=off >"$FLEET_TMP/load$n" 2>&1 &
  loads+=("$!")
done
wait_for 10 '[ "$(metric_sum 1 ^rtb_spend_micros_total)" -gt 0 ] && [ "$(metric_sum 2 ^rtb_spend_micros_total)" -gt 0 ]' ||
  say "the bidders have not spent yet"

fleet_restart_redis
say "Redis SIGKILLed and started again, empty, on port $REDIS_PORT"
if wait_for 10 '[ "$(keys lost)" -eq "$ncamp" ]'; then marked=1; else marked=0; fi
check "the keepers mark every campaign lost within seconds ($(keys lost) of $ncamp)" "$marked == 1"
check "no bidder set a budget again ({budget:*}:left keys: $(keys left))" "$(keys left) == 0"
wait_for 5 '[ "$(metric_sum 1 ^rtb_redis_budgets_lost)" -eq $((2 * ncamp)) ] && [ "$(metric_sum 2 ^rtb_redis_budgets_lost)" -eq "$ncamp" ]' || true
check "rtb_redis_budgets_lost counts every campaign on every shard" \
  "$(metric_sum 1 ^rtb_redis_budgets_lost) == 2 * $ncamp && $(metric_sum 2 ^rtb_redis_budgets_lost) == $ncamp"
logged=$(grep -c 'REDIS LOST THE BUDGETS' "$FLEET_TMP/err1" || true)
check "one log line per shard says so and what to do ($logged lines)" \
  "$logged == 2 && $(grep -c 'SET {budget:<id>}:left to what is left of its budget, then DEL {budget:<id>}:lost' "$FLEET_TMP/err1") == 2"
grep -m1 'REDIS LOST THE BUDGETS' "$FLEET_TMP/err1" | cut -c1-300 >&2
export leased_lost
leased_lost=$(sum_all '^rtb_redis_leased_micros_total')
# A bidder started now, with the budgets gone from Redis, sets none of them either.
fleet_start_bidder 3 "${FLAGS[@]}" --shards=1
wait_for 5 '[ "$(metric_sum 3 ^rtb_redis_budgets_lost)" -eq "$ncamp" ]' || true
check "a bidder started after the loss finds every campaign lost" "$(metric_sum 3 ^rtb_redis_budgets_lost) == $ncamp"
check "and sets no budget ({budget:*}:left keys: $(keys left))" "$(keys left) == 0"
wait "${loads[@]}" || true
sleep 0.5  # (unbilled bids go back to available)
spend=$(sum_all '^rtb_spend_micros_total')
leased=$(sum_all '^rtb_redis_leased_micros_total')
dry=$(sum_all 'reason="budget"')
say "load: $(grep -h '^RESULT' "$FLEET_TMP/load1" "$FLEET_TMP/load2" | cut -c1-100 | tr '\n' ' ')"
say "spent $spend, leased $leased (at the loss $leased_lost), no-bids for budget $dry"
check "nothing was granted after the loss (leased $leased = $leased_lost)" "$leased == $leased_lost"
check "spend ≤ what was leased before the loss (no budget spent twice)" "$spend <= $leased_lost"
check "the campaigns ran dry after the loss (budget no-bids: $dry)" "$dry > 0"

# The operator's re-seed: what is left of each budget, then the mark deleted.
reseed=1000000
for id in $(campaign_ids "$CAMPAIGNS"); do
  rcli SET "{budget:$id}:left" "$reseed" >/dev/null
  rcli DEL "{budget:$id}:lost" >/dev/null
done
say "re-seeded every campaign with $reseed micro-USD"
if wait_for 10 '[ "$(sum_all ^rtb_redis_budgets_lost)" -eq 0 ] && [ "$(sum_all ^rtb_redis_leased_micros_total)" -gt "$leased_lost" ]'; then
  back=1
else
  back=0
fi
check "the running bidders lease again after the re-seed, without a restart" "$back == 1"
check "and say so" "$(grep -c 'Redis holds its budget again' "$FLEET_TMP/err1") > 0"
for n in 1 2 3; do
  kill -TERM "${BIDDER_PID[$n]}"
  rc=0
  wait "${BIDDER_PID[$n]}" || rc=$?
  check "SIGTERMed bidder $n exits 0" "$rc == 0"
done
check "every bidder gave back (Redis holds $(redis_left_sum) of $((reseed * ncamp)) re-seeded)" \
  "$(redis_left_sum) == $((reseed * ncamp))"
fleet_finish
