#!/usr/bin/env bash
# shellcheck disable=SC2016  # (wait_for's conditions are single-quoted: evaluated at each poll)
# tests/rtb_fleet_test.sh — bidder processes sharing campaign budgets through a real
# redis-server (apps/rtb/lease_keeper.h), started here on a free loopback port and stopped at the
# end; the load is perf/http_load's OpenRTB mix, open loop, with win and billing notices.
#  1. Three bidders (two shards, two shards, one shard) share budgets of 1 USD per campaign under load until the
#     campaigns run dry: what they report spent plus what Redis has left is at most the budget
#     (overspend bound 0). Then one is SIGKILLed and the other SIGTERMed (it gives back): the
#     budget lost is at most what the killed one had leased (Redis's record of its holders).
#  0. A malformed [rtb] redis address is a config error (exit 2) naming the knob.
#  2. Redis is stopped (SIGSTOP) mid-run and continued, then SIGKILLed and started again (its
#     append-only file keeps the budgets): the bidder keeps serving (no crash), /metrics shows
#     Redis down, it leases again by itself each time Redis answers, spends no more than the
#     budget, and exits 0 on SIGTERM.
# Short runs (a few thousand requests each, well under 60 s), not the issue's 1,000,000: the
# budgets are small so that they run dry in that time.
set -euo pipefail
root="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}"
[ -f "$root/tests/rtb_fleet_lib.sh" ] || root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tests/rtb_fleet_lib.sh
. "$root/tests/rtb_fleet_lib.sh"
FLAGS=(--shards=2 --campaigns="$CAMPAIGNS" --hmac_key=fleet-test-notice-key --reservation_ms=300)
load() {  # load N RATE SECONDS: http_load's OpenRTB mix against bidder N, notices for every bid
  "$LOAD" --port="${BIDDER_ADDR[$1]##*:}" --rtb_mix=2000 --seed="$1" --rate="$2" --duration_s="$3" --conns=0 \
    --win_share=1 --timeout_s=5 >"$FLEET_TMP/load$1" 2>&1 || true
}

# A bad address is a config error naming the knob (exit 2), not a bidder that never leases.
rc=0
err=$("$RTB_BIN" --port=0 --campaigns="$CAMPAIGNS" --hmac_key=fleet-test-notice-key --redis=nohost:99 2>&1 >/dev/null) || rc=$?
if [ "$rc" = 2 ] && [[ "$err" == *'[rtb] redis = "nohost:99": must be host:port'* ]]; then
  say "ok: --redis=nohost:99 is refused: $err"
else
  say "FAILED: --redis=nohost:99: exit $rc, '$err'"
  fail=1
fi

REDIS_AOF=yes  # (scenario 2 kills Redis and starts it again: the budgets must survive)
fleet_start_redis
ncamp=$(campaign_ids "$CAMPAIGNS" | wc -l)

# ---- 1. three bidders, one budget; SIGKILL of one ------------------------------------------
per=1000000
budget=$((per * ncamp))
fleet_set_budgets "$per" "$CAMPAIGNS"
fleet_start_bidder 1 "${FLAGS[@]}" --redis_lease_micros=100000
fleet_start_bidder 2 "${FLAGS[@]}" --redis_lease_micros=100000
fleet_start_bidder 3 "${FLAGS[@]}" --shards=1 --redis_lease_micros=100000
load 1 1000 6 & l1=$!
load 2 1000 6 & l2=$!
load 3 1000 6 & l3=$!
wait "$l1" "$l2" "$l3"
sleep 0.5  # the bids never billed pass their reservation_ms and go back to available
spend1=$(metric_sum 1 '^rtb_spend_micros_total')
spend2=$(metric_sum 2 '^rtb_spend_micros_total')
spend3=$(metric_sum 3 '^rtb_spend_micros_total')
spend=$((spend1 + spend2 + spend3))
dry=0
leased=0
for n in 1 2 3; do
  dry=$((dry + $(metric_sum "$n" 'reason="budget"')))
  leased=$((leased + $(metric_sum "$n" '^rtb_redis_leased_micros_total')))
done
say "three bidders: $(grep -h '^RESULT' "$FLEET_TMP/load1" "$FLEET_TMP/load2" "$FLEET_TMP/load3" | cut -c1-120 | tr '\n' ' ')"
say "spent $spend1 + $spend2 + $spend3 micro-USD of $budget; leased $leased; no-bids for budget: $dry"
check "the bidders spent something" "$spend1 > 0 && $spend2 > 0 && $spend3 > 0"
check "the budgets ran dry (budget no-bids: $dry)" "$dry > 0"
check "spend ≤ budget (spent $spend, budget $budget)" "$spend <= $budget"
check "spend ≤ leased ≤ budget (leased $leased)" "$spend <= $leased && $leased <= $budget"
kill -KILL "${BIDDER_PID[1]}"
wait "${BIDDER_PID[1]}" 2>/dev/null || true
held1=$(redis_leases_of "${BIDDER_PID[1]}")  # (read after the kill: it may lease until then)
for n in 2 3; do
  kill -TERM "${BIDDER_PID[$n]}"
  rc=0
  wait "${BIDDER_PID[$n]}" || rc=$?
  check "SIGTERMed bidder $n exits 0" "$rc == 0"
  check "bidder $n gave its lease back (none of its holders left in Redis)" "$(redis_leases_of "${BIDDER_PID[$n]}") == 0"
done
left=$(redis_left_sum)
lost=$((budget - left - spend))
say "after SIGKILL of bidder 1 (holding $held1 in Redis) and SIGTERM of bidders 2 and 3: left $left, lost $lost"
check "spent + left ≤ budget (no overspend: lost $lost ≥ 0)" "$lost >= 0"
check "the budget lost ≤ the killed bidder's lease ($lost ≤ $held1)" "$lost <= $held1"
# (Tighter: the others gave back everything once their unbilled bids expired, so what is lost is
# what the killed one leased and did not spend.)
check "the budget lost ≤ its lease less its spend ($lost ≤ $held1 - $spend1)" "$lost <= $held1 - $spend1"

# ---- 2. Redis stopped and continued mid-run -------------------------------------------------
rcli FLUSHALL >/dev/null
per=100000000
budget=$((per * ncamp))
fleet_set_budgets "$per" "$CAMPAIGNS"
fleet_start_bidder 4 "${FLAGS[@]}" --redis_lease_micros=200000
load 4 1000 10 & l4=$!
wait_for 10 '[ "$(metric_sum 4 ^rtb_spend_micros_total)" -gt 0 ]' || say "bidder 3 has not spent yet"
kill -STOP "$REDIS_PID"
say "Redis stopped (SIGSTOP)"
if wait_for 10 '[ "$(metric_sum 4 ^rtb_redis_up)" -eq 0 ]'; then down_seen=1; else down_seen=0; fi
check "/metrics shows Redis down (rtb_redis_up 0 on every shard)" "$down_seen == 1"
check "the bidder answers while Redis is down" "$(curl -s -o /dev/null -w '%{http_code}' "http://${BIDDER_ADDR[4]}/healthz") == 200"
failed=$(metric_sum 4 'rtb_redis_lease_calls_total.*result="failed"')
export leased_down  # (read by a wait_for condition)
leased_down=$(metric_sum 4 '^rtb_redis_leased_micros_total')
sleep 1  # (a second of the run with Redis away)
kill -CONT "$REDIS_PID"
say "Redis continued (SIGCONT)"
if wait_for 10 '[ "$(metric_sum 4 ^rtb_redis_leased_micros_total)" -gt "$leased_down" ]'; then again=1; else again=0; fi
check "lease calls failed while it was down ($failed)" "$failed > 0"
check "the bidder leases again by itself once Redis answers" "$again == 1"
check "rtb_redis_up is 1 on both shards again" "$(metric_sum 4 '^rtb_redis_up') == 2"
# Killed and started again (its append-only file keeps the budgets): the connection is gone, the
# keeper reconnects with back-off and leases again.
export leased_killed
leased_killed=$(metric_sum 4 '^rtb_redis_leased_micros_total')
fleet_restart_redis
say "Redis SIGKILLed and started again on port $REDIS_PORT"
if wait_for 10 '[ "$(metric_sum 4 ^rtb_redis_leased_micros_total)" -gt "$leased_killed" ]'; then again=1; else again=0; fi
check "the bidder leases again after Redis was killed and restarted" "$again == 1"
wait "$l4"
sleep 0.5
spend4=$(metric_sum 4 '^rtb_spend_micros_total')
kill -TERM "${BIDDER_PID[4]}"
rc=0
wait "${BIDDER_PID[4]}" || rc=$?
check "the bidder exits 0 on SIGTERM (no crash)" "$rc == 0"
left=$(redis_left_sum)
say "spent $spend4, left $left of $budget; $(grep -h '^RESULT' "$FLEET_TMP/load4" | cut -c1-160)"
check "spent + left ≤ budget" "$spend4 + $left <= $budget"
check "the bidder spent something" "$spend4 > 0"
fleet_finish
