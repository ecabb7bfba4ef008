#!/usr/bin/env bash
# perf/metrics_cost.sh — what the runtime's own metrics cost apps/http per request, in
# instructions (valgrind --tool=callgrind: repeatable on a machine shared with other work, where
# CPU time is not): the server serves N1 and then N2 keep-alive GET /plaintext requests from one
# client, with --metrics=true and --metrics=false; instructions per request are
# (I(N2) - I(N1)) / (N2 - N1), so start-up and shutdown cancel out. One shard, epoll (valgrind
# and io_uring do not mix well), no runaway limit (valgrind is ~50x slower), both runs built the
# same: --config=opt but without AVX-512, which valgrind cannot run
# (bazel build --config=opt --copt=-mno-avx512f //apps/http).
#
#   perf/metrics_cost.sh            N1=2000 N2=12000 by default; HTTP_BIN to use another binary
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N1=${N1:-2000}
N2=${N2:-12000}
HTTP_BIN=${HTTP_BIN:-"$(bazel info --config=opt bazel-bin 2>/dev/null)/apps/http/http"}
[ -x "$HTTP_BIN" ] || { echo "metrics_cost: no $HTTP_BIN: bazel build --config=opt //apps/http" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "metrics_cost: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# instructions METRICS N: the server's total instructions (every thread) for N requests.
instructions() {
  local out="$tmp/out" err="$tmp/err"
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$HTTP_BIN" --shards=1 --poller=epoll \
    --metrics="$1" --grace_ms=500 --max_run_ms=0 >"$out" 2>"$err" &
  local pid=$!
  local port=""
  for _ in $(seq 1 600); do
    port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "metrics_cost: the server did not start:" >&2; cat "$err" >&2; exit 1; }
  python3 - "$port" "$2" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
req = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = int([l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length")][0])
            if len(buf) >= end + 4 + length:
                buf = buf[end + 4 + length:]
                break
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed early")
        buf += chunk
s.close()
PY
  kill -TERM "$pid"
  wait "$pid" || true
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$err"
}

echo "| --metrics | instructions per request | runs (N1, N2 requests) |"
echo "|---|---|---|"
for m in false true; do
  a=$(instructions "$m" "$N1")
  b=$(instructions "$m" "$N2")
  per=$(( (b - a) / (N2 - N1) ))
  echo "| $m | $per | $N1, $N2 (I = $a, $b) |"
done
