#!/usr/bin/env bash
# tools/plot_latency_check.sh — tools/plot_latency.sh makes real PNGs (a check in tools/mnv
# test): from a small synthetic http_load --out directory (two steps, their per-second timeline
# and percentile spectra) and a peer's spectrum it draws the over-time plot, the per-step
# spectrum and an ours-vs-peer spectrum, and each must be a PNG of 1000x600 pixels with more
# than a blank image's bytes. A missing gnuplot fails it, naming the package.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'plot_latency_check: %s\n' "$*" >&2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/steps.csv" <<'CSV'
step,target_rate,achieved_rate,valid,sent
1,1000.0,999.9,1,3000
2,2000.0,1999.8,1,6000
CSV
{
  echo "step,target_rate,t_s,run_t_s,sent,responses,timeouts,errors,p50_ms,p90_ms,p99_ms,p999_ms,max_ms"
  for s in 1 2; do
    for t in 1 2 3; do
      echo "$s,$((s * 1000)).0,$t.000,$(((s - 1) * 3 + t)).000,$((s * 1000 * t)),$((s * 1000 * t)),0,0,0.$((s + t)),1.$t,$((s * 3)).$t,$((s * 5)).1,$((s * 9)).0"
    done
  done
} >"$dir/timeline.csv"
for s in 1 2; do
  awk -v s="$s" 'BEGIN { print "percentile,value_ms,one_over_one_minus_p";
    for (k = 0; k < 40; k++) { p = 1 - 0.5 ^ (k / 4); printf "%.6f,%.6f,%.3f\n", p * 100, 0.1 * s * exp(k / 8), 1 / (1 - p) } }' >"$dir/spectrum_$s.csv"
done
tools/plot_latency.sh run "$dir" "check"
tools/plot_latency.sh spectrum "$dir/peer.png" "ours and a peer" "$dir/spectrum_1.csv" ours "$dir/spectrum_2.csv" peer
for png in latency_over_time.png latency_spectrum.png peer.png; do
  f="$dir/$png"
  [ -s "$f" ] || { say "$png was not written"; exit 1; }
  [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { say "$png is not a PNG"; exit 1; }
  size=$(od -An -tu1 -j16 -N8 "$f" | awk '{ printf "%dx%d", $3 * 256 + $4, $7 * 256 + $8 }')
  [ "$size" = 1000x600 ] || { say "$png is $size, not 1000x600"; exit 1; }
  [ "$(stat -c %s "$f")" -gt 15000 ] || { say "$png is too small to hold the plot ($(stat -c %s "$f") bytes)"; exit 1; }
done
echo "plot_latency_check: 3 PNGs of 1000x600"
