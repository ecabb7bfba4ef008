#!/usr/bin/env bash
# tools/check_embed.sh — builds examples/embed, an outside workspace on mnvkd's public targets, as
# an embedder would (offline, Debian's Bazel, no .bazelrc of ours), with every other public
# library of mnvkd beside it (each must build from there too), then runs it: one request, one
# SIGTERM, and the server must answer and exit 0. Exit 0 when all of that held.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Every public library, as the project's own workspace lists them (a query of @mnvkd//... from the
# embedder's side would wander into the project's bazel-* output links).
public=$(bazel query 'attr(visibility, "//visibility:public", kind("cc_library rule", //...)) - attr(testonly, 1, //...)' 2>/dev/null |
         sed 's|^//|@mnvkd//|')
cd examples/embed

say() { printf 'check_embed: %s\n' "$*" >&2; }

# Flags for the output only (no bazel-* links in the tree, no sandbox debug flood); nothing that
# changes how the code is built.
bazel_in_embed() { bazel "$@" --symlink_prefix=/ --nosandbox_debug; }

server=""
out=$(mktemp -d)
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server"; fi
  rm -rf "$out"
  bazel shutdown 2>/dev/null || true  # this workspace's own Bazel server
}
trap cleanup EXIT

# shellcheck disable=SC2086  # labels are words
if ! bazel_in_embed build //:greeter $public >"$out/build.log" 2>&1; then
  say "bazel build //:greeter $(echo $public) in examples/embed failed:"
  tail -40 "$out/build.log" >&2
  exit 1
fi
bin="$(bazel info --symlink_prefix=/ bazel-bin 2>/dev/null)/greeter"

"$bin" >"$out/stdout" 2>"$out/stderr" &
server=$!
# Wait for the "listening on HOST:PORT" line (at most 10 s).
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out/stdout")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  say "the greeter did not say where it listens; its stderr:"
  cat "$out/stderr" >&2
  exit 1
fi

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'embed\n' >&3
reply=""
IFS= read -r -t 10 reply <&3 || true
exec 3>&-
if [ "$reply" != "hello, embed" ]; then
  say "asked 'embed' on port $port, expected 'hello, embed', got '$reply'"
  exit 1
fi

kill -TERM "$server"
for _ in $(seq 300); do  # at most 30 s (the grace period is shorter)
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$server" 2>/dev/null; then
  say "the greeter was still running 30 s after SIGTERM"
  exit 1
fi
rc=0
wait "$server" || rc=$?
server=""
if [ "$rc" -ne 0 ]; then
  say "after SIGTERM the greeter exited $rc, not 0; its stderr:"
  cat "$out/stderr" >&2
  exit 1
fi
say "built with $(echo "$public" | wc -w) public libraries from its own workspace, answered 'hello, embed', exited 0 on SIGTERM"
