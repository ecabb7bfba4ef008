#!/usr/bin/env bash
# tools/fuzz_http.sh — builds the HTTP request parser's libFuzzer target with Debian's clang
# (outside Bazel: -fsanitize=fuzzer,address,undefined) against llhttp, the differential oracle,
# and runs it over the checked-in seed corpus and then for FUZZ_RUNS inputs (default 400000,
# about 40 s here) or FUZZ_SECONDS (default 120), whichever ends first (the settings:
# tools/fuzz_lib.sh; libFuzzer is not bit-exact: two runs here added 4249 and 4216 new inputs).
# Exits non-zero on any crash, sanitizer report or oracle mismatch (the input is kept in
# $FUZZ_OUT, default /tmp/mnv-fuzz-http). Needs clang-14, libclang-rt-14-dev, node-llhttp.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fuzz_lib.sh"
fuzz_setup http 400000 120
CC="${FUZZ_CC:-clang-14}"
LLHTTP_SRC=/usr/share/llhttp
LLHTTP_INC=/usr/share/include/llhttp
fuzz_need_tool "$CC" clang-14
fuzz_need_file "$LLHTTP_SRC/llhttp.c" node-llhttp

mkdir -p "$OUT/obj"
for f in llhttp api http; do
  "$CC" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -w -I"$LLHTTP_INC" -c "$LLHTTP_SRC/$f.c" -o "$OUT/obj/llhttp_$f.o"
done
# The parsers' sources only (the rest of net/http, the server and client, needs the runtime).
SRCS=(net/http/chunked_decoder.cc net/http/fields.cc net/http/parse_error.cc
      net/http/request_parser.cc net/http/response_parser.cc)
"$CXX" -std=c++20 "${FLAGS[@]}" -fsanitize=fuzzer -Wall -Wextra -Wno-unused-parameter -Werror \
  -I. -I"$LLHTTP_INC" net/http/fuzz/request_fuzzer.cc "${SRCS[@]}" mem/log.cc "$OUT"/obj/llhttp_*.o \
  -o "$OUT/request_fuzzer"

fuzz_run request_fuzzer 4096 net/http/fuzz/http.dict "an llhttp mismatch" net/http/fuzz/corpus/request
