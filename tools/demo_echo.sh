#!/usr/bin/env bash
# tools/demo_echo.sh — the current main demo: the seed's echo service on mnvkd, under load.
#
# Starts //apps/echo (io_uring) pinned to the last core, drives it from the other core with
# echo_load (ping-pong, 200 connections, 64-byte lines, a few seconds), holds 2000 more
# connections idle to show what an idle connection costs, then stops it with SIGTERM and prints
# a short summary. Expects `bazel build --config=opt //apps/echo //perf:echo_load
# //perf:idle_memory` to have run (tools/mnv demo does it).
set -euo pipefail
cd "$(dirname "$0")/.."

ncpu=$(nproc)
server_cpu=$((ncpu - 1))
client_cpu=0
POLLER=${POLLER:-io_uring}
DURATION_S=${DURATION_S:-3}

out=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

mkfifo "$out/stdout"
taskset -c "$server_cpu" bazel-bin/apps/echo/echo --config=shard/sample_affinity.toml --poller="$POLLER" >"$out/stdout" 2>"$out/stderr" &
server_pid=$!
exec 3<"$out/stdout"
read -r first <&3
port=${first##*:}

echo "mnvkd demo: the seed's echo service ('Line N: <line>' for each line), one shard on CPU $server_cpu,"
echo "load from CPU $client_cpu; $first"
echo
echo "1) a quick conversation:"
printf 'hello\nmicro-threads\n' | timeout 5 bash -c "exec 9<>/dev/tcp/127.0.0.1/$port; cat >&9; timeout 1 head -2 <&9" | sed 's/^/     /'
echo
echo "2) ping-pong load: 200 connections, 64-byte lines, ${DURATION_S} s:"
taskset -c "$client_cpu" bazel-bin/perf/echo_load --port="$port" --conns=200 --size=64 --warmup_s=0.5 \
  --duration_s="$DURATION_S" --server_pid="$server_pid" | grep '^RESULT' >"$out/load"
field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }
printf '     %s msgs/s, latency p50 %s us, p99 %s us, server CPU %s us per message, %s errors\n' \
  "$(field "$out/load" msgs_per_s)" "$(field "$out/load" p50_us)" "$(field "$out/load" p99_us)" \
  "$(field "$out/load" server_cpu_us_per_msg)" "$(field "$out/load" errors)"
echo
echo "3) 2000 connections answered once, then idle for 2 s:"
taskset -c "$client_cpu" bazel-bin/perf/idle_memory --port="$port" --conns=2000 --server_pid="$server_pid" \
  --settle_s=2 | grep '^RESULT mode=idle' | head -1 >"$out/idle"
printf '     server RSS grew %s KiB for 2000 idle connections: %s KiB per idle connection\n' \
  "$(( $(field "$out/idle" rss_after_kib) - $(field "$out/idle" rss_before_kib) ))" "$(field "$out/idle" kib_per_conn)"
echo
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
echo "4) SIGTERM: the server stopped its listener, closed every connection and exited with status $rc:"
grep -h 'mnv: stopping' "$out/stderr" | sed 's/^/     /'
