#!/usr/bin/env bash
# tools/fuzz_resp.sh — builds the RESP reply parser's libFuzzer target (redis/fuzz/reply_fuzzer.cc)
# with Debian's clang outside Bazel (-fsanitize=fuzzer,address,undefined) and runs it over the
# checked-in seed corpus and then for FUZZ_RUNS inputs (default 600000, about 30 s here) or
# FUZZ_SECONDS (default 90), whichever ends first (the settings: tools/fuzz_lib.sh).
# Exits non-zero on any crash, sanitizer report or disagreement between the ways of feeding the
# bytes (the input is kept in $FUZZ_OUT, default /tmp/mnv-fuzz-resp). Needs clang-14 and
# libclang-rt-14-dev.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fuzz_lib.sh"
fuzz_setup resp 600000 90

# The parser's sources only (the writer and the client need the runtime).
"$CXX" -std=c++20 "${FLAGS[@]}" -fsanitize=fuzzer -Wall -Wextra -Werror -I. \
  redis/fuzz/reply_fuzzer.cc redis/reply_parser.cc redis/reply.cc mem/log.cc -o "$OUT/reply_fuzzer"

fuzz_run reply_fuzzer 2048 redis/fuzz/resp.dict "a disagreement" redis/fuzz/corpus
