#!/usr/bin/env bash
# tools/fuzz_rtb.sh — builds the bid request's libFuzzer target (apps/rtb/fuzz/bid_request_fuzzer.cc:
# HTTP body -> the simdjson parser -> the auction over apps/rtb/campaigns.toml -> the response
# writer) with Debian's clang outside Bazel (-fsanitize=fuzzer,address,undefined), and runs it
# from the hand-written requests (apps/rtb/testdata) for FUZZ_RUNS inputs (default 600000, about
# 30 s here) or FUZZ_SECONDS (default 90), whichever ends first (the settings: tools/fuzz_lib.sh).
# Exits non-zero on any crash, sanitizer report or broken check (the input is kept in $FUZZ_OUT,
# default /tmp/mnv-fuzz-rtb). Needs clang-14, libclang-rt-14-dev, libsimdjson-dev,
# libtomlplusplus-dev.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fuzz_lib.sh"
fuzz_setup rtb 600000 90
for h in simdjson.h toml++/toml.h; do fuzz_need_file "/usr/include/$h" "libsimdjson-dev, libtomlplusplus-dev"; done

# The decision core only (pure code: no runtime, no sockets). The defines match Debian's builds of
# the two libraries (as apps/rtb/BUILD.bazel's do).
SRCS=(apps/rtb/money.cc apps/rtb/bid_request_parser.cc apps/rtb/campaigns.cc apps/rtb/campaign_index.cc
      apps/rtb/auction.cc apps/rtb/bid_response_writer.cc)
"$CXX" -std=c++20 "${FLAGS[@]}" -fsanitize=fuzzer -Wall -Wextra -Wno-unused-parameter -Werror -I. \
  -DSIMDJSON_THREADS_ENABLED=1 -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 -DTOML_EXCEPTIONS=1 \
  apps/rtb/fuzz/bid_request_fuzzer.cc "${SRCS[@]}" $(pkg-config --libs simdjson tomlplusplus) \
  -o "$OUT/bid_request_fuzzer"

fuzz_run bid_request_fuzzer 4096 apps/rtb/fuzz/rtb.dict "a broken check" apps/rtb/testdata
