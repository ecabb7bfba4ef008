#!/usr/bin/env bash
# tools/demo_rtb.sh — the OpenRTB bidder (apps/rtb) as an exchange sees it, driven by our
# open-loop generator (perf/http_load) with the seeded OpenRTB 2.6 request mix (perf/rtb_mix.h).
#
# Starts the bidder on the sample config (one shard per core of its CPUs: all but CPU 0 where
# there are 3+ CPUs, else CPU 1) with the sample campaigns; measures its capacity with a short
# closed loop; then offers 25%, 50%, 100% and 200% of it, STEP_S each (requests leave on their
# schedule whatever the answers do, latency counts from when each was due), sending win notices
# for WIN_SHARE of the bids, with a progress line once a second. Prints per step: offered and
# achieved rate, answered, bids (200), no-bids (204), malformed (400), p50/p99/p99.9, timeouts
# (answers after their request's tmax, 80-300 ms; or after DEADLINE_MS when set), shed (the
# bidder's early no-bids, from its /metrics when it counts them); then spend (and reservations) against budget per campaign (rtb_campaign_* series) and each shard's share
# of the requests (from /metrics), and the plots (out/demo_rtb/*.png).
#
#   bazel build --config=opt //apps/rtb //perf:http_load && tools/demo_rtb.sh
#   RTB_ADDR=127.0.0.1:8080 RTB_METRICS_ADDR=127.0.0.1:9090 tools/demo_rtb.sh   # one already running
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'demo_rtb: %s\n' "$*" >&2; }

ncpu=$(nproc)
STEP_S=${STEP_S:-4}
CAPACITY_S=${CAPACITY_S:-2}
CONNS=${CONNS:-64}
DEADLINE_MS=${DEADLINE_MS:-}
WIN_SHARE=${WIN_SHARE:-0.2}
MIX=${MIX:-20000}
OUT=${OUT:-out/demo_rtb}
RTB_BIN=${RTB_BIN:-bazel-bin/apps/rtb/rtb}
CAMPAIGNS=${CAMPAIGNS:-$PWD/apps/rtb/campaigns.toml}
RTB_FLAGS=${RTB_FLAGS:---config=shard/sample_affinity.toml --campaigns=$CAMPAIGNS --hmac_key=demo-only-notice-key --admin_port=0}
LOAD=bazel-bin/perf/http_load
# Bid requests answered per shard: with a bid, and without (204, shed included).
SHARES_METRIC=${SHARES_METRIC:-rtb_bid_requests_total,rtb_no_bids_total}
if [ "$ncpu" -ge 3 ]; then server_cpus="1-$((ncpu - 1))"; else server_cpus=$((ncpu - 1)); fi
client_cpu=0
[ -x "$LOAD" ] || { say "$LOAD is missing: bazel build --config=opt //perf:http_load"; exit 1; }
command -v curl >/dev/null || { say "curl is not installed (Debian package curl; tools/mnv setup)"; exit 1; }

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$OUT"
rm -f "$OUT"/*.csv "$OUT"/*.png "$OUT"/metrics_*.txt

if [ -n "${RTB_ADDR:-}" ]; then
  addr=$RTB_ADDR
  echo "== RTB demo: the bidder at $addr; perf/http_load on CPU $client_cpu =="
else
  [ -x "$RTB_BIN" ] || { say "$RTB_BIN is missing: bazel build --config=opt //apps/rtb"; exit 1; }
  mkfifo "$tmp/stdout"
  # shellcheck disable=SC2086  # flags are words
  taskset -c "$server_cpus" "$RTB_BIN" --host=127.0.0.1 --port=0 $RTB_FLAGS >"$tmp/stdout" 2>"$tmp/stderr" &
  server_pid=$!
  exec 3<"$tmp/stdout"
  if ! IFS= read -r -t 30 first <&3 || [[ "$first" != "listening on "* ]]; then
    say "the bidder did not say 'listening on HOST:PORT' (got '${first:-}'); its stderr:"
    cat "$tmp/stderr" >&2
    exit 1
  fi
  addr=${first#listening on }
  # The admin listener (GET /metrics) where the bidder has one: the progress line's shard shares.
  if IFS= read -r -t 5 second <&3 && [[ "$second" == "admin listening on "* ]]; then metrics_addr=${second#admin listening on }; fi
  echo "== RTB demo: $RTB_BIN $RTB_FLAGS on CPU(s) $server_cpus (one shard per CPU); perf/http_load on CPU $client_cpu =="
fi
port=${addr##*:}
metrics_addr=${metrics_addr:-${RTB_METRICS_ADDR:-$addr}}
scrape() { curl -s --max-time 2 "http://$metrics_addr/metrics" >"$1" 2>/dev/null || : >"$1"; }
scrape "$OUT/metrics_0.txt"

kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
cap_line=$(taskset -c "$client_cpu" "$LOAD" --port="$port" --rtb_mix="$MIX" --conns="$CONNS" --warmup_s=0.5 \
  --duration_s="$CAPACITY_S" 2>/dev/null | grep '^RESULT' || true)
capacity=$(kv "$cap_line" req_per_s)
if [ -z "$capacity" ] || [ "${capacity%.*}" -le 0 ]; then
  say "capacity run failed: $cap_line"
  exit 1
fi
echo "capacity (closed loop, $CONNS connections, ${CAPACITY_S} s, the OpenRTB mix): $capacity req/s, p99 $(kv "$cap_line" p99_us) µs"
rates=$(awk -v c="$capacity" 'BEGIN { printf "%.0f,%.0f,%.0f,%.0f", c * 0.25, c * 0.5, c, c * 2 }')
echo "open-loop steps at 25%, 50%, 100%, 200% of it: $rates req/s, ${STEP_S} s each; win notices for ${WIN_SHARE} of bids; answers after $([ -n "$DEADLINE_MS" ] && echo "$DEADLINE_MS ms" || echo "their request's tmax") are timeouts"
echo
# Exit status 1 just says a step could not keep its rate (the overload step): the table shows it.
taskset -c "$client_cpu" "$LOAD" --port="$port" --rtb_mix="$MIX" --rate="$rates" --duration_s="$STEP_S" --conns=0 \
  ${DEADLINE_MS:+--deadline_ms="$DEADLINE_MS"} --win_share="$WIN_SHARE" --timeout_s=5 --out="$OUT" \
  --shares_from="$metrics_addr" --shares_metric="$SHARES_METRIC" \
  --after_step="curl -s --max-time 2 http://$metrics_addr/metrics > $OUT/metrics_\$STEP.txt || true" >"$tmp/load" || true

# The sum of the samples whose series (name and labels) matches $2 in scrape $1 (0 when none).
metric_sum() { awk -v re="$2" '!/^#/ && $1 ~ re { s += $NF } END { printf "%.0f", s }' "$1" 2>/dev/null || echo 0; }
echo "| step | offered/s | achieved/s | answered | bids (200) | no-bids (204) | malformed (400) | p50 ms | p99 ms | p99.9 ms | timeouts | shed | errors | valid |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
while IFS=, read -r step target achieved valid sent responses s200 s204 s400 other timeouts errors late lag p50 p90 p99 p999 max rest; do
  [ "$step" = step ] && continue
  shed="—"
  if [ -s "$OUT/metrics_$step.txt" ] && grep -q 'reason="shed"' "$OUT/metrics_$step.txt"; then
    shed=$(( $(metric_sum "$OUT/metrics_$step.txt" 'reason="shed"') - $(metric_sum "$OUT/metrics_$((step - 1)).txt" 'reason="shed"') ))
  fi
  printf '| %s | %.0f | %.0f | %s | %s | %s | %s | %.3f | %.3f | %.3f | %s | %s | %s | %s |\n' "$step" "$target" "$achieved" \
    "$responses" "$s200" "$s204" "$s400" "$p50" "$p99" "$p999" "$timeouts" "$shed" "$errors" "$([ "$valid" = 1 ] && echo yes || echo no)"
done <"$OUT/steps.csv"
awk -F, 'NR > 1 && $4 != 1 { printf "step %d did not keep its schedule (achieved %.0f of %.0f/s, %d late sends, the largest %.0f ms late): the generator fell behind, so its latencies include that lag\n", $1, $3, $2, $13, $14 }' "$OUT/steps.csv"
wins=$(awk -F, 'NR > 1 { w += $23; e += $24; b += $26 } END { printf "%d win (nurl) and %d billing (burl) notices sent, %d answered with an error", w, b, e }' "$OUT/steps.csv")
echo
echo "notices: $wins"
last="$OUT/metrics_4.txt"
if [ -s "$last" ]; then
  echo
  echo "no-bids by reason, whole run (rtb_no_bids_total):"
  grep '^rtb_no_bids_total{' "$last" | awk '{ match($0, /reason="[^"]*"/); r = substr($0, RSTART + 8, RLENGTH - 9); n[r] += $NF }
    END { for (k in n) if (n[k] > 0) printf "  %-14s %d\n", k, n[k] }' | sort -k2 -nr
  spend=$(metric_sum "$last" '^rtb_spend_micros_total')
  echo
  echo "spend (billing notices at the clearing price): $(awk -v s="$spend" 'BEGIN { printf "%.2f", s / 1e6 }') USD in all; per campaign (USD, all shards):"
  echo "| campaign | spent | reserved | daily budget | total budget | spent/daily |"
  echo "|---|---|---|---|---|---|"
  grep -E '^rtb_campaign_(spent_micros_total|reserved_micros|budget_micros)\{' "$last" | awk '
    { match($0, /campaign="[^"]*"/); c = substr($0, RSTART + 10, RLENGTH - 11); seen[c] = 1
      if ($0 ~ /^rtb_campaign_spent/) s[c] += $NF
      else if ($0 ~ /^rtb_campaign_reserved/) r[c] += $NF
      else if ($0 ~ /kind="daily"/) d[c] += $NF
      else t[c] += $NF }
    END { for (c in seen) printf "| %s | %.2f | %.4f | %.2f | %.2f | %.3f%% |\n", c, s[c] / 1e6, r[c] / 1e6, d[c] / 1e6, t[c] / 1e6, (d[c] > 0 ? 100 * s[c] / d[c] : 0) }' | sort
  echo
  echo "per-shard share of the requests ($SHARES_METRIC):"
  grep -v '^#' "$last" | grep 'shard="' | grep -E "^(${SHARES_METRIC//,/|})[{ ]" | awk '
    { match($0, /shard="[0-9]+"/); s = substr($0, RSTART + 7, RLENGTH - 8); n[s] += $NF; t += $NF }
    END { if (t == 0) print "  (no per-shard request counter)"; for (k in n) printf "  shard %s: %.0f (%.1f%%)\n", k, n[k], 100 * n[k] / t }'
else
  echo "(the bidder served no /metrics: no shed, spend or per-shard figures)"
fi
if [ -n "$server_pid" ]; then
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
fi
tools/plot_latency.sh run "$OUT" "OpenRTB bidder, open-loop steps"
echo "plots: $OUT/latency_over_time.png $OUT/latency_spectrum.png (data: $OUT/steps.csv, timeline.csv, metrics_*.txt)"
