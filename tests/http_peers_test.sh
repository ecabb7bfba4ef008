#!/usr/bin/env bash
# tests/http_peers_test.sh — the HTTP benchmark's peers start and answer (perf/http_peers.sh, the
# functions perf/http_compare.sh uses): the Go peer (built from perf/go_http) and nginx (with the
# benchmark's config) each on a free port, GET /plaintext gives 200 "Hello, World!" with
# Content-Type text/plain, Server and Date, /json the JSON body, and each exits 0 on SIGTERM.
# Run by tools/mnv test as one check (needs go, nginx and curl: tools/mnv setup installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'http_peers_test: %s\n' "$*" >&2; }
# shellcheck source=perf/lib.sh
. perf/lib.sh
# shellcheck source=perf/http_peers.sh
. perf/http_peers.sh

fail() { say "FAIL: $*"; exit 1; }
cpus="0-$(($(nproc) - 1))"

# check NAME: the server at SERVER_PORT answers the benchmark's GETs as the others do.
check() {
  local name=$1 head body
  body=$(curl -s --max-time 10 -D "$TMP/head" "http://127.0.0.1:$SERVER_PORT/plaintext") ||
    fail "$name: GET /plaintext: curl failed"
  head=$(tr -d '\r' <"$TMP/head")
  [ "$body" = "Hello, World!" ] || fail "$name: GET /plaintext body is '$body', not 'Hello, World!'"
  grep -q '^HTTP/1.1 200 ' <<<"$head" || fail "$name: GET /plaintext status: $(head -1 <<<"$head")"
  grep -qi '^Content-Type: text/plain$' <<<"$head" || fail "$name: no 'Content-Type: text/plain' in: $head"
  grep -qi '^Server: ' <<<"$head" || fail "$name: no Server header in: $head"
  grep -qi '^Date: ' <<<"$head" || fail "$name: no Date header in: $head"
  body=$(curl -s --max-time 10 "http://127.0.0.1:$SERVER_PORT/json") || fail "$name: GET /json: curl failed"
  [ "$body" = '{"message":"Hello, World!"}' ] || fail "$name: GET /json body is '$body'"
  stop_server
  [ "$SERVER_RC" -eq 0 ] || fail "$name: exit status $SERVER_RC after SIGTERM (want 0); its log: $(cat "$SERVER_ERR")"
  say "$name: ok"
}

build_go_peer "$TMP/go_http" || fail "the Go peer (perf/go_http/main.go) does not build"
GOMAXPROCS=1 start_server go "$cpus" "$TMP/go_http" "" || fail "the Go peer did not start"
check go
# The Go peer echoes POST bodies (nginx's /echo only reads and discards them).
GOMAXPROCS=1 start_server go "$cpus" "$TMP/go_http" "" || fail "the Go peer did not start"
body=$(printf 'abc\0def' | curl -s --max-time 10 --data-binary @- "http://127.0.0.1:$SERVER_PORT/echo" | od -An -c | tr -s ' ')
[ "$body" = " a b c \\0 d e f" ] || fail "go: POST /echo gave '$body', not the body back"
stop_server

start_nginx nginx "$cpus" || fail "nginx did not start"
check nginx
say "passed"
