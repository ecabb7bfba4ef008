#!/usr/bin/env bash
# perf/shard_compare.sh — one shard against two, and the cross-shard mailboxes, in one run.
#
# Builds with --config=opt (//apps/echo, //perf:echo_load, //perf:mailbox_bench), then:
#
#   1. Echo ping-pong (perf/echo_load: CONNS connections, one SIZE-byte line outstanding each,
#      WARMUP_S of warm-up, then DURATION_S measured) against a fresh apps/echo for each of
#        * 1 shard            server pinned to the last CPU, echo_load to CPU 0 (as
#                             perf/echo_compare.sh does);
#        * 2 shards reuseport the kernel's SO_REUSEPORT hash spreads connections;
#        * 2 shards handoff   the accepting shard hands each connection to the least-loaded one;
#      the 2-shard servers run on CPU 0 and the last CPU, and echo_load runs on those same CPUs
#      (TWO_SHARD_CPUS): on a 2-CPU machine the client competes with the server for both.
#      REPS rounds, interleaved (1, 2 reuseport, 2 handoff, 1, ...) so slow spells of a shared
#      machine hit every configuration alike; each column is the median of its rounds. Server CPU
#      is utime+stime of the whole server process (every shard thread) over the measured window
#      (echo_load --server_pid). The connection balance comes from the lines the server prints
#      on SIGTERM ("echo: shard K served N connections", followed by "(M died of a trap or an
#      unhandled error)" in later versions; those deaths are counted in the errors column).
#   2. Cross-shard mailboxes: perf/mailbox_bench MAILBOX_REPS times (two busy-polling threads on
#      the first two CPUs); medians of the Mailboxes round trip p50/p99 and of the one-way
#      batched throughput.
#
# Prints markdown tables on stdout (progress goes to stderr). Every process it starts is stopped
# on exit. About 2 minutes with the defaults on a 2-CPU machine, after the build.
#
# Environment overrides (defaults in brackets):
#   DURATION_S [4]  WARMUP_S [1]  CONNS [1000]  SIZE [64]  REPS [3]  POLLER [io_uring]
#   MAX_CONNECTING [64] (echo_load --max_connecting: connections opening at once)
#   TWO_SHARD_CPUS [0,LAST] (cpuset of the 2-shard server, and of echo_load in that case)
#   ECHO_ARGS [] (extra flags for apps/echo)  MAILBOX_REPS [3]
#   SHARD_MODES [auto] (a reuseport and a handoff row of 2 shards per --shard_mode given, e.g.
#     "threads processes" with ECHO_ARGS=--isolation=mprotect: what shard processes save in TLB
#     shootdowns)
#   MAILBOX_ARGS ["--round_trips=300000 --messages=5000000"] (flags for mailbox_bench; its own
#     defaults, 1M round trips and 30M messages, take ~10 s a run idle and far longer when the
#     machine is busy: set MAILBOX_ARGS= to use them)  MAILBOX_TIMEOUT_S [40] (per run)
#   SKIP_BUILD [0]  (1: use what is built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION_S=${DURATION_S:-4}
WARMUP_S=${WARMUP_S:-1}
CONNS=${CONNS:-1000}
SIZE=${SIZE:-64}
REPS=${REPS:-3}
POLLER=${POLLER:-io_uring}
MAX_CONNECTING=${MAX_CONNECTING:-64}
ECHO_ARGS=${ECHO_ARGS:-}
SHARD_MODES=${SHARD_MODES:-auto}
MAILBOX_REPS=${MAILBOX_REPS:-3}
MAILBOX_TIMEOUT_S=${MAILBOX_TIMEOUT_S:-40}
MAILBOX_ARGS=${MAILBOX_ARGS---round_trips=300000 --messages=5000000}
SKIP_BUILD=${SKIP_BUILD:-0}

say() { printf 'shard_compare: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
# shellcheck source=perf/lib.sh
. perf/lib.sh

# --- build -------------------------------------------------------------------------------------
if [ "$SKIP_BUILD" != 1 ]; then
  say "building (--config=opt)"
  bazel build --config=opt //apps/echo //perf:echo_load //perf:mailbox_bench >&2
fi
BIN="$(bazel info --config=opt bazel-bin 2>/dev/null)"
for b in apps/echo/echo perf/echo_load perf/mailbox_bench; do
  [ -x "$BIN/$b" ] || { say "$BIN/$b is not built (run without SKIP_BUILD=1)"; exit 1; }
done

# --- machine setup -----------------------------------------------------------------------------
ncpu=$(nproc)
LAST_CPU=$((ncpu - 1))
ONE_SHARD_CPU=$LAST_CPU
ONE_CLIENT_CPU=0
TWO_SHARD_CPUS=${TWO_SHARD_CPUS:-0,$LAST_CPU}
if [ "$ncpu" -lt 2 ]; then
  say "needs 2 CPUs (this machine has $ncpu)"
  exit 1
fi

# Descriptors for CONNS connections on each side (children raise soft to hard themselves).
raise_fd_limit $((CONNS + 1024))

# median of the numbers on stdin (blank and "na" lines skipped); empty if none.
median() {
  grep -E '^-?[0-9.]+(e[-+]?[0-9]+)?$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# spread of the numbers on stdin: "max/min" as a ratio, or empty.
spread() {
  grep -E '^-?[0-9.]+(e[-+]?[0-9]+)?$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR > 1 && v[1] > 0) printf "%.2f", v[NR] / v[1] }'
}
# balance ERRFILE: "N0/N1/... RATIO DIED" from the server's SIGTERM lines: connections served
# per shard, the max/mean ratio, and the connections that died of a trap or an unhandled error
# (0 where the server does not say).
balance() {
  sed -n 's/^echo: shard \([0-9]*\) served \([0-9]*\) connections\( (\([0-9]*\) died.*\)\{0,1\}$/\1 \2 \4/p' "$1" |
    sort -n |
    awk '{ n[NR] = $2; s += $2; d += $3; if ($2 > m) m = $2 }
         END { if (NR == 0) { print "? ? 0"; exit }
               split_ = n[1]; for (i = 2; i <= NR; i++) split_ = split_ "/" n[i]
               printf "%s %s %d\n", split_, (s > 0 ? sprintf("%.3f", m / (s / NR)) : "?"), d }'
}

# --- echo: 1 shard vs 2 ------------------------------------------------------------------------
# name|server cpus|client cpus|flags
CONFIGS=("1 shard|$ONE_SHARD_CPU|$ONE_CLIENT_CPU|--shards=1 --cpuset=$ONE_SHARD_CPU --balance=reuseport")
for balance in reuseport handoff; do
  for mode in $SHARD_MODES; do
    label=""
    [ "$SHARD_MODES" = auto ] || label=", $mode"
    CONFIGS+=("2 shards, $balance$label|$TWO_SHARD_CPUS|$TWO_SHARD_CPUS|--shards=2 --cpuset=$TWO_SHARD_CPUS --balance=$balance --shard_mode=$mode")
  done
done
declare -A LOAD BAL
for ((rep = 1; rep <= REPS; rep++)); do
  for entry in "${CONFIGS[@]}"; do
    IFS='|' read -r name scpus ccpus flags <<<"$entry"
    key="$name|$rep"
    if ! start_server "$name" "$scpus" "$BIN/apps/echo/echo" "--poller=$POLLER $flags $ECHO_ARGS"; then
      LOAD["$key"]=failed
      BAL["$key"]="? ? 0"
      continue
    fi
    say "round $rep/$REPS: $name (server CPUs $scpus, client CPUs $ccpus): port $SERVER_PORT, pid $SERVER_PID"
    run_pinned "$ccpus" "$BIN/perf/echo_load" --port="$SERVER_PORT" --server_pid="$SERVER_PID" \
      --conns="$CONNS" --size="$SIZE" --warmup_s="$WARMUP_S" --duration_s="$DURATION_S" \
      --max_connecting="$MAX_CONNECTING"
    LOAD["$key"]=$(grep '^RESULT ' <<<"$RUN_OUT" || echo failed)
    stop_server
    BAL["$key"]=$(balance "$SERVER_ERR")
    [ "$SERVER_RC" = 0 ] || say "warning: $name exited $SERVER_RC on SIGTERM"
    read -r split ratio died <<<"${BAL["$key"]}"
    say "  served per shard: $split (max/mean $ratio; $died died)"
  done
done

# --- mailboxes ---------------------------------------------------------------------------------
MB=()
for ((rep = 1; rep <= MAILBOX_REPS; rep++)); do
  say "mailbox_bench $rep/$MAILBOX_REPS"
  # shellcheck disable=SC2086  # MAILBOX_ARGS are words
  run_pinned "0-$LAST_CPU" timeout "$MAILBOX_TIMEOUT_S" "$BIN/perf/mailbox_bench" $MAILBOX_ARGS
  r=$(grep '^RESULT ' <<<"$RUN_OUT" || echo failed)
  MB+=("$r")
  [ "$r" != failed ] || say "  no RESULT line (over MAILBOX_TIMEOUT_S=$MAILBOX_TIMEOUT_S s, or a failure)"
  [ "$r" = failed ] || say "  round trip p50 $(kv "$r" rt_p50_ns) ns, p99 $(kv "$r" rt_p99_ns) ns; batch 16: $(kv "$r" batch16_msgs_per_s) msgs/s"
done

# --- report ------------------------------------------------------------------------------------
# col NAME KEY: the values of KEY over NAME's rounds, one a line.
col() {
  local r rep
  for ((rep = 1; rep <= REPS; rep++)); do
    r="${LOAD["$1|$rep"]}"
    [ "$r" = failed ] || kv "$r" "$2"
  done
}
noisy=()
echo "## Echo on 1 shard vs 2 ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -r), $ncpu CPUs)"
echo
echo "Command: \`perf/shard_compare.sh\` (DURATION_S=$DURATION_S WARMUP_S=$WARMUP_S CONNS=$CONNS SIZE=$SIZE"
echo "REPS=$REPS POLLER=$POLLER MAX_CONNECTING=$MAX_CONNECTING${ECHO_ARGS:+ ECHO_ARGS=\"$ECHO_ARGS\"} SHARD_MODES=\"$SHARD_MODES\"): echo_load ping-pong, one $SIZE-byte"
echo "line outstanding per connection. 1 shard: server pinned to CPU $ONE_SHARD_CPU, echo_load to CPU $ONE_CLIENT_CPU."
echo "2 shards: the server's shards on CPUs $TWO_SHARD_CPUS, echo_load on the same CPUs."
if [ "$ncpu" = 2 ]; then
  echo "**This machine has only 2 CPUs: with 2 shards the load client competes with the server for"
  echo "both, so the 2-shard msgs/s is not a scaling figure.**"
fi
echo "Server CPU is the whole server (every shard thread, or process) over the measured window. Each column is"
echo "the median of $REPS interleaved rounds; \"msgs/s spread\" is max/min over the rounds. Balance:"
echo "connections served per shard in each round (the server's SIGTERM lines) and the median max/mean"
echo "ratio (1.00 = even). echo_load opens at most $MAX_CONNECTING connections at a time."
echo
echo "| configuration | msgs/s | msgs/s spread | server CPU µs/msg | server CPU % | client CPU % | p50 µs | p99 µs | served per shard (each round) | max/mean | errors (client; all rounds) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for entry in "${CONFIGS[@]}"; do
  name="${entry%%|*}"
  splits=""
  ratios=""
  deaths=0
  for ((rep = 1; rep <= REPS; rep++)); do
    read -r split ratio died <<<"${BAL["$name|$rep"]}"
    splits+="${splits:+, }$split"
    ratios+="$ratio"$'\n'
    deaths=$((deaths + died))
  done
  nok=$(col "$name" msgs_per_s | grep -c . || true)
  if [ "$nok" = 0 ]; then
    echo "| $name | failed | | | | | | | $splits | | |"
    continue
  fi
  sp=$(col "$name" msgs_per_s | spread)
  if [ -n "$sp" ] && awk -v s="$sp" 'BEGIN { exit !(s > 1.25) }'; then noisy+=("$name (msgs/s max/min $sp)"); fi
  errs=$(col "$name" errors | awk '{ s += $1 } END { print s + 0 }')
  echo "| $name | $(fix "$(col "$name" msgs_per_s | median)" 0) | ${sp:-—} |" \
       "$(fix "$(col "$name" server_cpu_us_per_msg | median)" 2) | $(fix "$(col "$name" server_cpu_pct | median)" 0) |" \
       "$(fix "$(col "$name" client_cpu_pct | median)" 0) |" \
       "$(fix "$(col "$name" p50_us | median)" 0) | $(fix "$(col "$name" p99_us | median)" 0) |" \
       "$splits | $(fix "$(median <<<"$ratios")" 2) | $errs$([ "$deaths" -gt 0 ] && echo " (+$deaths connections died in the server)")$([ "$nok" -lt "$REPS" ] && echo " ($((REPS - nok)) rounds failed)") |"
done
if [ "${#noisy[@]}" -gt 0 ]; then
  echo
  joined=$(IFS=';'; echo "${noisy[*]}")
  echo "Noisy: the rounds of ${joined//;/; } differ by more than 25% (a shared machine); compare medians with care."
fi

echo
echo "## Cross-shard mailboxes"
echo
echo "Command: \`perf/shard_compare.sh\` (MAILBOX_REPS=$MAILBOX_REPS${MAILBOX_ARGS:+ MAILBOX_ARGS=\"$MAILBOX_ARGS\"}): \`perf/mailbox_bench\`,"
mb_ok=()
for r in "${MB[@]}"; do [ "$r" = failed ] || mb_ok+=("$r"); done
if [ "${#mb_ok[@]}" -eq 0 ]; then
  echo "no run produced a RESULT line (fewer than 2 usable CPUs, or a failure)."
  exit 0
fi
echo "two busy-polling threads on CPUs $(kv "${mb_ok[0]}" cpu_a) and $(kv "${mb_ok[0]}" cpu_b); median of ${#mb_ok[@]} runs, each run's"
echo "value in the last column. Round trip: send+flush, then receive, through Mailboxes (the bare"
echo "SpscRing pair for comparison); one-way: messages sent in batches with one flush per batch, the"
echo "receiver draining up to 64 per call. Targets (DESIGN.md §4): round trip ≤ 1 µs; ≥ 10M msgs/s"
echo "per pair, batched."
echo
mbcol() { local r; for r in "${mb_ok[@]}"; do kv "$r" "$1"; done; }
mbrow() {  # label KEY decimals unit-scale
  local vals each
  vals=$(mbcol "$2" | awk -v s="$4" '{ print $1 / s }')
  each=$(awk -v d="$3" '{ printf "%s%.*f", (NR > 1 ? ", " : ""), d, $1 }' <<<"$vals")
  echo "| $1 | $(fix "$(median <<<"$vals")" "$3") | $each |"
}
echo "| measure | median | runs |"
echo "|---|---|---|"
mbrow "round trip p50 (ns), Mailboxes" rt_p50_ns 0 1
mbrow "round trip p99 (ns), Mailboxes" rt_p99_ns 0 1
mbrow "round trip p99.9 (ns), Mailboxes" rt_p999_ns 0 1
mbrow "round trip p50 (ns), bare SpscRing" ring_rt_p50_ns 0 1
for k in $(tr ' ' '\n' <<<"${mb_ok[0]}" | sed -n 's/^batch\([0-9]*\)_msgs_per_s=.*/\1/p'); do
  mbrow "one-way, batch $k (M msgs/s)" "batch${k}_msgs_per_s" 2 1e6
done
mbnoisy=()
for k in rt_p50_ns batch16_msgs_per_s; do
  sp=$(mbcol "$k" | spread)
  if [ -n "$sp" ] && awk -v s="$sp" 'BEGIN { exit !(s > 1.25) }'; then mbnoisy+=("$k max/min $sp"); fi
done
if [ "${#mbnoisy[@]}" -gt 0 ]; then
  joined=$(IFS=';'; echo "${mbnoisy[*]}")
  echo
  echo "Noisy: the runs differ by more than 25% (${joined//;/; })."
  echo "Two busy-polling threads need both CPUs to themselves, so anything else running on a shared"
  echo "machine shows here first."
fi
