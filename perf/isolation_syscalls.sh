#!/usr/bin/env bash
# perf/isolation_syscalls.sh — system calls per echo message for each isolation mode.
#
# Runs apps/echo (one shard, io_uring unless POLLER says otherwise) under `strace -c -f` for
# exactly MESSAGES ping-pong messages from CONNS connections (perf/echo_load), once per mode in
# MODES, and prints a markdown table of calls per message: mprotect (isolation), readv/writev
# (socket I/O), io_uring_enter / epoll_pwait2 (poller), and all system calls together. strace
# slows everything down, so only the counts mean anything here, not the times. Expects the opt
# build (tools/mnv bench builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
MODES=${MODES:-"off mprotect strict"}
POLLER=${POLLER:-io_uring}
MESSAGES=${MESSAGES:-20000}
CONNS=${CONNS:-100}
BIN=bazel-bin
command -v strace >/dev/null || { echo "isolation_syscalls: strace is not installed" >&2; exit 1; }

tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "## System calls per echo message by isolation mode"
echo
echo "Command: \`perf/isolation_syscalls.sh\` (MESSAGES=$MESSAGES CONNS=$CONNS POLLER=$POLLER), one shard,"
echo "counted with \`strace -c -f\` over the whole run (start-up included, so setup calls add a little)."
echo
echo "| isolation | mprotect/msg | readv/msg | writev/msg | poller waits/msg | all syscalls/msg |"
echo "|---|---|---|---|---|---|"
for mode in $MODES; do
  mkfifo "$tmp/out.$mode"
  strace -f -c -o "$tmp/strace.$mode" taskset -c "$(( $(nproc) - 1 ))" "$BIN/apps/echo/echo" --shards=1 \
    --poller="$POLLER" --isolation="$mode" --pool_size=1024 >"$tmp/out.$mode" 2>"$tmp/err.$mode" &
  pid=$!
  exec {fd}<"$tmp/out.$mode"
  IFS= read -r -t 30 -u "$fd" line
  port=${line##*:}
  taskset -c 0 "$BIN/perf/echo_load" --port="$port" --conns="$CONNS" --messages="$MESSAGES" --warmup_s=0 \
    --timeout_s=120 >/dev/null
  pkill -INT -P "$pid" || true  # the echo under strace: it exits 0, then strace does
  wait "$pid" || true
  pid=""
  exec {fd}<&-
  count() { awk -v c="$1" '$NF == c && !n { n = $4 } END { print n + 0 }' "$tmp/strace.$mode"; }
  total=$(awk '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 { n += $4 } END { print n + 0 }' "$tmp/strace.$mode")
  per() { awk -v n="${1:-0}" -v m="$MESSAGES" 'BEGIN { printf "%.2f", n / m }'; }
  waits=$(( $(count io_uring_enter) + $(count epoll_pwait2) + $(count epoll_wait) + $(count ppoll) + $(count poll) ))
  echo "| $mode | $(per "$(count mprotect)") | $(per "$(count readv)") | $(per "$(count writev)") | $(per "$waits") | $(per "$total") |"
done
