#!/usr/bin/env bash
# perf/rtb_overload.sh — the bidder (apps/rtb) under open-loop load with the OpenRTB mix
# (perf/http_load --rtb_mix), the part of `tools/mnv bench rtb` that wrk cannot do:
#   capacity  the highest rate of a ladder (LADDER x a closed-loop estimate, STEP_S each) whose
#             run keeps its schedule with p99 <= P99_MS (1 ms) from the intended send time;
#   half      p99 at 50% of the capacity (goal: <= 1 ms), HALF_S;
#   overload  2x the capacity for OVERLOAD_S (20 s), then 50% for RECOVER_S in the same run:
#             answered within DEADLINE_MS (tmax) per second >= 90% of the capacity, the answered
#             requests' p99 <= DEADLINE_MS, and the recovery step's first second back under P99_MS.
# Prints a Markdown block for perf/RESULTS.md (with the commands) and writes OUT/ with the CSVs
# and plots (tools/plot_latency.sh). The bidder runs on the sample config, pinned to SERVER_CPUS
# (all but CPU 0 on 3+ CPUs, else CPU 1); the generator on CLIENT_CPU.
#
#   bazel build --config=opt //apps/rtb //perf:http_load && perf/rtb_overload.sh
#   RTB_ADDR=127.0.0.1:8080 perf/rtb_overload.sh          # a bidder that is already running
set -euo pipefail
say() { printf 'rtb_overload: %s\n' "$*" >&2; }
cd "$(dirname "$0")/.."
ncpu=$(nproc)
if [ "$ncpu" -ge 3 ]; then SERVER_CPUS=${SERVER_CPUS:-1-$((ncpu - 1))}; else SERVER_CPUS=${SERVER_CPUS:-$((ncpu - 1))}; fi
CLIENT_CPU=${CLIENT_CPU:-0}
STEP_S=${STEP_S:-3}
HALF_S=${HALF_S:-5}
OVERLOAD_S=${OVERLOAD_S:-20}
RECOVER_S=${RECOVER_S:-5}
P99_MS=${P99_MS:-1}
DEADLINE_MS=${DEADLINE_MS:-100}
LADDER=${LADDER:-0.1 0.2 0.3 0.4 0.5 0.6 0.8 1.0 1.2}
MIX=${MIX:-20000}
OUT=${OUT:-perf/out/rtb_overload}
RTB_BIN=${RTB_BIN:-bazel-bin/apps/rtb/rtb}
CAMPAIGNS=${CAMPAIGNS:-$PWD/apps/rtb/campaigns.toml}
RTB_FLAGS=${RTB_FLAGS:---config=shard/sample_affinity.toml --campaigns=$CAMPAIGNS --hmac_key=bench-only-notice-key}
LOAD=${LOAD:-bazel-bin/perf/http_load}
[ -x "$LOAD" ] || { say "$LOAD is missing: bazel build --config=opt //perf:http_load"; exit 1; }
. perf/lib.sh
mkdir -p "$OUT"/{ladder,half,overload}
if [ -n "${RTB_ADDR:-}" ]; then
  SERVER_PORT=${RTB_ADDR##*:}
else
  [ -x "$RTB_BIN" ] || { say "$RTB_BIN is missing: bazel build --config=opt //apps/rtb"; exit 1; }
  start_server bidder "$SERVER_CPUS" "$RTB_BIN" "$RTB_FLAGS"
fi
load() { taskset -c "$CLIENT_CPU" "$LOAD" --port="$SERVER_PORT" --rtb_mix="$MIX" --progress=off "$@"; }
field() { awk -F, -v s="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i } NR > 1 && $1 == s { print $h[c] }' "$1"; }

estimate=$(load --conns=64 --warmup_s=0.5 --duration_s=2 2>/dev/null | grep '^RESULT' | sed -n 's/.* req_per_s=\([^ ]*\).*/\1/p')
[ -n "$estimate" ] || { say "the closed-loop estimate failed"; exit 1; }
rates=$(for f in $LADDER; do awk -v c="$estimate" -v f="$f" 'BEGIN { printf "%.0f\n", c * f }'; done | paste -sd,)
load --rate="$rates" --duration_s="$STEP_S" --conns=0 --deadline_ms="$DEADLINE_MS" --out="$OUT/ladder" >"$OUT/ladder/stdout" 2>&1 || true
capacity=0
within_deadline=0
k=0
for r in ${rates//,/ }; do
  k=$((k + 1))
  v=$(field "$OUT/ladder/steps.csv" "$k" valid); p=$(field "$OUT/ladder/steps.csv" "$k" p99_ms)
  if [ "$v" = 1 ] && awk -v p="$p" -v m="$P99_MS" 'BEGIN { exit !(p <= m) }'; then capacity=$r; fi
  if [ "$v" = 1 ] && awk -v p="$p" -v m="$DEADLINE_MS" 'BEGIN { exit !(p <= m) }'; then within_deadline=$r; fi
done
note=""
if [ "$capacity" = 0 ]; then
  # A machine too noisy for a 1 ms p99 (shared, or small): the highest rate whose p99 stays within
  # the deadline stands in, so that 2x of it is still an overload.
  capacity=$within_deadline
  note=" (no step met p99 <= ${P99_MS} ms on this machine: the highest with p99 <= ${DEADLINE_MS} ms instead)"
fi
[ "$capacity" != 0 ] || capacity=$(cut -d, -f1 <<<"$rates")
half=$(awk -v c="$capacity" 'BEGIN { printf "%.0f", c / 2 }')
double=$(awk -v c="$capacity" 'BEGIN { printf "%.0f", c * 2 }')
load --rate="$half" --duration_s="$HALF_S" --conns=0 --deadline_ms="$DEADLINE_MS" --out="$OUT/half" >"$OUT/half/stdout" 2>&1 || true
load --rate="$double:$OVERLOAD_S,$half:$RECOVER_S" --conns=0 --deadline_ms="$DEADLINE_MS" --out="$OUT/overload" >"$OUT/overload/stdout" 2>&1 || true
[ -z "${RTB_ADDR:-}" ] && stop_server

o() { field "$OUT/overload/steps.csv" "$1" "$2" | awk '{ if ($1 ~ /\./) printf "%.3f", $1; else printf "%s", $1 }'; }
answered=$(o 1 responses); late=$(o 1 timeouts)
within_per_s=$(awk -v a="$answered" -v l="$late" -v d="$OVERLOAD_S" 'BEGIN { printf "%.0f", (a - l) / d }')
recover_p99=$(awk -F, 'NR > 1 && $1 == 2 { printf "%.3f", $11; exit }' "$OUT/overload/timeline.csv")
pass() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }
half_p99=$(field "$OUT/half/steps.csv" 1 p99_ms | awk '{ printf "%.3f", $1 }')
echo "### Open loop on the bidder (perf/rtb_overload.sh)"
echo
echo "Command: \`bazel build --config=opt //apps/rtb //perf:http_load && perf/rtb_overload.sh\` (bidder: \`$RTB_FLAGS\` on CPUs $SERVER_CPUS; http_load on CPU $CLIENT_CPU; the OpenRTB mix of $MIX requests, seed 1; load average $(cut -d' ' -f1 /proc/loadavg) on $ncpu CPUs)."
echo
echo "| measure | value | goal |"
echo "|---|---|---|"
echo "| closed-loop estimate (64 connections) | $estimate req/s | |"
echo "| capacity: highest ladder rate, schedule kept, p99 <= ${P99_MS} ms$note | $capacity req/s | |"
echo "| p99 at 50% of capacity ($half/s, ${HALF_S} s) | $half_p99 ms | <= 1 ms: $(pass "$half_p99 <= 1") |"
echo "| 2x capacity ($double/s, ${OVERLOAD_S} s; schedule kept: $([ "$(o 1 valid)" = 1 ] && echo yes || echo "**no**, the generator fell behind: the figures include its lag")): answered within ${DEADLINE_MS} ms per s | $within_per_s (of $(o 1 responses) answered, $(o 1 s200) bids, $(o 1 s204) no-bids, $late late, $(o 1 errors) errors; achieved send rate $(o 1 achieved_rate)) | >= 90% of capacity = $(awk -v c="$capacity" 'BEGIN { printf "%.0f", 0.9 * c }'): $(pass "$within_per_s >= 0.9 * $capacity") |"
echo "| 2x capacity: p99 / p99.9 / max of the answers | $(o 1 p99_ms) / $(o 1 p999_ms) / $(o 1 max_ms) ms | p99 <= ${DEADLINE_MS} ms: $(pass "$(o 1 p99_ms) <= $DEADLINE_MS") |"
echo "| back to 50%: p99 in its first second, whole step | ${recover_p99:-—} / $(o 2 p99_ms) ms | first second <= ${P99_MS} ms: $(pass "${recover_p99:-1e9} <= $P99_MS") |"
echo
echo "Ladder (${STEP_S} s per step):"
echo
sed -n '/^| step/,$p' "$OUT/ladder/stdout"
tools/plot_latency.sh run "$OUT/overload" "bidder: 2x capacity for ${OVERLOAD_S} s, then 50%"
tools/plot_latency.sh run "$OUT/ladder" "bidder: capacity ladder"
echo
echo "Plots: $OUT/overload/latency_over_time.png, $OUT/overload/latency_spectrum.png, $OUT/ladder/latency_spectrum.png"
