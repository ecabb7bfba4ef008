# shellcheck shell=bash
# tests/rtb_fleet_lib.sh — shell helpers for a bidder fleet sharing budgets through Redis
# (apps/rtb/lease_keeper.h): the tests/rtb_*fleet*_test.sh and tools/demo_fleet.sh source it.
# Everything it starts lives under $FLEET_TMP (a fresh temporary directory) and is stopped, by
# its pid, when the script exits.
#
# What a script may set before sourcing it, else defaulted here: `say` (a line on stderr, named
# after the script), RTB_BIN, LOAD (perf/http_load) and CAMPAIGNS (apps/rtb/campaigns.toml), from
# the tree or runfiles this file lies in. It exits 1 when redis-server is not installed.
#
#   fleet_start_redis                redis-server on a free loopback port, no persistence (unless
#                                    REDIS_AOF=yes: an append-only file, fsync always), its own
#                                    directory; sets REDIS_PORT, REDIS_PID
#   fleet_restart_redis              SIGKILLs it and starts it again on the same port and directory
#   fleet_start_cluster BIN          a three-master Redis Cluster (BIN: tests/redis_cluster_up) instead:
#                                    sets CLUSTER_SEEDS, REDIS_PORTS; the bidders then lease through it
#   cluster_owner KEY                the port of the master holding KEY
#   cluster_migrate_slot SLOT FROM TO  moves a slot and its keys between masters (ports) by hand
#   rcli ARGS...                     redis-cli against it (-c: following a cluster's redirections)
#   fleet_set_budgets MICROS FILE    sets every campaign of FILE's budget in Redis to MICROS
#   fleet_start_bidder N FLAGS...    bidder N (BIDDER_ADDR[N], BIDDER_ADMIN[N], BIDDER_PID[N]),
#                                    leasing from the Redis above, port 0, its own admin port
#   metric_sum N REGEX               the sum of bidder N's /metrics samples matching REGEX
#   redis_left_sum                   Σ {budget:*}:left in Redis (every master of a cluster)
#   redis_leases_of PID              Σ what the holders "<host>:PID/<shard>" hold in Redis
#   check WHAT CONDITION             (tests) says ok or FAILED (CONDITION is shell arithmetic); a
#                                    failure sets fail=1
#   wait_for SECONDS 'CONDITION'     until the shell condition holds (polls every 50 ms); 1 if never
#   fleet_finish                     (tests) the bidders' stderr if anything failed; exits $fail
FLEET_TMP="$(mktemp -d)"
FLEET_PIDS=()
FLEET_TERM_PIDS=()  # (stopped with SIGTERM: they stop their own children)
fleet_cleanup() {
  local p
  for p in "${FLEET_TERM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${FLEET_TERM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${FLEET_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; done
  for p in "${FLEET_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$FLEET_TMP"
}
trap fleet_cleanup EXIT
trap 'exit 130' INT TERM

FLEET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
declare -F say >/dev/null || say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
command -v redis-server >/dev/null || { say "redis-server is not installed (Debian redis-server: tools/mnv setup)"; exit 1; }
RTB_BIN=${RTB_BIN:-$FLEET_ROOT/apps/rtb/rtb}
LOAD=${LOAD:-$FLEET_ROOT/perf/http_load}
CAMPAIGNS=${CAMPAIGNS:-$FLEET_ROOT/apps/rtb/campaigns.toml}
fail=0
check() {
  if (( $2 )); then say "ok: $1"; else say "FAILED: $1 ($2)"; fail=1; fi
}
wait_for() {
  local until=$((SECONDS + $1))
  until eval "$2"; do
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.05
  done
}
fleet_finish() {
  [ "$fail" = 0 ] || { say "bidder stderr:"; tail -n 20 "$FLEET_TMP"/err* >&2; }
  exit "$fail"
}
declare -a BIDDER_ADDR BIDDER_ADMIN BIDDER_PID

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

redis_on() {  # redis_on PORT: starts redis-server there; 0 once it answers PING
  mkdir -p "$FLEET_TMP/redis"
  redis-server --bind 127.0.0.1 --port "$1" --dir "$FLEET_TMP/redis" --save '' --appendonly "${REDIS_AOF:-no}" \
    --appendfsync always --daemonize no --logfile "$FLEET_TMP/redis/log" &
  REDIS_PID=$!
  FLEET_PIDS+=("$REDIS_PID")
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$REDIS_PID" 2>/dev/null || true
  return 1
}
fleet_start_redis() {
  for _ in 1 2 3; do
    REDIS_PORT=$(free_port)
    redis_on "$REDIS_PORT" && return 0
  done
  say "redis-server did not start; its log:"
  cat "$FLEET_TMP/redis/log" >&2 || true
  return 1
}
fleet_restart_redis() {
  kill -KILL "$REDIS_PID"
  wait "$REDIS_PID" 2>/dev/null || true
  redis_on "$REDIS_PORT" || { say "redis-server did not start again on $REDIS_PORT; its log:"; tail -n 20 "$FLEET_TMP/redis/log" >&2; return 1; }
}
rcli() { redis-cli -c -p "$REDIS_PORT" "$@"; }

fleet_start_cluster() {
  mkfifo "$FLEET_TMP/cluster"
  "$1" 3 >"$FLEET_TMP/cluster" 2>"$FLEET_TMP/cluster.err" &
  FLEET_TERM_PIDS+=("$!")
  local line
  exec {cfd}<"$FLEET_TMP/cluster"
  if ! IFS= read -r -t 60 line <&"$cfd" || [[ "$line" != "cluster "* ]]; then
    say "the Redis Cluster did not come up: $(cat "$FLEET_TMP/cluster.err")"
    return 1
  fi
  CLUSTER_SEEDS=${line#cluster }
  REDIS_PORTS=$(tr ',' '\n' <<<"$CLUSTER_SEEDS" | sed 's/.*://' | tr '\n' ' ')
  REDIS_PORT=${REDIS_PORTS%% *}
  FLEET_REDIS="--redis_cluster=$CLUSTER_SEEDS"
}
cluster_owner() {
  local p
  for p in $REDIS_PORTS; do
    [ "$(redis-cli -p "$p" CLUSTER COUNTKEYSINSLOT "$(redis-cli -p "$p" CLUSTER KEYSLOT "$1")")" -gt 0 ] && { echo "$p"; return; }
  done
}
cluster_migrate_slot() {
  local slot=$1 from=$2 to=$3 from_id to_id keys p
  from_id=$(redis-cli -p "$from" CLUSTER MYID)
  to_id=$(redis-cli -p "$to" CLUSTER MYID)
  redis-cli -p "$to" CLUSTER SETSLOT "$slot" IMPORTING "$from_id" >/dev/null
  redis-cli -p "$from" CLUSTER SETSLOT "$slot" MIGRATING "$to_id" >/dev/null
  keys=$(redis-cli -p "$from" CLUSTER GETKEYSINSLOT "$slot" 100 | tr '\n' ' ')
  # shellcheck disable=SC2086  # (the keys are words)
  [ -z "$keys" ] || redis-cli -p "$from" MIGRATE 127.0.0.1 "$to" "" 0 5000 KEYS $keys >/dev/null
  for p in $REDIS_PORTS; do redis-cli -p "$p" CLUSTER SETSLOT "$slot" NODE "$to_id" >/dev/null; done
}

campaign_ids() { sed -n 's/^id = "\(.*\)"$/\1/p' "$1"; }
fleet_set_budgets() {
  local id
  for id in $(campaign_ids "$2"); do rcli SET "{budget:$id}:left" "$1" >/dev/null; done
}

# fleet_start_bidder N FLAGS...: reads "listening on" and "admin listening on" (no sleeps).
fleet_start_bidder() {
  local n=$1 first second
  shift
  mkfifo "$FLEET_TMP/out$n"
  "$RTB_BIN" --host=127.0.0.1 --port=0 --admin_port=0 "${FLEET_REDIS:---redis=127.0.0.1:$REDIS_PORT}" "$@" \
    >"$FLEET_TMP/out$n" 2>"$FLEET_TMP/err$n" &
  BIDDER_PID[n]=$!
  FLEET_PIDS+=("${BIDDER_PID[n]}")
  exec {fd}<"$FLEET_TMP/out$n"
  if ! IFS= read -r -t 30 first <&"$fd" || [[ "$first" != "listening on "* ]]; then
    say "bidder $n did not say 'listening on HOST:PORT' (got '${first:-}'); its stderr:"
    cat "$FLEET_TMP/err$n" >&2
    return 1
  fi
  IFS= read -r -t 5 second <&"$fd" || true
  BIDDER_ADDR[n]=${first#listening on }
  BIDDER_ADMIN[n]=${second#admin listening on }
  [ -n "${BIDDER_ADMIN[n]}" ] || BIDDER_ADMIN[n]=${BIDDER_ADDR[n]}
}
metric_sum() {
  curl -s --max-time 5 "http://${BIDDER_ADMIN[$1]}/metrics" |
    awk -v re="$2" '!/^#/ && $1 ~ re { s += $NF } END { printf "%.0f", s }'
}
redis_left_sum() {
  local k s=0 p
  for p in ${REDIS_PORTS:-$REDIS_PORT}; do
    for k in $(redis-cli -p "$p" --scan --pattern '{budget:*}:left'); do s=$((s + $(redis-cli -p "$p" GET "$k"))); done
  done
  echo "$s"
}
redis_leases_of() {
  local k s=0 v p
  for p in ${REDIS_PORTS:-$REDIS_PORT}; do
    for k in $(redis-cli -p "$p" --scan --pattern '{budget:*}:leases'); do
      for v in $(redis-cli -p "$p" HGETALL "$k" | awk -v p=":$1/" 'NR % 2 == 1 { h = index($0, p) > 0 } NR % 2 == 0 && h { print }'); do
        s=$((s + v))
      done
    done
  done
  echo "$s"
}
