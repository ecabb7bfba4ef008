#!/usr/bin/env bash
# tools/fuzz_resp.sh — builds the RESP reply parser's libFuzzer target (redis/fuzz/reply_fuzzer.cc)
# with Debian's clang outside Bazel (-fsanitize=fuzzer,address,undefined) and runs it over the
# checked-in seed corpus and then for FUZZ_RUNS inputs (default 600000, about 30 s here; 0: no
# count) or FUZZ_SECONDS (default 90), whichever ends first, from FUZZ_SEED (default 1; 0 picks
# one): a fixed seed and count explore about the same inputs on every machine.
# Exits non-zero on any crash, sanitizer report or disagreement between the ways of feeding the
# bytes (the input is kept in $FUZZ_OUT, default /tmp/mnv-fuzz-resp). Needs clang-14 and
# libclang-rt-14-dev.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_TO_RUN="${FUZZ_SECONDS:-90}"
RUNS="${FUZZ_RUNS:-600000}"
[ "$RUNS" -eq 0 ] && RUNS=-1  # (libFuzzer's "no limit")
OUT="${FUZZ_OUT:-/tmp/mnv-fuzz-resp}"
CXX="${FUZZ_CXX:-clang++-14}"

command -v "$CXX" >/dev/null || { echo "fuzz_resp: $CXX not found: run tools/mnv setup (clang-14)" >&2; exit 1; }

rm -rf "$OUT/corpus"  # what an earlier run found would change this one
mkdir -p "$OUT/corpus"
FLAGS=(-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
# The parser's sources only (the writer and the client need the runtime).
"$CXX" -std=c++20 "${FLAGS[@]}" -fsanitize=fuzzer -Wall -Wextra -Werror -I. \
  redis/fuzz/reply_fuzzer.cc redis/reply_parser.cc redis/reply.cc mem/log.cc -o "$OUT/reply_fuzzer"

rc=0
"$OUT/reply_fuzzer" -seed="${FUZZ_SEED:-1}" -runs="$RUNS" -max_total_time="$SECONDS_TO_RUN" -max_len=2048 -timeout=10 \
  -rss_limit_mb=2048 -dict=redis/fuzz/resp.dict -artifact_prefix="$OUT/" -print_final_stats=1 \
  "$OUT/corpus" redis/fuzz/corpus >"$OUT/log" 2>&1 || rc=$?
tail -n 12 "$OUT/log" | grep -E 'stat::number_of_executed_units|stat::new_units_added' >&2 || true
if [ "$rc" -ne 0 ]; then
  grep -A 40 -E 'MISMATCH|ERROR: (Address|Undefined|libFuzzer)|runtime error' "$OUT/log" | grep -vE '^ +#[0-9]+ .*(libc|fuzzer::|_start)' | head -60 >&2
  echo "fuzz_resp: FAILED (exit $rc); input saved under $OUT/ (crash-*); full log $OUT/log" >&2
  exit 1
fi
units=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/log" | grep -o '[0-9]*$' || echo '?')
echo "fuzz_resp: $units inputs (seed ${FUZZ_SEED:-1}) without a crash or a disagreement" >&2
