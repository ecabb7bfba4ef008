#!/usr/bin/env bash
# tools/fuzz_rtb.sh — builds the bid request's libFuzzer target (apps/rtb/fuzz/bid_request_fuzzer.cc:
# HTTP body -> the simdjson parser -> the auction over apps/rtb/campaigns.toml -> the response
# writer) with Debian's clang outside Bazel (-fsanitize=fuzzer,address,undefined), and runs it
# from the hand-written requests (apps/rtb/testdata) for FUZZ_RUNS inputs (default 600000, about
# 30 s here; 0: no count) or FUZZ_SECONDS (default 90), whichever ends first, from FUZZ_SEED
# (default 1; 0 picks one) — a fixed count from a fresh corpus, as tools/fuzz_http.sh does, so
# every machine explores about the same inputs.
# Exits non-zero on any crash, sanitizer report or broken check (the input is kept in $FUZZ_OUT,
# default /tmp/mnv-fuzz-rtb). Needs clang-14, libclang-rt-14-dev, libsimdjson-dev,
# libtomlplusplus-dev.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_TO_RUN="${FUZZ_SECONDS:-90}"
RUNS="${FUZZ_RUNS:-600000}"
[ "$RUNS" -eq 0 ] && RUNS=-1  # (libFuzzer's "no limit")
OUT="${FUZZ_OUT:-/tmp/mnv-fuzz-rtb}"
CXX="${FUZZ_CXX:-clang++-14}"

command -v "$CXX" >/dev/null || { echo "fuzz_rtb: $CXX not found: run tools/mnv setup (clang-14)" >&2; exit 1; }
for h in simdjson.h toml++/toml.h; do
  [ -f "/usr/include/$h" ] || { echo "fuzz_rtb: /usr/include/$h not found: run tools/mnv setup" >&2; exit 1; }
done

rm -rf "$OUT/corpus"  # what an earlier run found would change this one
mkdir -p "$OUT/corpus"
FLAGS=(-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
# The decision core only (pure code: no runtime, no sockets). The defines match Debian's builds of
# the two libraries (as apps/rtb/BUILD.bazel's do).
SRCS=(apps/rtb/money.cc apps/rtb/bid_request_parser.cc apps/rtb/campaigns.cc apps/rtb/campaign_index.cc
      apps/rtb/auction.cc apps/rtb/bid_response_writer.cc)
"$CXX" -std=c++20 "${FLAGS[@]}" -fsanitize=fuzzer -Wall -Wextra -Wno-unused-parameter -Werror -I. \
  -DSIMDJSON_THREADS_ENABLED=1 -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 -DTOML_EXCEPTIONS=1 \
  apps/rtb/fuzz/bid_request_fuzzer.cc "${SRCS[@]}" $(pkg-config --libs simdjson tomlplusplus) \
  -o "$OUT/bid_request_fuzzer"

# New inputs go to $OUT/corpus (the checked-in seeds stay as they are); crashes to $OUT/.
rc=0
"$OUT/bid_request_fuzzer" -seed="${FUZZ_SEED:-1}" -runs="$RUNS" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 \
  -timeout=10 -rss_limit_mb=2048 -dict=apps/rtb/fuzz/rtb.dict -artifact_prefix="$OUT/" -print_final_stats=1 \
  "$OUT/corpus" apps/rtb/testdata >"$OUT/log" 2>&1 || rc=$?
tail -n 12 "$OUT/log" | grep -E 'stat::number_of_executed_units|stat::new_units_added' >&2 || true
if [ "$rc" -ne 0 ]; then
  grep -A 40 -E 'BROKEN|ERROR: (Address|Undefined|libFuzzer)|runtime error' "$OUT/log" | grep -vE '^ +#[0-9]+ .*(libc|fuzzer::|_start)' | head -60 >&2
  echo "fuzz_rtb: FAILED (exit $rc); input saved under $OUT/ (crash-*); full log $OUT/log" >&2
  exit 1
fi
units=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/log" | grep -o '[0-9]*$' || echo '?')
echo "fuzz_rtb: $units inputs (seed ${FUZZ_SEED:-1}) without a crash or a broken check" >&2
