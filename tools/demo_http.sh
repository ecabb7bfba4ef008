#!/usr/bin/env bash
# tools/demo_http.sh — the HTTP server (apps/http) under a short wrk load: req/s, latency
# percentiles, and each shard's request count from the server's exit report.
#
# Starts //apps/http pinned to the last core(s) (2 shards where there are 4+ cores, else 1),
# runs wrk on the other core for DURATION_S on GET /plaintext over 100 keep-alive connections,
# then stops the server with SIGTERM. Expects `bazel build --config=opt //apps/http` to have run
# (tools/mnv demo does it).
set -euo pipefail
cd "$(dirname "$0")/.."

ncpu=$(nproc)
DURATION_S=${DURATION_S:-3}
if [ "$ncpu" -ge 4 ]; then shards=2; server_cpus="$((ncpu - 2)),$((ncpu - 1))"; else shards=1; server_cpus=$((ncpu - 1)); fi
command -v wrk >/dev/null || { echo "demo_http: wrk is not installed (Debian package wrk; tools/mnv setup)" >&2; exit 1; }

out=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

mkfifo "$out/stdout"
taskset -c "$server_cpus" bazel-bin/apps/http/http --host=127.0.0.1 --port=0 --shards="$shards" >"$out/stdout" 2>"$out/stderr" &
server_pid=$!
exec 3<"$out/stdout"
read -r first <&3
addr=${first#listening on }
echo "== HTTP demo: apps/http ($shards shard(s), CPUs $server_cpus), wrk -c100 -d${DURATION_S}s GET /plaintext =="
taskset -c 0 wrk -t1 -c100 -d"${DURATION_S}s" --latency "http://$addr/plaintext" >"$out/wrk"
awk '/Requests\/sec/ {print "req/s: " $2} /^ +50%|^ +90%|^ +99%/ {print "p" substr($1, 1, length($1) - 1) ": " $2}' "$out/wrk"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
grep -E "served [0-9]+ requests" "$out/stderr" || true
