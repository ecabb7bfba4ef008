#!/usr/bin/env bash
# shellcheck disable=SC2016  # (wait_for's conditions are single-quoted: evaluated at each poll)
# tests/rtb_fleet_cluster_test.sh — two bidder processes (two shards and one) leasing campaign
# budgets through a real three-master Redis Cluster ([rtb] redis_cluster, apps/rtb/lease_keeper.h;
# tests/redis_cluster_up makes it), under perf/http_load's OpenRTB mix with win and billing
# notices. Mid-run every campaign's slot is moved to another master (a resharding by hand:
# SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE): the bidders follow MOVED (and ASK) and
# lease on from the new owners, and what they spent plus what the cluster has left stays within
# the budget (overspend bound 0) after both are SIGTERMed and give back. A malformed seed list,
# and both [rtb] redis and redis_cluster, are config errors (exit 2) naming the knob.
set -euo pipefail
root="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}"
[ -f "$root/tests/rtb_fleet_lib.sh" ] || root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tests/rtb_fleet_lib.sh
. "$root/tests/rtb_fleet_lib.sh"
FLAGS=(--campaigns="$CAMPAIGNS" --hmac_key=fleet-test-notice-key --reservation_ms=300 --redis_lease_micros=100000)
refused() {  # refused FLAG EXPECTED-TEXT: the bidder exits 2 naming it
  local rc=0 err
  err=$("$RTB_BIN" --port=0 --campaigns="$CAMPAIGNS" --hmac_key=fleet-test-notice-key "$@" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" = 2 ] && [[ "$err" == *"${REFUSED_TEXT}"* ]]; then say "ok: $* is refused: $err"; else say "FAILED: $*: exit $rc, '$err'"; fail=1; fi
}
REFUSED_TEXT='[rtb] redis_cluster = "127.0.0.1:7000,nohost:1": must be host:port[,host:port...]' \
  refused --redis_cluster=127.0.0.1:7000,nohost:1
REFUSED_TEXT='--redis=127.0.0.1:1 and --redis_cluster=127.0.0.1:2: [rtb] redis (one Redis) and redis_cluster' \
  refused --redis=127.0.0.1:1 --redis_cluster=127.0.0.1:2

fleet_start_cluster "$root/tests/redis_cluster_up"
say "Redis Cluster: $CLUSTER_SEEDS"
ncamp=$(campaign_ids "$CAMPAIGNS" | wc -l)
rate=1000
seconds=8
if grep -qa __asan_init "$RTB_BIN"; then  # (AddressSanitizer bidders are several times slower)
  rate=250
  seconds=12
  say "AddressSanitizer build: $rate req/s per bidder for $seconds s"
fi
per=$((rate * 1500))  # (~600 micro-USD billed per request: dry within the run)
budget=$((per * ncamp))
fleet_set_budgets "$per" "$CAMPAIGNS"
fleet_start_bidder 1 "${FLAGS[@]}" --shards=2
fleet_start_bidder 2 "${FLAGS[@]}" --shards=1
loads=()
for n in 1 2; do
  "$LOAD" --port="${BIDDER_ADDR[$n]##*:}" --rtb_mix=2000 --seed="$n" --rate="$rate" --duration_s="$seconds" --conns=0 \
    --win_share=1 --timeout_s=5 --progress=off >"$FLEET_TMP/load$n" 2>&1 &
  loads+=("$!")
done
wait_for 30 '[ "$(metric_sum 1 ^rtb_spend_micros_total)" -gt 0 ] && [ "$(metric_sum 2 ^rtb_spend_micros_total)" -gt 0 ]' ||
  say "the bidders have not spent yet"

# The resharding: each campaign's slot to the next master.
export leased_before
leased_before=$(( $(metric_sum 1 '^rtb_redis_leased_micros_total') + $(metric_sum 2 '^rtb_redis_leased_micros_total') ))
moved=0
for id in $(campaign_ids "$CAMPAIGNS"); do
  key="{budget:$id}:left"
  slot=$(rcli CLUSTER KEYSLOT "$key")
  from=$(cluster_owner "$key")
  to=""
  take=0
  for p in $REDIS_PORTS $REDIS_PORTS; do
    [ "$take" = 1 ] && { to=$p; break; }
    [ "$p" = "$from" ] && take=1
  done
  cluster_migrate_slot "$slot" "$from" "$to"
  [ "$(redis-cli -p "$to" EXISTS "$key")" = 1 ] && moved=$((moved + 1))
done
say "moved $moved campaign slots to other masters"
check "every campaign's keys moved to another master ($moved of $ncamp)" "$moved == $ncamp"
if wait_for 10 '[ $(( $(metric_sum 1 ^rtb_redis_leased_micros_total) + $(metric_sum 2 ^rtb_redis_leased_micros_total) )) -gt "$leased_before" ]'; then
  again=1
else
  again=0
fi
check "the bidders lease on after the resharding (MOVED followed)" "$again == 1"
wait "${loads[@]}" || true
sleep 0.5  # the bids never billed pass their reservation_ms and go back to available
spend=0; leased=0; dry=0
for n in 1 2; do
  spend=$((spend + $(metric_sum "$n" '^rtb_spend_micros_total')))
  leased=$((leased + $(metric_sum "$n" '^rtb_redis_leased_micros_total')))
  dry=$((dry + $(metric_sum "$n" 'reason="budget"')))
  check "bidder $n's Redis is up on every shard" "$(metric_sum "$n" '^rtb_redis_up') == $((n == 1 ? 2 : 1))"
done
say "load: $(grep -h '^RESULT' "$FLEET_TMP/load1" "$FLEET_TMP/load2" | cut -c1-120 | tr '\n' ' ')"
say "spent $spend of $budget; leased $leased; no-bids for budget: $dry"
check "the bidders spent something" "$spend > 0"
check "the budgets ran dry (budget no-bids: $dry)" "$dry > 0"
check "spend ≤ leased ≤ budget" "$spend <= $leased && $leased <= $budget"
for n in 1 2; do
  kill -TERM "${BIDDER_PID[$n]}"
  rc=0
  wait "${BIDDER_PID[$n]}" || rc=$?
  check "SIGTERMed bidder $n exits 0" "$rc == 0"
  check "bidder $n gave its lease back (none of its holders left in the cluster)" "$(redis_leases_of "${BIDDER_PID[$n]}") == 0"
done
left=$(redis_left_sum)
say "after SIGTERM: left $left, spent $spend, budget $budget"
check "spent + left ≤ budget (no overspend)" "$spend + $left <= $budget"
fleet_finish
