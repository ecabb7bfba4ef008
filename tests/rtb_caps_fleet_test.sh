#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317  # (wait_for's conditions are single-quoted: evaluated at each poll; the functions they call look unreachable)
# tests/rtb_caps_fleet_test.sh — frequency caps shared by two bidder processes through a real
# redis-server ([rtb] caps = "redis", apps/rtb/redis_caps.h), started here on a free loopback
# port (tests/rtb_fleet_lib.sh) and stopped at the end. The capped campaign is the sample's
# stark-auto-video (3 impressions a user a day); one user's video requests go to bidder 1, then
# 2, then 1..., one at a time, each bid's win notice sent to the bidder that made it (its nurl).
#  0. caps = "redis" without [rtb] redis is a config error (exit 2) naming the knobs.
#  1. caps_cache_ms = 0 (every check reads Redis): the user gets exactly 3 stark bids across
#     the two bidders, and Redis counts 3.
#  2. caps_cache_ms = 60000 (checks answered from the owner's cache, refreshed by each win's
#     INCR reply): at least 3 and at most 3 + (2 - 1) stark bids (the bound redis_caps.h
#     states for one request at a time), and Redis counts every one of them.
#  3. A counter in Redis that is not a number: its read is a failed call and the owner's cached
#     count answers (a bid); the win's INCR gets an error reply and is counted locally.
#     Redis stopped (SIGSTOP) mid-run: a user the owner has a count for is still answered from
#     the cache (a bid, within tmax: the bidder's own deadline check), a user it has none for gets
#     204 cap_timeout (none late),
#     /healthz answers, a win is counted locally; Redis continued: new users bid again and
#     rtb_caps_redis_up is back to 1 by itself.
set -euo pipefail
root="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}"
[ -f "$root/tests/rtb_fleet_lib.sh" ] || root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tests/rtb_fleet_lib.sh
. "$root/tests/rtb_fleet_lib.sh"
VIDEO="$root/apps/rtb/testdata/video.json"
FLAGS=(--shards=2 --campaigns="$CAMPAIGNS" --hmac_key=caps-test-notice-key --caps=redis --shed_lag_ms=10000)
fail=0
# bid N USER [nowin]: a video request for USER to bidder N; prints the campaign bid for ("" for
# a 204) and, with a bid, sends its win notice to the bidder that made it (nowin: keeps its URL in
# $FLEET_TMP/nurl for `win`). The request's time as curl measured it (connect to the last byte,
# in ms) is left in $FLEET_TMP/bid_ms.
bid() {
  local body code nurl
  body=$(sed "s/user-vid-1/$2/" "$VIDEO" | curl -s --max-time 5 -w '\n%{time_total}\n%{http_code}' -X POST \
    --data-binary @- "http://${BIDDER_ADDR[$1]}/openrtb2/bid")
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  awk -v t="${body##*$'\n'}" 'BEGIN { printf "%d", t * 1000 }' >"$FLEET_TMP/bid_ms"
  body=${body%$'\n'*}
  if [ "$code" != 200 ]; then echo ""; return 0; fi
  nurl=$(printf '%s' "$body" | grep -o '"nurl":"[^"]*"' | head -n 1 | sed 's/^"nurl":"//; s/"$//; s/\${AUCTION_PRICE}/5/')
  printf '%s' "$nurl" >"$FLEET_TMP/nurl"
  [ "${3:-}" = nowin ] || win >/dev/null
  printf '%s' "$body" | grep -o '"cid":"[^"]*"' | head -n 1 | sed 's/^"cid":"//; s/"$//'
}
win() {  # the last bid's win notice; prints its status
  local code
  code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$(cat "$FLEET_TMP/nurl")")
  [ "$code" = 200 ] || say "a win notice was refused ($code): $(cat "$FLEET_TMP/nurl")"
  echo "$code"
}
leased_on_both_shards() {  # leased_on_both_shards N: each shard of bidder N holds budget leases
  [ "$(metric_sum "$1" '^rtb_redis_leased_micros_total\{shard="0"')" -gt 0 ] &&
    [ "$(metric_sum "$1" '^rtb_redis_leased_micros_total\{shard="1"')" -gt 0 ]
}
# alternate USER REQUESTS: one request at a time, bidder 1, 2, 1, ...; prints the stark bids.
alternate() {
  local i n=0
  for i in $(seq "$2"); do
    [ "$(bid $((1 + i % 2)) "$1")" = stark-auto-video ] && n=$((n + 1))
  done
  echo "$n"
}
redis_count() {  # Σ the cap counters in Redis
  rcli EVAL "local s = 0 for _, k in ipairs(redis.call('KEYS', 'cap:*')) do s = s + tonumber(redis.call('GET', k)) end return s" 0
}

# ---- 0. caps = "redis" needs [rtb] redis --------------------------------------------------
rc=0
err=$("$RTB_BIN" --port=0 --campaigns="$CAMPAIGNS" --hmac_key=caps-test-notice-key --caps=redis 2>&1 >/dev/null) || rc=$?
if [ "$rc" = 2 ] && [[ "$err" == *'--caps=redis: [rtb] caps = "redis" needs [rtb] redis = "host:port"'* ]]; then
  say "ok: --caps=redis without --redis is refused: $err"
else
  say "FAILED: --caps=redis without --redis: exit $rc, '$err'"
  fail=1
fi

fleet_start_redis

# ---- 1. every check reads Redis: exactly the cap -------------------------------------------
fleet_start_bidder 1 "${FLAGS[@]}" --caps_cache_ms=0
fleet_start_bidder 2 "${FLAGS[@]}" --caps_cache_ms=0
wait_for 10 'leased_on_both_shards 1 && leased_on_both_shards 2' || say "the bidders have not leased budgets yet"
n=$(alternate user-strict 10)
check "caps_cache_ms=0: exactly 3 stark bids for one user across two bidders (got $n)" "$n == 3"
check "Redis counts the 3 wins ($(redis_count))" "$(redis_count) == 3"
reads=$(( $(metric_sum 1 '^rtb_caps_redis_calls_total\{op="read",result="ok"') + \
          $(metric_sum 2 '^rtb_caps_redis_calls_total\{op="read",result="ok"') ))
check "every check read Redis (reads $reads ≥ 10)" "$reads >= 10"

# ---- 2. a long freshness: at most the cap + (bidders - 1) ---------------------------------
kill -TERM "${BIDDER_PID[1]}" "${BIDDER_PID[2]}"
wait "${BIDDER_PID[1]}" "${BIDDER_PID[2]}" || true
rcli FLUSHALL >/dev/null
fleet_start_bidder 3 "${FLAGS[@]}" --caps_cache_ms=60000
fleet_start_bidder 4 "${FLAGS[@]}" --caps_cache_ms=60000
wait_for 10 'leased_on_both_shards 3 && leased_on_both_shards 4' || say "the bidders have not leased budgets yet"
BIDDER_ADDR[1]=${BIDDER_ADDR[3]} BIDDER_ADDR[2]=${BIDDER_ADDR[4]}
n=$(alternate user-cached 12)
check "caps_cache_ms=60000: 3 to 3 + (2 - 1) stark bids (got $n)" "$n >= 3 && $n <= 4"
check "Redis counts every win ($(redis_count) = $n)" "$(redis_count) == $n"
hits=$(( $(metric_sum 3 '^rtb_caps_cache_lookups_total\{result="hit"') + $(metric_sum 4 '^rtb_caps_cache_lookups_total\{result="hit"') ))
check "checks were answered from the cache (hits $hits > 0)" "$hits > 0"
kill -TERM "${BIDDER_PID[3]}" "${BIDDER_PID[4]}"
wait "${BIDDER_PID[3]}" "${BIDDER_PID[4]}" || true

# ---- 3. a counter that is not a number; Redis stopped and continued -----------------------
incr_failed() { metric_sum 5 '^rtb_caps_redis_calls_total\{op="incr",result="failed"'; }
read_failed() { metric_sum 5 '^rtb_caps_redis_calls_total\{op="read",result="failed"'; }
rcli FLUSHALL >/dev/null
fleet_start_bidder 5 "${FLAGS[@]}" --caps_cache_ms=0
wait_for 10 'leased_on_both_shards 5' || say "the bidder has not leased budgets yet"
[ "$(bid 5 user-known)" = stark-auto-video ] || say "user-known got no stark bid (1 of 3)"
key=$(rcli --scan --pattern 'cap:*')
rcli SET "$key" not-a-count >/dev/null
got=$(bid 5 user-known)
check "a counter that is not a number: the owner's cached count (1 of 3) answers ($got)" \
  "$( [ "$got" = stark-auto-video ] && echo 1 || echo 0) == 1"
check "... its read is a failed call ($(read_failed)), and so is the win's INCR ($(incr_failed))" \
  "$(read_failed) >= 1 && $(incr_failed) >= 1"
grep -q 'frequency caps: Redis: a reply that is not a counter' "$FLEET_TMP/err5" ||
  { say "FAILED: the bidder's log does not say why (a reply that is not a counter)"; fail=1; }
rcli DEL "$key" >/dev/null
failed_before=$(incr_failed)
late() { metric_sum 5 '^rtb_no_bids_total\{reason="late"'; }
late_before=$(late)
kill -STOP "$REDIS_PID"
got=$(bid 5 user-known nowin)
known_ms=$(cat "$FLEET_TMP/bid_ms")
check "Redis stopped: a user the owner has a count for (2 of 3) still gets a stark bid from the cache ($got)" \
  "$( [ "$got" = stark-auto-video ] && echo 1 || echo 0) == 1"
check "... in time: a bid at all is (past its deadline the bidder answers 204 late); ${known_ms} ms here, < 1 s" \
  "$known_ms < 1000"
check "its win notice is accepted (the INCR fails: counted by the owner's table)" "$(win) == 200"
got=$(bid 5 user-unknown)
unknown_ms=$(cat "$FLEET_TMP/bid_ms")
check "a user it has no count for gets 204 ('$got', cap_timeout no-bid)" "$( [ -z "$got" ] && echo 1 || echo 0) == 1"
check "... in time: ${unknown_ms} ms here, < 1 s (the wait for Redis is bounded by the request's deadline)" \
  "$unknown_ms < 1000"
check "no request was answered late while Redis was stopped" "$(late) == $late_before"
check "/healthz answers while Redis is stopped" "$(curl -s -o /dev/null -w '%{http_code}' "http://${BIDDER_ADDR[5]}/healthz") == 200"
check "rtb_no_bids cap_timeout counted" "$(metric_sum 5 '^rtb_no_bids_total\{reason="cap_timeout"') >= 1"
check "rtb_caps_fallbacks: to cache and to cap_timeout" \
  "$(metric_sum 5 '^rtb_caps_fallbacks_total\{to="cache"') >= 1 && $(metric_sum 5 '^rtb_caps_fallbacks_total\{to="cap_timeout"') >= 1"
check "the win while Redis was stopped failed to increment (counted locally)" "$(incr_failed) > $failed_before"
kill -CONT "$REDIS_PID"
if wait_for 10 '[ "$(bid 5 user-after-$SECONDS)" = stark-auto-video ]'; then again=1; else again=0; fi
check "Redis continued: a new user gets a stark bid again" "$again == 1"
check "the Redis read worked again" "$(metric_sum 5 '^rtb_caps_redis_calls_total\{op="read",result="ok"') >= 2"
check "rtb_caps_redis_up says so" "$(metric_sum 5 '^rtb_caps_redis_up') >= 1"
rc=0
kill -TERM "${BIDDER_PID[5]}"
wait "${BIDDER_PID[5]}" || rc=$?
check "the bidder exits 0 on SIGTERM" "$rc == 0"
if [ "$fail" != 0 ]; then
  for n in 1 2 3 4 5; do say "bidder $n stderr:"; tail -n 5 "$FLEET_TMP/err$n" >&2 || true; done
fi
exit "$fail"
