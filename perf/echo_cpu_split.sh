#!/usr/bin/env bash
# perf/echo_cpu_split.sh — where an echo message's server CPU goes, baseline and ours, one run.
#
# echo_compare.sh says how much server CPU a message costs; this says what it is spent on, to
# show how much any change to the event loop can still win. For the epoll baseline and for
# apps/echo (--poller=io_uring, each --io mode in IO_MODES), it starts the server pinned to the
# last core, drives it from core 0 with perf/echo_load (CONNS connections, SIZE-byte lines), and
# samples the server's stacks with `perf record -e cpu-clock -g` while the load runs.
# Each sample is put in one bucket by its stack:
#   TCP send     the stack holds tcp_sendmsg: the TCP transmit, the loopback device, and the
#                delivery into the peer's socket (the softirq runs on the sender's CPU) with the
#                peer's wake-up
#   TCP receive  the stack holds tcp_recvmsg (copy out of the socket, window updates)
#   OS loop      any other time in the OS: system call entry and exit, epoll or io_uring
#                (submission, polls, completions, task work)
#   server code  time in the server's own code and its libraries (user mode)
# and the bucket's share times the run's server CPU µs per message gives µs per message.
# Both servers do the same TCP work per message, so the OS loop and the server code are all an
# event loop can act on: the last column is the CPU ratio against the baseline a server would
# reach whose loop and code cost nothing (baseline µs per message / this server's TCP µs).
#
# Needs perf (Debian: linux-perf) and the opt build (SKIP_BUILD=1 uses what is built).
# Environment (defaults in brackets): DURATION_S [4] CONNS [1000] SIZE [64] REPS [3]
#   IO_MODES ["recv"] SKIP_BUILD [0]
# Rounds interleave the servers; each row is the median round by server CPU per message.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION_S=${DURATION_S:-4}
CONNS=${CONNS:-1000}
SIZE=${SIZE:-64}
REPS=${REPS:-3}
IO_MODES=${IO_MODES:-recv}
SKIP_BUILD=${SKIP_BUILD:-0}

say() { printf 'echo_cpu_split: %s\n' "$*" >&2; }
# shellcheck source=perf/lib.sh
. perf/lib.sh

command -v perf >/dev/null || { say "perf is not installed (Debian: apt-get install linux-perf)"; exit 1; }
if [ "$SKIP_BUILD" != 1 ]; then
  say "building (--config=opt)"
  bazel build --config=opt //perf:epoll_echo_server //perf:echo_load //apps/echo >&2
fi
BIN="$(bazel info --config=opt bazel-bin 2>/dev/null)"

SERVERS=("epoll baseline|$BIN/perf/epoll_echo_server|")
for io in $IO_MODES; do
  SERVERS+=("echo io_uring $io|$BIN/apps/echo/echo|--poller=io_uring --io=$io")
done

ncpu=$(nproc)
SERVER_CPU=$((ncpu - 1))
raise_fd_limit $((CONNS + 1024))

# Prints "send recv os user samples" (fractions of the samples) for perf data file $1.
split_samples() {
  perf script -i "$1" -F ip,sym,dso 2>/dev/null | awk 'BEGIN { RS = "" }
    { n++
      if ($0 ~ /tcp_sendmsg/) s++
      else if ($0 ~ /tcp_recvmsg/) r++
      else if ($3 ~ /kernel/) o++
      else u++ }
    END { if (n == 0) print "na na na na 0"; else printf "%.4f %.4f %.4f %.4f %d\n", s / n, r / n, o / n, u / n, n }'
}

declare -A ROW
for ((rep = 1; rep <= REPS; rep++)); do
  for entry in "${SERVERS[@]}"; do
    IFS='|' read -r name bin flags <<<"$entry"
    start_server "$name" "$SERVER_CPU" "$bin" "$flags" || { ROW["$name|$rep"]=failed; continue; }
    say "round $rep/$REPS: $name: port $SERVER_PORT, pid $SERVER_PID"
    taskset -c 0 "$BIN/perf/echo_load" --port="$SERVER_PORT" --server_pid="$SERVER_PID" --conns="$CONNS" \
      --size="$SIZE" --warmup_s=1 --duration_s="$DURATION_S" >"$TMP/load.out" &
    load=$!
    PIDS+=("$load")
    # Sampled for as long as the load runs (its warm-up is the same ping-pong; connecting is brief).
    perf record -q -e cpu-clock -g -p "$SERVER_PID" -o "$TMP/perf.data" -- tail --pid="$load" -f /dev/null \
      >/dev/null 2>&1 || true
    wait "$load" || true
    stop_server
    r=$(grep '^RESULT ' "$TMP/load.out" || echo failed)
    if [ "$r" = failed ] || [ "$(kv "$r" errors)" != 0 ]; then ROW["$name|$rep"]=failed; continue; fi
    read -r send recv os user samples <<<"$(split_samples "$TMP/perf.data")"
    ROW["$name|$rep"]="$(kv "$r" server_cpu_us_per_msg) $send $recv $os $user $samples"
  done
done

echo "## Where an echo message's server CPU goes ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -r), $ncpu CPUs)"
echo
echo "Command: \`perf/echo_cpu_split.sh\` (DURATION_S=$DURATION_S CONNS=$CONNS SIZE=$SIZE REPS=$REPS IO_MODES=\"$IO_MODES\");"
echo "server on CPU $SERVER_CPU, echo_load on CPU 0, perf record -e cpu-clock -g on the server."
echo "Each row is the server's median round (by CPU per message) of $REPS interleaved rounds."
echo
echo "| server | server CPU µs/msg | TCP send µs | TCP receive µs | OS loop µs | server code µs | samples | ratio vs baseline | ceiling: loop and code free |"
echo "|---|---|---|---|---|---|---|---|---|"
base_us=""
for entry in "${SERVERS[@]}"; do
  name="${entry%%|*}"
  pick=$(for ((rep = 1; rep <= REPS; rep++)); do
           v="${ROW["$name|$rep"]:-failed}"
           [ "$v" != failed ] && echo "$v"
         done | median_line)
  if [ -z "$pick" ]; then
    echo "| $name | failed | | | | | | | |"
    continue
  fi
  read -r us send recv os user samples <<<"$pick"
  [ -z "$base_us" ] && base_us=$us
  awk -v n="$name" -v us="$us" -v s="$send" -v r="$recv" -v o="$os" -v u="$user" -v k="$samples" -v b="$base_us" 'BEGIN {
    printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %.2fx | %.2fx |\n", n, us, us * s, us * r, us * o, us * u, k, b / us, b / (us * (s + r)) }'
done
