#!/usr/bin/env bash
# perf/http_load_ceiling.sh — perf/http_load's own limits, against Debian's nginx answering
# GET /nobid with an immediate 204 (1 worker, pinned to SERVER_CPU; the tool on CLIENT_CPU):
#   ceiling: open-loop steps at RATES (DURATION_S each, auto connections); the highest rate whose
#            run is valid (every request sent, achieved rate within 0.5%) is the tool's ceiling
#            on this machine (or nginx's: the table shows which missed);
#   noise:   NOISE_ROUNDS runs at NOISE_RATE: the spread of p50/p99/p99.9 between runs is the
#            floor below which a latency difference means nothing.
#   bazel build --config=opt //perf:http_load && perf/http_load_ceiling.sh
set -euo pipefail
say() { printf 'http_load_ceiling: %s\n' "$*" >&2; }
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
RATES=${RATES:-10000,20000,40000,60000,80000,100000}
DURATION_S=${DURATION_S:-3}
NOISE_RATE=${NOISE_RATE:-1000}
NOISE_ROUNDS=${NOISE_ROUNDS:-3}
LOAD=${LOAD:-bazel-bin/perf/http_load}
[ -x "$LOAD" ] || { say "$LOAD is missing: bazel build --config=opt //perf:http_load"; exit 1; }
. perf/lib.sh
. perf/http_peers.sh
# The peers' nginx config plus a location that answers 204 at once.
eval "peers_$(declare -f write_nginx_conf)"
write_nginx_conf() {
  peers_write_nginx_conf "$@"
  sed -i 's|    location = /plaintext {|    location = /nobid {\n      return 204;\n    }\n    location = /plaintext {|' "$1/nginx.conf"
}
start_nginx nginx "$SERVER_CPU"
common=(--port="$SERVER_PORT" --path=/nobid --expect_status=204 --progress=off)
echo "### Ceiling: open-loop steps, nginx return 204"
taskset -c "$CLIENT_CPU" "$LOAD" "${common[@]}" --rate="$RATES" --duration_s="$DURATION_S" --conns=0 | sed -n '/^| step/,$p' || true
echo
echo "### Noise: $NOISE_ROUNDS runs at $NOISE_RATE/s"
echo "| run | achieved/s | p50 ms | p99 ms | p99.9 ms | max ms | svc p50 ms | late sends |"
echo "|---|---|---|---|---|---|---|---|"
for r in $(seq "$NOISE_ROUNDS"); do
  out=$(taskset -c "$CLIENT_CPU" "$LOAD" "${common[@]}" --rate="$NOISE_RATE" --duration_s="$DURATION_S" --conns=0 | grep '^RESULT' || true)
  ms() { awk -v v="$1" 'BEGIN { printf "%.3f", v / 1000 }'; }
  echo "| $r | $(kv "$out" achieved_rate) | $(ms "$(kv "$out" p50_us)") | $(ms "$(kv "$out" p99_us)") | $(ms "$(kv "$out" p999_us)") | $(ms "$(kv "$out" max_us)") | $(ms "$(kv "$out" svc_p50_us)") | $(kv "$out" late_sends) |"
done
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); nginx on CPU $SERVER_CPU, http_load on CPU $CLIENT_CPU, $(nproc) CPUs"
stop_server
