#!/usr/bin/env bash
# perf/http_compare.sh — HTTP/1.1 side by side, in one run: our server (apps/http), nginx and a Go
# net/http server (perf/go_http), each answering the same endpoints with the same headers.
#
# For each scenario and server it starts a fresh instance pinned to the last core (port 0 / a
# free port; our server and Go print "listening on HOST:PORT", nginx's start notice is read from
# its log: no sleeps), warms it with WARMUP_S of the same load, then runs wrk (--latency, one
# thread) pinned to core 0 for DURATION_S. Scenarios:
#   keepalive  GET /plaintext on CONNS keep-alive connections
#   conns1000  GET /plaintext on MANY_CONNS keep-alive connections
#   pipelined  GET /plaintext, PIPELINE_DEPTH requests in flight per connection (perf/wrk/pipeline.lua;
#              wrk's latency there is per batch), CONNS connections
#   post4k     POST of POST_SIZE-byte bodies to /echo (perf/wrk/post4k.lua), CONNS connections
# Per row: req/s, p50/p99, server CPU µs per request (utime+stime from /proc/PID/stat, summed
# over the server and its children — nginx's master + worker — across the measured window), and
# the row's req/s and CPU per request against nginx's and Go's in the same scenario.
# A second table shows what each server answers (response bytes, header names, /echo).
# The keep-alive scenarios (keepalive, conns1000) also record wrk's latency distribution
# (perf/wrk/spectrum.lua) and plot every server's on one chart, a percentile spectrum on a log
# scale (tools/plot_latency.sh): PLOT_DIR/<scenario>_spectrum.png [out/bench_http].
# Markdown tables on stdout, progress on stderr; every process it starts is stopped on exit.
#
# Servers (SERVERS, in this order by default): ours (bazel-bin/apps/http/http, optimized),
# ours-nometrics (the same with --metrics=false: the runtime's counters' cost, issue #15),
# ours-mprotect (the same with --isolation=mprotect), nginx (Debian's, 1 worker, access_log off,
# config in perf/http_peers.sh), go (perf/go_http, GOMAXPROCS=1). Without an apps/http binary it
# says so and compares the peers only.
#
# Environment overrides (defaults in brackets):
#   SERVERS ["ours ours-nometrics ours-mprotect nginx go"]  SCENARIOS ["keepalive conns1000 pipelined post4k"]
#   DURATION_S [5]  WARMUP_S [1]  CONNS [100]  MANY_CONNS [1000]  PIPELINE_DEPTH [16]
#   POST_SIZE [4096]  OURS_ARGS [] (extra flags for apps/http)  HTTP_BIN [the opt bazel-bin's
#   apps/http/http]  SKIP_BUILD [0] (1: use what is built)  REPS [1] (interleaved rounds; each
#   row is that server's median round by server CPU per request)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SERVERS=${SERVERS:-"ours ours-nometrics ours-mprotect nginx go"}
SCENARIOS=${SCENARIOS:-"keepalive conns1000 pipelined post4k"}
DURATION_S=${DURATION_S:-5}
WARMUP_S=${WARMUP_S:-1}
CONNS=${CONNS:-100}
MANY_CONNS=${MANY_CONNS:-1000}
PIPELINE_DEPTH=${PIPELINE_DEPTH:-16}
POST_SIZE=${POST_SIZE:-4096}
OURS_ARGS=${OURS_ARGS:-}
SKIP_BUILD=${SKIP_BUILD:-0}
REPS=${REPS:-1}

say() { printf 'http_compare: %s\n' "$*" >&2; }
# shellcheck source=perf/lib.sh
. perf/lib.sh
# shellcheck source=perf/http_peers.sh
. perf/http_peers.sh

command -v wrk >/dev/null || { say "wrk is not installed (Debian package wrk; run tools/mnv setup)"; exit 1; }

# --- build -------------------------------------------------------------------------------------
wants() { [[ " $SERVERS " == *" $1 "* ]]; }
if wants ours || wants ours-mprotect; then
  if [ -z "${HTTP_BIN:-}" ]; then
    if [ "$SKIP_BUILD" != 1 ] && [ -f apps/http/BUILD.bazel ]; then
      say "building //apps/http (--config=opt)"
      bazel build --config=opt //apps/http >&2 || say "//apps/http does not build"
    fi
    HTTP_BIN="$(bazel info --config=opt bazel-bin 2>/dev/null || echo bazel-bin)/apps/http/http"
  fi
  if [ ! -x "$HTTP_BIN" ]; then
    say "our server ($HTTP_BIN) does not exist yet: comparing the peers only"
    SERVERS=$(tr ' ' '\n' <<<"$SERVERS" | grep -v '^ours' | tr '\n' ' ' || true)
  fi
fi
if wants go; then
  GO_BIN="$TMP/go_http"
  say "building the Go peer (perf/go_http)"
  build_go_peer "$GO_BIN" || { say "the Go peer does not build: leaving it out"; SERVERS=${SERVERS//go/}; }
fi
read -r -a SERVER_LIST <<<"$SERVERS"
[ ${#SERVER_LIST[@]} -gt 0 ] || { say "no server to run (SERVERS='$SERVERS')"; exit 1; }

# --- machine setup -----------------------------------------------------------------------------
ncpu=$(nproc)
SERVER_CPU=$((ncpu - 1))
CLIENT_CPU=0
[ "$ncpu" -lt 2 ] && say "warning: one CPU: server and wrk share it"
raise_fd_limit $((MANY_CONNS + 1024))
export GOMAXPROCS=1
CLK_TCK=$(getconf CLK_TCK)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

label() {
  case "$1" in
    ours) echo "mnv" ;;
    ours-nometrics) echo "mnv --metrics=false" ;;
    ours-mprotect) echo "mnv --isolation=mprotect" ;;
    nginx) echo "nginx $("$NGINX" -v 2>&1 | sed 's|.*nginx/||') (1 worker)" ;;
    go) echo "Go $(go env GOVERSION 2>/dev/null | sed 's/^go//') net/http (GOMAXPROCS=1)" ;;
    *) echo "$1" ;;
  esac
}

start_peer() {
  case "$1" in
    ours) start_server "mnv" "$SERVER_CPU" "$HTTP_BIN" "$OURS_ARGS" ;;
    ours-nometrics) start_server "mnv nometrics" "$SERVER_CPU" "$HTTP_BIN" "--metrics=false $OURS_ARGS" ;;
    ours-mprotect) start_server "mnv mprotect" "$SERVER_CPU" "$HTTP_BIN" "--isolation=mprotect $OURS_ARGS" ;;
    nginx) start_nginx nginx "$SERVER_CPU" ;;
    go) start_server "go" "$SERVER_CPU" "$GO_BIN" "" ;;
    *) say "unknown server '$1' in SERVERS (known: ours ours-nometrics ours-mprotect nginx go)"; return 1 ;;
  esac
}

# wrk's report as one RESULT line (latencies in µs).
wrk_result() {
  awk '
    function us(v) {
      if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000
      if (v ~ /s$/) return v * 1e6; if (v ~ /m$/) return v * 6e7; return v + 0 }
    # wrk 4.1.0 now and then prints a percentile as 0.00us (its bucket walk ends without
    # reaching the rank): that is no measurement, so it becomes "na" (— in the table).
    $1 == "50%" { p50 = us($2); if (p50 == 0) p50 = "na" }
    $1 == "99%" { p99 = us($2); if (p99 == 0) p99 = "na" }
    / requests in / { n = $1 }
    /Socket errors:/ { gsub(",", ""); e = $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "RESULT req_per_s=%s p50_us=%s p99_us=%s requests=%s errors=%d non2xx=%d\n",
                 (rps == "" ? "na" : rps), (p50 == "" ? "na" : p50), (p99 == "" ? "na" : p99),
                 (n == "" ? "na" : n), e, bad }'
}

# wrk_args SCENARIO PORT SECONDS: the wrk command line for one run.
wrk_args() {
  local sc=$1 port=$2 secs=$3 url="http://127.0.0.1:$2"
  local common=(wrk -t1 -d"${secs}s" --latency)
  case "$sc" in
    keepalive) echo "${common[*]} -c$CONNS -s perf/wrk/spectrum.lua $url/plaintext" ;;
    conns1000) echo "${common[*]} -c$MANY_CONNS -s perf/wrk/spectrum.lua $url/plaintext" ;;
    pipelined) echo "${common[*]} -c$CONNS -s perf/wrk/pipeline.lua $url -- $PIPELINE_DEPTH /plaintext" ;;
    post4k) echo "${common[*]} -c$CONNS -s perf/wrk/post4k.lua $url/echo -- $POST_SIZE" ;;
    *) say "unknown scenario '$sc' (known: keepalive conns1000 pipelined post4k)"; return 1 ;;
  esac
}

describe() {
  case "$1" in
    keepalive) echo "keep-alive, $CONNS conns, GET /plaintext" ;;
    conns1000) echo "keep-alive, $MANY_CONNS conns, GET /plaintext" ;;
    pipelined) echo "$PIPELINE_DEPTH-deep pipelined, $CONNS conns, GET /plaintext" ;;
    post4k) echo "POST $POST_SIZE B to /echo, $CONNS conns" ;;
  esac
}

# What a server answers: bytes of a GET /plaintext response with its head, the header names, and
# whether POST /echo gives the body back.
declare -A ANSWER
probe() {
  local s=$1 port=$2 resp bytes names body echo_out
  resp=$(curl -s -i --max-time 5 "http://127.0.0.1:$port/plaintext" | tr -d '\r') || resp=""
  bytes=$(curl -s -i --max-time 5 "http://127.0.0.1:$port/plaintext" | wc -c) || bytes=0
  names=$(sed -n '2,/^$/p' <<<"$resp" | sed -n 's/^\([^:]*\):.*/\1/p' | paste -sd, | sed 's/,/, /g')
  body=$(sed '1,/^$/d' <<<"$resp")
  echo_out=$(printf 'ping %s' "$s" | curl -s --max-time 5 --data-binary @- -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$port/echo") || echo_out=""
  if [ "$echo_out" = "ping $s" ]; then echo_out="echoes the body"
  else echo_out="answers '${echo_out:0:20}' (does not echo)"; fi
  [ "$body" = "Hello, World!" ] || names="$names — WRONG BODY '${body:0:20}'"
  ANSWER[$s]="$bytes|$names|$echo_out"
}

# CPU seconds (user+sys) of this shell's reaped children, from a file `times` wrote (in this shell,
# not a subshell): the difference around a wrk run is wrk's own.
children_cpu_s() {
  sed -n 2p "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }; print t }'
}

declare -A R PICK
PLOT_DIR="${PLOT_DIR:-out/bench_http}"
mkdir -p "$PLOT_DIR"
rm -f "$PLOT_DIR"/spectrum_*.csv
for sc in $SCENARIOS; do wrk_args "$sc" 0 1 >/dev/null || exit 2; done
# Rounds interleave the servers, so slow spells of this shared machine hit them alike.
for ((rep = 1; rep <= REPS; rep++)); do
for sc in $SCENARIOS; do
  for s in "${SERVER_LIST[@]}"; do
    if ! start_peer "$s"; then R["$sc|$s|$rep"]=failed; continue; fi
    say "round $rep/$REPS, $(describe "$sc"): $s on port $SERVER_PORT, pid $SERVER_PID"
    [ -n "${ANSWER[$s]:-}" ] || probe "$s" "$SERVER_PORT"
    if [ "$WARMUP_S" != 0 ]; then
      # shellcheck disable=SC2046  # the words of wrk's command line
      run_pinned "$CLIENT_CPU" $(wrk_args "$sc" "$SERVER_PORT" "$WARMUP_S") 2>/dev/null
    fi
    t0=$(cpu_ticks "$SERVER_PID") || t0=""
    times >"$TMP/times.0"
    w0=$(date +%s.%N)
    export WRK_SPECTRUM="$PLOT_DIR/spectrum_${sc}_${s}_${rep}.csv"
    # shellcheck disable=SC2046
    run_pinned "$CLIENT_CPU" $(wrk_args "$sc" "$SERVER_PORT" "$DURATION_S")
    unset WRK_SPECTRUM
    w1=$(date +%s.%N)
    times >"$TMP/times.1"
    c0=$(children_cpu_s "$TMP/times.0")
    c1=$(children_cpu_s "$TMP/times.1")
    t1=$(cpu_ticks "$SERVER_PID") || t1=""
    r=$(wrk_result <<<"$RUN_OUT")
    n=$(kv "$r" requests)
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v n="$n" -v w0="$w0" -v w1="$w1" \
      -v c0="$c0" -v c1="$c1" 'BEGIN {
      printf "client_cpu_pct=%.0f ", 100 * (c1 - c0) / (w1 - w0)
      if (a == "" || b == "" || n + 0 <= 0) { print "cpu_us_per_req=na cpu_pct=na"; exit }
      s = (b - a) / hz; printf "cpu_us_per_req=%.3f cpu_pct=%.0f\n", s * 1e6 / n, 100 * s / (w1 - w0) }')
    R["$sc|$s|$rep"]="$r $cpu"
    [ "$(kv "$r" p99_us)" = na ] && say "  wrk printed a p99 of 0.00us: no measurement, shown as —"
    say "  $(kv "$r" req_per_s) req/s, p99 $(kv "$r" p99_us) us, $cpu, $(kv "$r" errors) socket errors, $(kv "$r" non2xx) non-2xx"
    stop_server
  done
done
done
# Of the rounds, the one with the median server CPU per request.
for sc in $SCENARIOS; do
  for s in "${SERVER_LIST[@]}"; do
    pick=$(for ((rep = 1; rep <= REPS; rep++)); do
             r="${R["$sc|$s|$rep"]}"
             if [ "$r" != failed ] && [ "$(kv "$r" cpu_us_per_req)" != na ]; then
               echo "$(kv "$r" cpu_us_per_req) $rep"
             fi
           done | median_line | awk '{ print $2 }')
    R["$sc|$s"]="${R["$sc|$s|${pick:-1}"]}"
    PICK["$sc|$s"]="${pick:-1}"
  done
done
# The latency spectra of the keep-alive scenarios, every server's median round on one chart.
PLOTS=()
for sc in $SCENARIOS; do
  args=()
  for s in "${SERVER_LIST[@]}"; do
    f="$PLOT_DIR/spectrum_${sc}_${s}_${PICK["$sc|$s"]}.csv"
    [ -s "$f" ] && args+=("$f" "$s")
  done
  [ ${#args[@]} -gt 0 ] || continue
  if tools/plot_latency.sh spectrum "$PLOT_DIR/${sc}_spectrum.png" "HTTP/1.1 $(describe "$sc"): latency spectrum (wrk, from each actual send)" "${args[@]}"; then
    PLOTS+=("$PLOT_DIR/${sc}_spectrum.png")
  fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------------
echo "## HTTP/1.1 side by side ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -r), $ncpu CPUs)"
echo
echo "Command: \`SERVERS=\"${SERVER_LIST[*]}\" perf/http_compare.sh\` (DURATION_S=$DURATION_S WARMUP_S=$WARMUP_S CONNS=$CONNS"
echo "MANY_CONNS=$MANY_CONNS PIPELINE_DEPTH=$PIPELINE_DEPTH POST_SIZE=$POST_SIZE REPS=$REPS${OURS_ARGS:+ OURS_ARGS=\"$OURS_ARGS\"}); each server pinned to CPU $SERVER_CPU,"
echo "\`wrk -t1 --latency\` to CPU $CLIENT_CPU; load average (1/5/15 min) $LOAD_BEFORE before, $LOAD_AFTER after."
echo "Server CPU is utime+stime of the server and its children (nginx: master + worker) over wrk's run;"
echo "wrk CPU % is wrk's own (one core at most): near 100 %, wrk bounds req/s, and server CPU µs/req is the"
echo "figure to compare."
if [ "$REPS" -gt 1 ]; then echo "Each row is that server's median of $REPS interleaved rounds by server CPU per request."; fi
echo "Ratios compare the row with nginx and Go in the same scenario: req/s higher is better, CPU/req lower."
echo "In the pipelined rows wrk's latency is per batch (from its write to its last response); — in a"
echo "latency column: wrk printed 0.00us for that percentile (it now and then does), no measurement."
echo
echo "| scenario | server | req/s | p50 µs | p99 µs | server CPU µs/req | server CPU % | wrk CPU % | req/s ÷ nginx | req/s ÷ Go | CPU/req ÷ nginx | CPU/req ÷ Go | socket errors | non-2xx |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for sc in $SCENARIOS; do
  for s in "${SERVER_LIST[@]}"; do
    r="${R["$sc|$s"]:-failed}"
    if [ "$r" = failed ]; then
      echo "| $(describe "$sc") | $(label "$s") | failed to start | | | | | | | | | | | |"
      continue
    fi
    ng="${R["$sc|nginx"]:-}"; go="${R["$sc|go"]:-}"
    [ "$ng" = failed ] && ng=""; [ "$go" = failed ] && go=""
    echo "| $(describe "$sc") | $(label "$s") | $(fix "$(kv "$r" req_per_s)" 0) | $(fix "$(kv "$r" p50_us)" 0) | $(fix "$(kv "$r" p99_us)" 0) |" \
         "$(fix "$(kv "$r" cpu_us_per_req)" 2) | $(kv "$r" cpu_pct) | $(kv "$r" client_cpu_pct) |" \
         "$(ratio "$(kv "$r" req_per_s)" "$(kv "$ng" req_per_s)") | $(ratio "$(kv "$r" req_per_s)" "$(kv "$go" req_per_s)") |" \
         "$(ratio "$(kv "$r" cpu_us_per_req)" "$(kv "$ng" cpu_us_per_req)") | $(ratio "$(kv "$r" cpu_us_per_req)" "$(kv "$go" cpu_us_per_req)") |" \
         "$(kv "$r" errors) | $(kv "$r" non2xx) |"
  done
done
echo
echo "What each server answers (curl, once per server): a GET /plaintext response, head included, and"
echo "POST /echo. nginx has no body echo in its core: its /echo reads the request body, discards it and"
echo "answers \"Hello, World!\", so in the POST row it sends 4 KiB less per response than a server that echoes."
echo
echo "| server | GET /plaintext response bytes | header fields | POST /echo |"
echo "|---|---|---|---|"
for s in "${SERVER_LIST[@]}"; do
  IFS='|' read -r bytes names echo_out <<<"${ANSWER[$s]:-|not reached|}"
  echo "| $(label "$s") | $bytes | $names | $echo_out |"
done
if [ ${#PLOTS[@]} -gt 0 ]; then
  echo
  echo "Latency spectra (every server on one chart): ${PLOTS[*]}"
fi
