#!/usr/bin/env bash
# tools/demo_fleet.sh — a bidder fleet sharing campaign budgets through Redis (issue 18;
# apps/rtb/lease_keeper.h): starts redis-server (a free loopback port, its own temporary
# directory, no persistence), sets every campaign's fleet-wide budget in it (BUDGET_MICROS each,
# small so that some run dry), starts two bidders on different ports leasing from it, and
# spreads perf/http_load's OpenRTB mix across both (open-loop steps RATES per bidder, STEP_S
# each, win and billing notices for WIN_SHARE of the bids). Prints the same table as the RTB
# demo per bidder and step, then per campaign the global spend (both bidders) against its budget
# with what Redis still has and what is leased out, and after SIGTERM (the bidders give back
# what they hold) the check spent + left ≤ budget. Frequency caps are shared through the same
# Redis (CAPS=redis, [rtb] caps; CAPS=local: each bidder its own): the caps counters per bidder
# (cache hits and misses, Redis reads and increments, fallbacks, mean call latency) and the
# counters Redis holds.
#
#   bazel build --config=opt //apps/rtb //perf:http_load && tools/demo_fleet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'demo_fleet: %s\n' "$*" >&2; }
RTB_BIN=${RTB_BIN:-bazel-bin/apps/rtb/rtb}
LOAD=${LOAD:-bazel-bin/perf/http_load}
CAMPAIGNS=${CAMPAIGNS:-$PWD/apps/rtb/campaigns.toml}
BUDGET_MICROS=${BUDGET_MICROS:-3000000}
LEASE_MICROS=${LEASE_MICROS:-200000}
RATES=${RATES:-500,1500}
STEP_S=${STEP_S:-4}
WIN_SHARE=${WIN_SHARE:-0.5}
SHARDS=${SHARDS:-1}
RESERVATION_MS=${RESERVATION_MS:-1000}  # a bid without a notice holds its cost this long
CAPS=${CAPS:-redis}
CAPS_CACHE_MS=${CAPS_CACHE_MS:-100}
for b in "$RTB_BIN" "$LOAD"; do [ -x "$b" ] || { say "$b is missing: bazel build --config=opt //apps/rtb //perf:http_load"; exit 1; }; done
for c in redis-server redis-cli curl python3; do command -v "$c" >/dev/null || { say "$c is not installed (tools/mnv setup)"; exit 1; }; done
# shellcheck source=tests/rtb_fleet_lib.sh
. tests/rtb_fleet_lib.sh

fleet_start_redis
fleet_set_budgets "$BUDGET_MICROS" "$CAMPAIGNS"
ncamp=$(campaign_ids "$CAMPAIGNS" | wc -l)
budget=$((BUDGET_MICROS * ncamp))
flags=(--shards="$SHARDS" --campaigns="$CAMPAIGNS" --hmac_key=demo-only-notice-key --redis_lease_micros="$LEASE_MICROS" --reservation_ms="$RESERVATION_MS"
  --caps="$CAPS" --caps_cache_ms="$CAPS_CACHE_MS")
fleet_start_bidder 1 "${flags[@]}"
fleet_start_bidder 2 "${flags[@]}"
echo "== fleet demo: redis-server on 127.0.0.1:$REDIS_PORT; bidders on ${BIDDER_ADDR[1]} and ${BIDDER_ADDR[2]} ($SHARDS shard(s) each, leasing $LEASE_MICROS micro-USD at a time) =="
echo "frequency caps: $CAPS$([ "$CAPS" = redis ] && echo " (shared through the same Redis; a cached count answers for $CAPS_CACHE_MS ms)")"
echo "every campaign's budget, fleet-wide, in Redis: $(awk -v b="$BUDGET_MICROS" 'BEGIN { printf "%.2f", b / 1e6 }') USD ($ncamp campaigns); open-loop steps $RATES req/s per bidder, ${STEP_S} s each, notices for $WIN_SHARE of the bids"
echo
for n in 1 2; do
  mkdir -p "$FLEET_TMP/load$n.d"
  "$LOAD" --port="${BIDDER_ADDR[$n]##*:}" --rtb_mix=20000 --seed="$n" --rate="$RATES" --duration_s="$STEP_S" --conns=0 \
    --win_share="$WIN_SHARE" --timeout_s=5 --out="$FLEET_TMP/load$n.d" >"$FLEET_TMP/load$n" 2>&1 &
  lp[n]=$!
done
wait "${lp[1]}" "${lp[2]}" || true
echo "| bidder | step | offered/s | achieved/s | answered | bids (200) | no-bids (204) | malformed (400) | p50 ms | p99 ms | p99.9 ms | timeouts | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in 1 2; do
  [ -s "$FLEET_TMP/load$n.d/steps.csv" ] || { say "bidder $n's load run wrote no steps.csv:"; cat "$FLEET_TMP/load$n" >&2; exit 1; }
  while IFS=, read -r step target achieved _ _ responses s200 s204 s400 _ timeouts errors _ _ p50 _ p99 p999 _; do
    [ "$step" = step ] && continue
    printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s | %.3f | %.3f | %.3f | %s | %s |\n' "${BIDDER_ADDR[$n]}" "$step" \
      "$target" "$achieved" "$responses" "$s200" "$s204" "$s400" "$p50" "$p99" "$p999" "$timeouts" "$errors"
  done <"$FLEET_TMP/load$n.d/steps.csv"
done
echo
# The bids that got no notice hold their cost for RESERVATION_MS: let them go back to the slices.
sleep "$(awk -v r="$RESERVATION_MS" 'BEGIN { print r / 1000 + 0.3 }')"
for n in 1 2; do curl -s --max-time 5 "http://${BIDDER_ADMIN[$n]}/metrics" >"$FLEET_TMP/metrics$n"; done
echo "global spend per campaign (both bidders' rtb_campaign_spent_micros) against its fleet-wide budget; Redis: left and leased out now:"
echo "| campaign | spent USD | budget USD | spent % | left in Redis USD | leased out USD |"
echo "|---|---|---|---|---|---|"
for id in $(campaign_ids "$CAMPAIGNS"); do
  spent=$(cat "$FLEET_TMP/metrics1" "$FLEET_TMP/metrics2" |
    awk -v c="campaign=\"$id\"" '/^rtb_campaign_spent_micros_total\{/ && index($0, c) { s += $NF } END { printf "%.0f", s }')
  left=$(rcli GET "{budget:$id}:left")
  out=$(rcli HVALS "{budget:$id}:leases" | awk '{ s += $1 } END { printf "%.0f", s }')
  printf '| %s | %.2f | %.2f | %.1f%% | %.2f | %.2f |\n' "$id" "$(awk -v s="$spent" 'BEGIN { print s / 1e6 }')" \
    "$(awk -v b="$BUDGET_MICROS" 'BEGIN { print b / 1e6 }')" "$(awk -v s="$spent" -v b="$BUDGET_MICROS" 'BEGIN { print 100 * s / b }')" \
    "$(awk -v s="$left" 'BEGIN { print s / 1e6 }')" "$(awk -v s="$out" 'BEGIN { print s / 1e6 }')"
done
spent=$(( $(awk '/^rtb_spend_micros_total/ { s += $NF } END { printf "%.0f", s }' "$FLEET_TMP/metrics1" "$FLEET_TMP/metrics2") ))
dry=$(awk '/^rtb_no_bids_total\{/ && /reason="budget"/ { s += $NF } END { printf "%.0f", s }' "$FLEET_TMP/metrics1" "$FLEET_TMP/metrics2")
calls=$(awk '/^rtb_redis_lease_calls_total\{/ { s += $NF } END { printf "%.0f", s }' "$FLEET_TMP/metrics1" "$FLEET_TMP/metrics2")
echo
echo "no-bids because a campaign's lease ran dry: $dry; lease calls to Redis: $calls"
if [ "$CAPS" = redis ]; then
  echo
  echo "frequency caps through Redis, per bidder (rtb_caps_*; a check's capped campaigns are looked up in the owner's cache, a stale one read from Redis):"
  echo "| bidder | cache hits | cache misses | Redis reads ok / failed | Redis increments ok / failed | fallbacks to cache / cap_timeout | mean call ms | user_cap no-bids |"
  echo "|---|---|---|---|---|---|---|---|"
  for n in 1 2; do
    m="$FLEET_TMP/metrics$n"
    sum() { awk -v re="$1" '!/^#/ && $1 ~ re { s += $NF } END { printf "%.0f", s }' "$m"; }
    printf '| %s | %s | %s | %s / %s | %s / %s | %s / %s | %s | %s |\n' "${BIDDER_ADDR[$n]}" \
      "$(sum '^rtb_caps_cache_lookups_total\{result="hit"')" "$(sum '^rtb_caps_cache_lookups_total\{result="miss"')" \
      "$(sum '^rtb_caps_redis_calls_total\{op="read",result="ok"')" "$(sum '^rtb_caps_redis_calls_total\{op="read",result="failed"')" \
      "$(sum '^rtb_caps_redis_calls_total\{op="incr",result="ok"')" "$(sum '^rtb_caps_redis_calls_total\{op="incr",result="failed"')" \
      "$(sum '^rtb_caps_fallbacks_total\{to="cache"')" "$(sum '^rtb_caps_fallbacks_total\{to="cap_timeout"')" \
      "$(awk '/^rtb_caps_redis_seconds_sum/ { s += $NF } /^rtb_caps_redis_seconds_count/ { c += $NF } END { printf "%.3f", (c > 0 ? 1000 * s / c : 0) }' "$m")" \
      "$(sum '^rtb_no_bids_total\{reason="user_cap"')"
  done
  echo "Redis holds $(rcli EVAL "return #redis.call('KEYS', 'cap:*')" 0) (user, campaign) counters; their impressions: $(rcli EVAL \
    "local s = 0 for _, k in ipairs(redis.call('KEYS', 'cap:*')) do s = s + tonumber(redis.call('GET', k)) end return s" 0)"
fi
for n in 1 2; do kill -TERM "${BIDDER_PID[$n]}"; done
rc=0
for n in 1 2; do wait "${BIDDER_PID[$n]}" || rc=1; done
left=$(redis_left_sum)
echo "after SIGTERM (each bidder gave back what it held): spent $(awk -v s="$spent" 'BEGIN { printf "%.2f", s / 1e6 }') USD + left in Redis $(awk -v s="$left" 'BEGIN { printf "%.2f", s / 1e6 }') USD of $(awk -v s="$budget" 'BEGIN { printf "%.2f", s / 1e6 }') USD; never spent, never returned (reserved by bids at stop): $(awk -v s="$((budget - spent - left))" 'BEGIN { printf "%.4f", s / 1e6 }') USD"
if [ "$rc" != 0 ] || [ $((spent + left)) -gt "$budget" ]; then
  say "FAILED: bidders exited $rc; spent + left = $((spent + left)) > budget $budget?"
  exit 1
fi
echo "ok: spent + left ≤ budget (overspend bound 0)"
