#!/usr/bin/env bash
# perf/echo_compare.sh — the echo benchmark, side by side, in one run.
#
# Builds with --config=opt, then for each server — the plain-epoll baseline
# (//perf:epoll_echo_server) and, when //apps/echo builds, our echo with --poller=io_uring, epoll
# and poll — starts a fresh instance pinned to the last core (port 0; the port is read from its
# first stdout line "listening on HOST:PORT", no sleeps), and runs from core 0:
#   * echo_load: CONNS ping-pong connections, one line outstanding each, for each size in SIZES;
#   * idle_memory: IDLE_CONNS connections answered once and held idle (server VmRSS delta).
# Prints two markdown tables on stdout (progress goes to stderr). Every process it starts is
# stopped on exit.
#
# On a 2-core machine the client does about as much kernel work per message as the server, so
# msgs/s can be bounded by the client (see the client CPU % column); the server's CPU time per
# message (utime+stime from /proc/PID/stat over the measured window) is the figure to compare.
#
# Environment overrides (defaults in brackets):
#   DURATION_S [5]  WARMUP_S [1]  CONNS [1000]  SIZES ["64 512"]  IDLE_CONNS [10000]
#   IDLE_SIZE [64]  POLLERS ["io_uring epoll poll"]  ECHO_ARGS [] (extra flags for apps/echo)
#   ISOLATIONS ["off"] (apps/echo --isolation modes to compare, e.g. "off mprotect strict")
#   IO_MODES ["multishot"] (apps/echo --io modes to compare with --poller=io_uring, e.g.
#     "multishot recv readiness"; rows are labelled with the mode when there is more than one)
#   REPS [1] (rounds of load runs; the table shows each server's median round by server CPU)
#   SKIP_BUILD [0]  (1: use what is built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION_S=${DURATION_S:-5}
WARMUP_S=${WARMUP_S:-1}
CONNS=${CONNS:-1000}
SIZES=${SIZES:-"64 512"}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_SIZE=${IDLE_SIZE:-64}
POLLERS=${POLLERS:-"io_uring epoll poll"}
ISOLATIONS=${ISOLATIONS:-off}
IO_MODES=${IO_MODES:-recv}
ECHO_ARGS=${ECHO_ARGS:-}
SKIP_BUILD=${SKIP_BUILD:-0}
REPS=${REPS:-1}

say() { printf 'echo_compare: %s\n' "$*" >&2; }
# shellcheck source=perf/lib.sh
. perf/lib.sh

# --- build -------------------------------------------------------------------------------------
have_echo=0
if [ "$SKIP_BUILD" != 1 ]; then
  say "building (--config=opt)"
  bazel build --config=opt //perf:epoll_echo_server //perf:echo_load //perf:idle_memory >&2
  if [ -f apps/echo/BUILD.bazel ] || [ -f apps/echo/BUILD ]; then
    if bazel build --config=opt //apps/echo >&2; then
      have_echo=1
    else
      say "//apps/echo does not build; comparing the baseline only"
    fi
  fi
fi
BIN="$(bazel info --config=opt bazel-bin 2>/dev/null)"
if [ "$SKIP_BUILD" = 1 ] && [ -x "$BIN/apps/echo/echo" ]; then have_echo=1; fi
[ "$have_echo" = 1 ] && [ ! -x "$BIN/apps/echo/echo" ] && have_echo=0

# name|binary|extra flags
SERVERS=("epoll baseline|$BIN/perf/epoll_echo_server|")
if [ "$have_echo" = 1 ]; then
  for p in $POLLERS; do
    modes=recv
    [ "$p" = io_uring ] && modes=$IO_MODES
    for io in $modes; do
      for iso in $ISOLATIONS; do
        label="echo $p"
        [ "$p" = io_uring ] && [ "$(wc -w <<<"$IO_MODES")" -gt 1 ] && label="$label $io"
        [ "$iso" != off ] && label="$label $iso"
        SERVERS+=("$label|$BIN/apps/echo/echo|--poller=$p --io=$io --isolation=$iso --pool_size=$((IDLE_CONNS + 1024)) $ECHO_ARGS")
      done
    done
  done
fi

# --- machine setup -----------------------------------------------------------------------------
ncpu=$(nproc)
SERVER_CPU=$((ncpu - 1))
CLIENT_CPU=0
[ "$ncpu" -lt 2 ] && say "warning: one CPU: server and client share it"

# Descriptors for IDLE_CONNS connections on each side (children raise soft to hard themselves).
raise_fd_limit $((IDLE_CONNS + 1024))

declare -A LOAD IDLE

# --- runs --------------------------------------------------------------------------------------
# Rounds interleave the servers, so slow spells of this shared machine hit them alike.
for ((rep = 1; rep <= REPS; rep++)); do
  for entry in "${SERVERS[@]}"; do
    IFS='|' read -r name bin flags <<<"$entry"
    for size in $SIZES; do
      start_server "$name" "$SERVER_CPU" "$bin" "$flags" || { LOAD["$name|$size|$rep"]="failed"; continue; }
      say "round $rep/$REPS: $name, $size-byte lines: port $SERVER_PORT, pid $SERVER_PID"
      run_pinned "$CLIENT_CPU" "$BIN/perf/echo_load" --port="$SERVER_PORT" --server_pid="$SERVER_PID" \
        --conns="$CONNS" --size="$size" --warmup_s="$WARMUP_S" --duration_s="$DURATION_S"
      LOAD["$name|$size|$rep"]=$(grep '^RESULT ' <<<"$RUN_OUT" || echo failed)
      stop_server
    done
  done
done
for entry in "${SERVERS[@]}"; do
  IFS='|' read -r name bin flags <<<"$entry"
  start_server "$name" "$SERVER_CPU" "$bin" "$flags" || { IDLE["$name"]="failed"; continue; }
  say "$name, $IDLE_CONNS idle connections: port $SERVER_PORT, pid $SERVER_PID"
  run_pinned "$CLIENT_CPU" "$BIN/perf/idle_memory" --port="$SERVER_PORT" --server_pid="$SERVER_PID" \
    --conns="$IDLE_CONNS" --size="$IDLE_SIZE"
  IDLE["$name"]=$(grep '^RESULT ' <<<"$RUN_OUT" || echo failed)
  stop_server
done

# Of the rounds, the one with the median msgs per server-CPU-second.
for entry in "${SERVERS[@]}"; do
  name="${entry%%|*}"
  for size in $SIZES; do
    pick=$(for ((rep = 1; rep <= REPS; rep++)); do
             r="${LOAD["$name|$size|$rep"]}"
             if [ "$r" != failed ]; then echo "$(kv "$r" msgs_per_server_cpu_s) $rep"; fi
           done | median_line | awk '{ print $2 }')
    LOAD["$name|$size"]="${LOAD["$name|$size|${pick:-1}"]}"
  done
done

# --- report ------------------------------------------------------------------------------------
base="${SERVERS[0]%%|*}"
echo "## Echo ping-pong ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -r), $ncpu CPUs)"
echo
echo "Command: \`perf/echo_compare.sh\` (DURATION_S=$DURATION_S WARMUP_S=$WARMUP_S CONNS=$CONNS SIZES=\"$SIZES\" REPS=$REPS POLLERS=\"$POLLERS\" IO_MODES=\"$IO_MODES\" ISOLATIONS=\"$ISOLATIONS\");"
echo "server pinned to CPU $SERVER_CPU, echo_load to CPU $CLIENT_CPU. Ratios are against the $base,"
echo "same message size: CPU ratio = msgs per server-CPU-second / the baseline's (higher is better)."
if [ "$REPS" -gt 1 ]; then echo "Each row is that server's median of $REPS interleaved rounds by msgs per server-CPU-second."; fi
echo
echo "| server | msg size | msgs/s | server CPU µs/msg | msgs per server-CPU-s | ratio vs baseline (CPU) | ratio vs baseline (msgs/s) | p50 µs | p99 µs | server CPU % | client CPU % | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for entry in "${SERVERS[@]}"; do
  name="${entry%%|*}"
  for size in $SIZES; do
    r="${LOAD["$name|$size"]:-failed}"
    b="${LOAD["$base|$size"]:-failed}"
    if [ "$r" = failed ]; then
      echo "| $name | $size | failed | | | | | | | | | |"
      continue
    fi
    echo "| $name | $size | $(fix "$(kv "$r" msgs_per_s)" 0) | $(fix "$(kv "$r" server_cpu_us_per_msg)" 2) |" \
         "$(fix "$(kv "$r" msgs_per_server_cpu_s)" 0) |" \
         "$(ratio "$(kv "$r" msgs_per_server_cpu_s)" "$(kv "$b" msgs_per_server_cpu_s)") |" \
         "$(ratio "$(kv "$r" msgs_per_s)" "$(kv "$b" msgs_per_s)") |" \
         "$(fix "$(kv "$r" p50_us)" 0) | $(fix "$(kv "$r" p99_us)" 0) | $(kv "$r" server_cpu_pct) | $(kv "$r" client_cpu_pct) |" \
         "$(kv "$r" errors) |"
  done
done
echo
echo "## Memory per idle connection"
echo
echo "Command: \`perf/echo_compare.sh\` (IDLE_CONNS=$IDLE_CONNS, one $IDLE_SIZE-byte line answered on each,"
echo "then idle): server VmRSS with every connection idle minus before the first, per connection."
echo
echo "| server | idle conns | RSS before KiB | RSS after KiB | KiB per idle conn | ratio vs baseline | errors |"
echo "|---|---|---|---|---|---|---|"
for entry in "${SERVERS[@]}"; do
  name="${entry%%|*}"
  r="${IDLE["$name"]:-failed}"
  if [ "$r" = failed ]; then
    echo "| $name | $IDLE_CONNS | failed | | | | |"
    continue
  fi
  echo "| $name | $(kv "$r" conns_ok) | $(kv "$r" rss_before_kib) | $(kv "$r" rss_after_kib) |" \
       "$(fix "$(kv "$r" kib_per_conn)" 2) | $(ratio "$(kv "$r" kib_per_conn)" "$(kv "${IDLE["$base"]:-}" kib_per_conn)") |" \
       "$(kv "$r" errors) |"
done
