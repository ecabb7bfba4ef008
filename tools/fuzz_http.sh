#!/usr/bin/env bash
# tools/fuzz_http.sh — builds the HTTP request parser's libFuzzer target with Debian's clang
# (outside Bazel: -fsanitize=fuzzer,address,undefined) against llhttp, the differential oracle,
# and runs it over the checked-in seed corpus and then for FUZZ_RUNS inputs (default 400000,
# about 40 s here; 0: no count) or FUZZ_SECONDS (default 120), whichever ends first, from
# FUZZ_SEED (default 1; 0 picks one). A fixed seed and input count, from the checked-in corpus
# alone, keep the run nearly the same on every machine (libFuzzer is not bit-exact: two runs here
# added 4249 and 4216 new inputs), where a time limit alone made a fast machine explore further
# than a slow one.
# Exits non-zero on any crash, sanitizer report or oracle mismatch (the input is kept in
# $FUZZ_OUT, default /tmp/mnv-fuzz-http). Needs clang-14, libclang-rt-14-dev, node-llhttp.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_TO_RUN="${FUZZ_SECONDS:-120}"
RUNS="${FUZZ_RUNS:-400000}"
[ "$RUNS" -eq 0 ] && RUNS=-1  # (libFuzzer's "no limit")
OUT="${FUZZ_OUT:-/tmp/mnv-fuzz-http}"
CXX="${FUZZ_CXX:-clang++-14}"
CC="${FUZZ_CC:-clang-14}"
LLHTTP_SRC=/usr/share/llhttp
LLHTTP_INC=/usr/share/include/llhttp

for tool in "$CXX" "$CC"; do
  command -v "$tool" >/dev/null || { echo "fuzz_http: $tool not found: run tools/mnv setup (clang-14)" >&2; exit 1; }
done
[ -f "$LLHTTP_SRC/llhttp.c" ] || { echo "fuzz_http: $LLHTTP_SRC/llhttp.c not found: run tools/mnv setup (node-llhttp)" >&2; exit 1; }

rm -rf "$OUT/corpus"  # what an earlier run found would change this one
mkdir -p "$OUT/obj" "$OUT/corpus"
FLAGS=(-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
for f in llhttp api http; do
  "$CC" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -w -I"$LLHTTP_INC" -c "$LLHTTP_SRC/$f.c" -o "$OUT/obj/llhttp_$f.o"
done
# The parsers' sources only (the rest of net/http, the server and client, needs the runtime).
SRCS=(net/http/chunked_decoder.cc net/http/fields.cc net/http/parse_error.cc
      net/http/request_parser.cc net/http/response_parser.cc)
"$CXX" -std=c++20 "${FLAGS[@]}" -fsanitize=fuzzer -Wall -Wextra -Wno-unused-parameter -Werror \
  -I. -I"$LLHTTP_INC" net/http/fuzz/request_fuzzer.cc "${SRCS[@]}" mem/log.cc "$OUT"/obj/llhttp_*.o \
  -o "$OUT/request_fuzzer"

# New inputs go to $OUT/corpus (the checked-in seeds stay as they are); crashes to $OUT/.
rc=0
"$OUT/request_fuzzer" -seed="${FUZZ_SEED:-1}" -runs="$RUNS" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -dict=net/http/fuzz/http.dict -artifact_prefix="$OUT/" -print_final_stats=1 \
  "$OUT/corpus" net/http/fuzz/corpus/request >"$OUT/log" 2>&1 || rc=$?
tail -n 12 "$OUT/log" | grep -E 'stat::number_of_executed_units|stat::new_units_added' >&2 || true
if [ "$rc" -ne 0 ]; then
  grep -A 40 -E 'MISMATCH|ERROR: (Address|Undefined|libFuzzer)|runtime error' "$OUT/log" | grep -vE '^ +#[0-9]+ .*(libc|fuzzer::|_start)' | head -60 >&2
  echo "fuzz_http: FAILED (exit $rc); input saved under $OUT/ (crash-*); full log $OUT/log" >&2
  exit 1
fi
units=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/log" | grep -o '[0-9]*$' || echo '?')
echo "fuzz_http: $units inputs (seed ${FUZZ_SEED:-1}) without a crash or an llhttp mismatch" >&2
