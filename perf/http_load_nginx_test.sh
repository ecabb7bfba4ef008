#!/usr/bin/env bash
# perf/http_load_nginx_test.sh — the HTTP client (net/http/client.h, through perf/http_load)
# against Debian's nginx, started here on a free port (perf/http_peers.sh) and stopped at the
# end: GET one request at a time and 16-deep pipelined, HEAD pipelined (a Content-Length but no
# body), POST of a 4 KiB body, a 404, and an open-loop run at 2000 req/s; every status and body
# is checked, every run must end with no error. Skipped (exit 0, with a line saying so) where nginx is not installed.
set -euo pipefail
say() { printf 'http_load_nginx_test: %s\n' "$*" >&2; }
root="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}"
[ -f "$root/perf/lib.sh" ] || root="$(cd "$(dirname "$0")/.." && pwd)"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { say "nginx is not installed: skipped"; exit 0; }
# shellcheck source=perf/lib.sh
. "$root/perf/lib.sh"
# shellcheck source=perf/http_peers.sh
. "$root/perf/http_peers.sh"
load="$root/perf/http_load"
start_nginx nginx 0
fail=0
check() {
  local what=$1 out
  shift
  if out=$("$load" --port="$SERVER_PORT" --timeout_s=5 "$@"); then
    say "ok: $what: $(tail -1 <<<"$out")"
  else
    say "FAILED: $what: $out"
    fail=1
  fi
}
check "GET one at a time" --conns=4 --requests=2000 --expect_body='Hello, World!'
check "GET 16 deep" --conns=2 --depth=16 --requests=10000 --expect_body='Hello, World!'
check "HEAD 16 deep" --conns=2 --depth=16 --requests=2000 --method=HEAD
head -c 4096 /dev/zero | tr '\0' a >"$TMP/body"
check "POST 4 KiB" --conns=2 --depth=4 --requests=1000 --method=POST --path=/echo --body_file="$TMP/body" \
  --expect_body='Hello, World!'
check "404" --conns=1 --requests=10 --path=/nope --expect_status=404
# Open loop at a rate nginx takes easily; a run the scheduler made late is reported, not failed.
out=$("$load" --port="$SERVER_PORT" --timeout_s=5 --conns=4 --rate=2000 --duration_s=1 --expect_body='Hello, World!') || true
case "$out" in
  *"conn_errors=0 bad_status=0 bad_body=0"*"sent=2000 unsent=0"*) say "ok: open loop 2000/s: $(tail -1 <<<"$out")" ;;
  *) say "FAILED: open loop 2000/s: $out"; fail=1 ;;
esac
stop_server
exit "$fail"
