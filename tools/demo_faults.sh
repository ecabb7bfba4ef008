#!/usr/bin/env bash
# tools/demo_faults.sh — fault containment, shown against a running server.
#
# Starts //apps/echo with --isolation=mprotect (every connection's micro-heap hidden while it is
# not running) and --fault_injection, drives it with ping-pong load from the other core, and
# meanwhile sends lines that make four connections' handlers fault for real: a null dereference
# (!segv), an integer division by zero (!fpe), heap exhaustion (!oom) and a loop that never
# yields (!hang, trapped once it has run --max_run_ms=200 of CPU). Prints the server's
# supervisor log lines for those deaths and the load's error count: the faulting connections
# die alone, everyone else keeps being served. Then (2 CPUs or more) a whole shard: two shards
# as processes under load, one killed with SIGKILL; its connections are reset, the other
# shard's go on, and the server starts it again; and, with the per-handler limit turned off, a
# handler that hangs its shard, which is killed as stuck and restarted. Expects the opt build (tools/mnv
# demo does it).
set -euo pipefail
cd "$(dirname "$0")/.."

ncpu=$(nproc)
server_cpu=$((ncpu - 1))
client_cpu=0
DURATION_S=${DURATION_S:-3}

out=$(mktemp -d)
server_pid=""
load_pid=""
cleanup() {
  for p in $load_pid $server_pid; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -rf "$out"
}
trap cleanup EXIT

mkfifo "$out/stdout"
taskset -c "$server_cpu" bazel-bin/apps/echo/echo --isolation=mprotect --fault_injection --shards=1 --max_run_ms=200 \
  >"$out/stdout" 2>"$out/stderr" &
server_pid=$!
exec 3<"$out/stdout"
read -r first <&3
port=${first##*:}

echo "mnvkd demo: fault containment. apps/echo --isolation=mprotect --fault_injection; $first"
echo
echo "5) 200 connections of ping-pong load for ${DURATION_S} s while four other connections fault:"
taskset -c "$client_cpu" bazel-bin/perf/echo_load --port="$port" --conns=200 --size=64 --warmup_s=0.5 \
  --duration_s="$DURATION_S" --server_pid="$server_pid" >"$out/load" 2>&1 &
load_pid=$!
for fault in '!segv' '!fpe' '!oom' '!hang'; do
  # Each faulting connection sees its peer close it: its micro-process died and was reclaimed.
  reply=$(printf '%s\n' "$fault" | timeout 5 bash -c "exec 9<>/dev/tcp/127.0.0.1/$port; cat >&9; timeout 2 cat <&9" || true)
  printf '     sent %-6s -> connection closed by the server%s\n' "$fault" "${reply:+ after: $reply}"
done
wait "$load_pid"
load_pid=""
field() { grep '^RESULT' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
echo
echo "   the server's supervisor logged:"
grep 'died and was reclaimed' "$out/stderr" | sed -e 's/^mnv: server on port [0-9]*: /     /' -e 's/ (fd [0-9]*, process [0-9]*)//' -e 's/ ([0-9]* deaths so far)//'
echo
printf '   meanwhile the load: %s msgs/s, p99 %s us, %s errors on its 200 connections\n' \
  "$(field "$out/load" msgs_per_s)" "$(field "$out/load" p99_us)" "$(field "$out/load" errors)"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
echo "   SIGTERM: exit status $rc; $(grep -o 'served [0-9]* connections ([0-9]* died[^)]*)' "$out/stderr" | head -1)"

# 6) A whole shard killed. With isolation and several shards, each shard is a process of its
# own; one killed outright (as a fault in the runtime itself would end it) takes only its own
# connections, and the server starts it again.
if [ "$ncpu" -ge 2 ]; then
  mkfifo "$out/stdout2"
  taskset -c "0-$server_cpu" bazel-bin/apps/echo/echo --isolation=mprotect --shards=2 --fault_injection \
    --restart_stuck_ms=500 --max_run_ms=0 >"$out/stdout2" 2>"$out/stderr2" &
  server_pid=$!
  exec 4<"$out/stdout2"
  read -r first <&4
  port=${first##*:}
  echo
  echo "6) a whole shard process killed: apps/echo --isolation=mprotect --shards=2 --max_run_ms=0 (shards as processes); $first"
  taskset -c "$client_cpu" bazel-bin/perf/echo_load --port="$port" --conns=200 --size=64 --warmup_s=0.5 \
    --duration_s="$DURATION_S" >"$out/load2" 2>&1 &
  load_pid=$!
  sleep 1  # (into the measured part of the load: the shards are up, "listening" came after them)
  victim=$(pgrep -P "$server_pid" | tail -1)
  echo "     SIGKILL to shard process $victim during the load"
  kill -KILL "$victim"
  wait "$load_pid" || true  # (its reset connections are errors: it exits 1)
  load_pid=""
  grep 'restarted as process' "$out/stderr2" | sed -e 's/^mnv: /     server: /'
  printf '     the load: %s msgs/s, %s of its 200 connections were on the killed shard and were reset, %s kept being served\n' \
    "$(field "$out/load2" msgs_per_s)" "$(field "$out/load2" conn_errors)" "$(field "$out/load2" conns_ok)"
  taskset -c "$client_cpu" bazel-bin/perf/echo_load --port="$port" --conns=100 --size=64 --warmup_s=0 \
    --duration_s=0.5 >"$out/load3" 2>&1 || true
  printf '     then 100 new connections: %s errors\n' "$(field "$out/load3" errors)"
  echo
  echo "7) with the per-handler CPU limit off (--max_run_ms=0), a handler that never yields (!hang) holds its"
  echo "   whole shard; a shard stuck for 500 ms (--restart_stuck_ms) is the outer net: it kills and restarts that shard:"
  printf '!hang\n' | timeout 5 bash -c "exec 9<>/dev/tcp/127.0.0.1/$port; cat >&9; timeout 3 cat <&9" >/dev/null || true
  taskset -c "$client_cpu" bazel-bin/perf/echo_load --port="$port" --conns=100 --size=64 --warmup_s=0 \
    --duration_s=0.5 >"$out/load4" 2>&1 || true
  grep -E 'made no progress|killed as stuck' "$out/stderr2" | sed -e 's/^mnv: /     server: /'
  printf '     then 100 new connections: %s errors\n' "$(field "$out/load4" errors)"
  kill -TERM "$server_pid"
  rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  echo "   SIGTERM: exit status $rc; $(grep -o 'shard [0-9] served [0-9]* connections' "$out/stderr2" | sort | paste -sd ';' | sed 's/;/; /g')"
fi
