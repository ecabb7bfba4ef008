#!/usr/bin/env bash
# tools/check_layers.sh — fails when a package depends on a layer above its own.
#
# The layers (DESIGN.md §2), lowest first; a package may depend on its own layer and on layers
# with a lower rank, never on one above nor on another layer of the same rank:
#
#   0 mem        micro-heaps
#   1 metrics    counters and histograms (may use mem only)
#   2 runtime    micro-threads, the virtual kernel
#   3 net        sockets, I/O ops, services
#   4 net/http   HTTP/1.1 (beside redis: neither uses the other)
#   4 redis      RESP client
#   5 shard      shards, the server skeleton
#   6 apps       the binaries
#
# tests/, perf/, examples/ and tools/ may depend on anything. A test-only target of a layer (a unit
# test beside its code) may also use the helpers in tests/ and perf/ — Bazel already keeps test-only
# targets out of every non-test one, so this opens no path for production code.
#
# It checks every edge of `bazel query //...` (no implicit or tool deps): when every edge points
# down, so does every path. A package under none of the prefixes below fails the check: give it a
# layer here first. Run from the repository root; exit 0 when clean, 1 with one line per offending
# edge otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# prefix rank; longest prefix first (net/http before net). Rank "any": may depend on anything.
LAYERS='
net/http 4
redis 4
mem 0
metrics 1
runtime 2
net 3
shard 5
apps 6
tests any
perf any
examples any
tools any
third_party any
'

graph=$(bazel query --noimplicit_deps --notool_deps '//...' --output=graph --graph:factored=false 2>/dev/null) || {
  echo "check_layers: bazel query //... failed:" >&2
  bazel query '//...' >/dev/null
  exit 1
}
testonly=$(bazel query 'attr(testonly, 1, //...)' 2>/dev/null)

awk -v layers="$LAYERS" -v testonly="$testonly" '
  BEGIN {
    n = split(layers, l, "\n")
    for (i = 1; i <= n; i++) {
      if (split(l[i], f, " ") == 2) { prefix[++np] = f[1]; rank[f[1]] = f[2] }
    }
    m = split(testonly, t, "\n")
    for (i = 1; i <= m; i++) if (t[i] != "") is_testonly[t[i]] = 1
    bad = 0
  }
  # The layer of a label: its package matched against the prefixes, in order.
  function layer(label,   pkg, i) {
    pkg = label
    sub(/^\/\//, "", pkg); sub(/:.*$/, "", pkg)
    for (i = 1; i <= np; i++) {
      if (pkg == prefix[i] || index(pkg, prefix[i] "/") == 1) return prefix[i]
    }
    return ""
  }
  /->/ {
    from = $1; to = $3
    gsub(/"/, "", from); gsub(/"/, "", to)
    if (to !~ /^\/\//) next  # another repository (@mnvkd_sys, @bazel_tools): no layer
    lf = layer(from); lt = layer(to)
    if (lf == "") { unplaced[from] = 1; next }
    if (lt == "") { unplaced[to] = 1; next }
    if (rank[lf] == "any" || lf == lt) next
    if (is_testonly[from] && (lt == "tests" || lt == "perf")) next
    if (rank[lt] == "any" || rank[lt] >= rank[lf]) {
      printf "check_layers: %s (layer %s) depends on %s (layer %s), which is not below it\n", from, lf, to, lt
      bad = 1
    }
  }
  END {
    for (x in unplaced) {
      printf "check_layers: %s is in no layer: give its package a rank in tools/check_layers.sh\n", x
      bad = 1
    }
    if (bad) {
      print "check_layers: the layers, lowest first: mem, metrics -> runtime -> net -> net/http, redis -> shard -> apps"
      exit 1
    }
  }
' <<<"$graph"

echo "check_layers: no back-arrows between the layers"
