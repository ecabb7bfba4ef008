# shellcheck shell=bash
# perf/http_peers.sh — the HTTP benchmark's two peers, nginx and a Go net/http server, started the
# way perf/lib.sh starts our servers (pinned, on a free port, stopped with the script). Source it
# after perf/lib.sh (it uses say, TMP, PIDS, SERVER_PID/PORT/ERR and stop_server from there).
#
#   free_port                  a TCP port on 127.0.0.1 that was free a moment ago (python3 binds
#                              port 0 and prints what the kernel chose)
#   build_go_peer OUT          go build perf/go_http/main.go into OUT (standard library only,
#                              offline; GOCACHE from the environment, else under $TMP)
#   start_nginx NAME CPUS      Debian's nginx with its own config in $TMP (write_nginx_conf),
#                              pinned to CPUS; returns once its worker has started (its
#                              "start worker process" notice, read from its stderr: no sleeps);
#                              sets SERVER_PID (the master), SERVER_PORT, SERVER_ERR (its log)
#   write_nginx_conf DIR PORT  the config: see there for each choice
#   cpu_ticks PID              utime+stime, in clock ticks, of PID and its children (for nginx:
#                              master + worker); nothing if PID is gone

NGINX=${NGINX:-nginx}
command -v "$NGINX" >/dev/null || NGINX=/usr/sbin/nginx

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

build_go_peer() {
  local out=$1 root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if ! command -v go >/dev/null; then
    say "go is not installed (Debian package golang-go; tools/mnv setup installs it)"
    return 1
  fi
  if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ]; then export GOCACHE="$TMP/gocache"; fi
  # No modules: one file of the standard library, so no network and no go.mod.
  GO111MODULE=off GOPROXY=off GOFLAGS='' go build -o "$out" "$root/perf/go_http/main.go" >&2
}

# master_process on, with one worker: nginx as it is deployed (the master only supervises; the
# worker, which inherits the master's CPU pinning, does all the work). Its CPU per request sums
# both. daemon off keeps the master our child, so stop_server's SIGTERM + wait works.
# keepalive_requests is raised from its default of 1000 (after which nginx closes a keep-alive
# connection) because neither our server nor Go closes them: the benchmark measures serving, not
# reconnecting. /echo: nginx has no body echo in its core; `return 200` reads the request body
# and discards it (ngx_http_discard_request_body), then answers the same 13-byte body as
# /plaintext — it receives 4 KiB like the others but sends 4 KiB less per response.
write_nginx_conf() {
  local dir=$1 port=$2 user=""
  [ "$(id -u)" -eq 0 ] && user="user root;"  # the worker then keeps access to $TMP (mode 0700)
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
$user
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log stderr notice;
events {
  worker_connections 65536;
}
http {
  access_log off;
  server_tokens off;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  client_body_buffer_size 16k;
  client_max_body_size 1m;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location = /plaintext {
      default_type text/plain;
      return 200 "Hello, World!";
    }
    location = /json {
      default_type application/json;
      return 200 '{"message":"Hello, World!"}';
    }
    location = /echo {
      if (\$request_method != POST) {
        return 405;
      }
      default_type text/plain;
      return 200 "Hello, World!";
    }
  }
}
CONF
}

start_nginx() {
  local name=$1 cpus=$2 dir fifo fd line port try ok
  perf_lib_nstarted=$((perf_lib_nstarted + 1))
  dir="$TMP/nginx.$perf_lib_nstarted"
  SERVER_ERR="$dir/error.log"
  for try in 1 2 3; do
    port=$(free_port)
    write_nginx_conf "$dir" "$port"
    fifo="$dir/stderr.$try"
    mkfifo "$fifo"
    taskset -c "$cpus" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e stderr >/dev/null 2>"$fifo" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    exec {fd}<"$fifo"
    ok=0
    while IFS= read -r -t 30 -u "$fd" line; do
      printf '%s\n' "$line" >>"$SERVER_ERR"
      case "$line" in
        *"start worker process"*) ok=1; break ;;
        *"[emerg]"*) break ;;
      esac
    done
    if [ "$ok" = 1 ]; then
      # shellcheck disable=SC2034  # read by the scripts that source this one
      SERVER_PORT=$port
      cat <&"$fd" >>"$SERVER_ERR" &  # keep draining its log
      PIDS+=("$!")
      exec {fd}<&-
      return 0
    fi
    exec {fd}<&-
    stop_server
    # Another process took the port between free_port and nginx's bind: pick another.
    grep -q 'Address already in use' "$SERVER_ERR" 2>/dev/null && continue
    break
  done
  say "$name did not start (no 'start worker process' notice); its log $SERVER_ERR:"
  cat "$SERVER_ERR" >&2 2>/dev/null || true
  return 1
}

cpu_ticks() {
  local pid=$1 p s total=0 found=0
  local -a f
  for p in "$pid" $(pgrep -P "$pid" 2>/dev/null || true); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }  # the fields after "(comm) ": state is f[0], utime f[11], stime f[12]
    read -r -a f <<<"$s"
    total=$((total + f[11] + f[12]))
    found=1
  done
  [ "$found" = 1 ] && echo "$total"
}
