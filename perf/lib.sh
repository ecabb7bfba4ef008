# perf/lib.sh — shell helpers shared by the side-by-side benchmark scripts (echo_compare.sh,
# shard_compare.sh). Source it after defining `say`; it sets up a temporary directory ($TMP) and
# stops every process it started (PIDS) when the script exits.
#
#   raise_fd_limit N               soft (and if need be hard) descriptor limit of at least N
#   start_server NAME CPUS BIN FLAGS
#                                  starts BIN --host=127.0.0.1 --port=0 FLAGS pinned to CPUS;
#                                  reads the bound port from its first stdout line "listening on
#                                  HOST:PORT" (no sleeps); sets SERVER_PID, SERVER_PORT, SERVER_ERR
#                                  (its stderr file); returns 1 (and stops it) if it never says so
#   stop_server                    SIGTERM, then wait; SERVER_RC is its exit status
#   run_pinned CPUS CMD...         runs CMD pinned to CPUS in the background (so a signal stops
#                                  the script at once); RUN_OUT is its stdout, whose first line
#                                  also goes to stderr
#   median_line                    of the lines on stdin, the one whose first field is the median
#                                  (the lower middle of an even count); nothing for no lines
#   kv LINE KEY                    the value of KEY=... in a RESULT line
#   fix VALUE DIGITS               VALUE with DIGITS decimals, or — when absent
#   ratio A B                      A/B as "1.23x", or — when either is absent

TMP="$(mktemp -d)"
PIDS=()
perf_lib_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap perf_lib_cleanup EXIT
trap 'exit 130' INT TERM

raise_fd_limit() {
  local need=$1 hard
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    ulimit -Hn "$need" 2>/dev/null || say "warning: cannot raise the descriptor limit to $need (hard limit $hard; run as root)"
  fi
  ulimit -Sn "$(ulimit -Hn)"
}

SERVER_PID=""
SERVER_PORT=""
SERVER_ERR=""
SERVER_RC=0
perf_lib_nstarted=0
start_server() {
  local name=$1 cpus=$2 bin=$3 flags=$4 fifo fd line
  perf_lib_nstarted=$((perf_lib_nstarted + 1))
  fifo="$TMP/out.$perf_lib_nstarted"
  SERVER_ERR="$TMP/err.$perf_lib_nstarted"
  mkfifo "$fifo"
  # shellcheck disable=SC2086  # flags are words
  taskset -c "$cpus" "$bin" --host=127.0.0.1 --port=0 $flags >"$fifo" 2>"$SERVER_ERR" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  exec {fd}<"$fifo"
  if ! IFS= read -r -t 30 -u "$fd" line || [[ "$line" != "listening on "* ]]; then
    say "$name did not say 'listening on HOST:PORT' (got: '${line:-}'); its stderr:"
    cat "$SERVER_ERR" >&2 || true
    exec {fd}<&-
    stop_server
    return 1
  fi
  SERVER_PORT=${line##*:}
  cat <&"$fd" >/dev/null &  # keep draining its stdout
  PIDS+=("$!")
  exec {fd}<&-
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  SERVER_RC=0
  wait "$SERVER_PID" 2>/dev/null || SERVER_RC=$?
}

RUN_OUT=""
run_pinned() {
  local cpus=$1 pid
  shift
  taskset -c "$cpus" "$@" >"$TMP/run.out" &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || true
  RUN_OUT=$(cat "$TMP/run.out")
  head -n 1 <<<"$RUN_OUT" >&2
}

median_line() { sort -g | awk '{ l[NR] = $0 } END { if (NR > 0) print l[int((NR + 1) / 2)] }'; }
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
fix() { awk -v a="$1" -v d="$2" 'BEGIN { if (a == "" || a == "na") printf "—"; else printf "%.*f", d, a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && a != "na" && b != "na" && b + 0 > 0) printf "%.2fx", a / b; else printf "—" }'; }
