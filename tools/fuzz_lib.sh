# tools/fuzz_lib.sh — what the libFuzzer scripts (tools/fuzz_http.sh, fuzz_resp.sh, fuzz_rtb.sh)
# share, sourced by each: the settings read from the environment, the sanitizer flags, and one
# bounded run with its report. Each script keeps what is its own: the sources it builds, its seed
# corpus, its dictionary and what its target checks.
#
# Environment (each script gives its own defaults for the first two):
#   FUZZ_RUNS     inputs to run (0: no count)      FUZZ_SECONDS  a time limit as well
#   FUZZ_SEED     libFuzzer's seed [1] (0 picks one)
#   FUZZ_OUT      where the build, the log, new inputs and crashes go [/tmp/mnv-fuzz-<name>]
#   FUZZ_CXX      [clang++-14]
# A fixed seed and input count, from the checked-in corpus alone, keep a run nearly the same on
# every machine, where a time limit alone made a fast machine explore further than a slow one.

# fuzz_setup NAME DEFAULT_RUNS DEFAULT_SECONDS: sets FUZZ_NAME, RUNS, SECONDS_TO_RUN, OUT, CXX and
# FLAGS; goes to the repository root; starts from an empty $OUT/corpus.
fuzz_setup() {
  FUZZ_NAME=$1
  RUNS="${FUZZ_RUNS:-$2}"
  SECONDS_TO_RUN="${FUZZ_SECONDS:-$3}"
  [ "$RUNS" -eq 0 ] && RUNS=-1  # (libFuzzer's "no limit")
  OUT="${FUZZ_OUT:-/tmp/mnv-fuzz-$FUZZ_NAME}"
  CXX="${FUZZ_CXX:-clang++-14}"
  FLAGS=(-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  fuzz_need_tool "$CXX" "clang-14"
  rm -rf "$OUT/corpus"  # what an earlier run found would change this one
  mkdir -p "$OUT/corpus"
}

# fuzz_need_tool TOOL PACKAGE: exits with what to do when TOOL is not on the PATH.
fuzz_need_tool() {
  command -v "$1" >/dev/null || { echo "fuzz_$FUZZ_NAME: $1 not found: run tools/mnv setup ($2)" >&2; exit 1; }
}

# fuzz_need_file PATH PACKAGE: exits with what to do when PATH is missing.
fuzz_need_file() {
  [ -f "$1" ] || { echo "fuzz_$FUZZ_NAME: $1 not found: run tools/mnv setup ($2)" >&2; exit 1; }
}

# fuzz_run TARGET MAX_LEN DICT CHECKS SEEDS...: runs the built target $OUT/TARGET over SEEDS (new
# inputs go to $OUT/corpus, the checked-in seeds stay as they are; crashes to $OUT/). On any crash,
# sanitizer report or failed check (the target prints MISMATCH or BROKEN) it shows the report and
# exits 1; else it says how many inputs ran without "a crash or CHECKS".
fuzz_run() {
  local target=$1 max_len=$2 dict=$3 checks=$4
  shift 4
  local rc=0
  "$OUT/$target" -seed="${FUZZ_SEED:-1}" -runs="$RUNS" -max_total_time="$SECONDS_TO_RUN" -max_len="$max_len" \
    -timeout=10 -rss_limit_mb=2048 -dict="$dict" -artifact_prefix="$OUT/" -print_final_stats=1 \
    "$OUT/corpus" "$@" >"$OUT/log" 2>&1 || rc=$?
  tail -n 12 "$OUT/log" | grep -E 'stat::number_of_executed_units|stat::new_units_added' >&2 || true
  if [ "$rc" -ne 0 ]; then
    grep -A 40 -E 'MISMATCH|BROKEN|ERROR: (Address|Undefined|libFuzzer)|runtime error' "$OUT/log" |
      grep -vE '^ +#[0-9]+ .*(libc|fuzzer::|_start)' | head -60 >&2
    echo "fuzz_$FUZZ_NAME: FAILED (exit $rc); input saved under $OUT/ (crash-*); full log $OUT/log" >&2
    exit 1
  fi
  local units
  units=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz_$FUZZ_NAME: $units inputs (seed ${FUZZ_SEED:-1}) without a crash or $checks" >&2
}
