#!/usr/bin/env bash
# tools/plot_latency.sh — PNG plots of perf/http_load's results with gnuplot (Debian gnuplot-nox).
#
#   tools/plot_latency.sh spectrum OUT.png TITLE CSV LABEL [CSV LABEL ...]
#       the latency distribution as a percentile spectrum: x = percentile on a log scale of
#       1/(1-p) (50%, 90%, 99%, 99.9%, ...), y = latency in ms (log); one line per CSV, each a
#       "percentile,value_ms,one_over_one_minus_p" file (http_load --out's spectrum_<k>.csv, or
#       wrk's through perf/wrk/spectrum.lua) — ours and a peer on one chart.
#   tools/plot_latency.sh timeline OUT.png TITLE TIMELINE_CSV
#       latency percentiles over time (p50, p90, p99, p99.9, max of each second, from the
#       intended send time; log y) and the answered rate (right axis), from http_load --out's
#       timeline.csv; step boundaries as vertical lines.
#   tools/plot_latency.sh run DIR [TITLE]
#       both for an `http_load --out=DIR` run: DIR/latency_over_time.png and
#       DIR/latency_spectrum.png (one line per step, labelled with its offered rate).
set -euo pipefail
say() { printf 'plot_latency: %s\n' "$*" >&2; }
command -v gnuplot >/dev/null || { say "gnuplot is not installed (Debian package gnuplot-nox; tools/mnv setup)"; exit 1; }

spectrum() {
  local out=$1 title=$2; shift 2
  [ $# -ge 2 ] && [ $(($# % 2)) -eq 0 ] || { say "spectrum: give CSV LABEL pairs"; exit 2; }
  local plots="" sep=""
  while [ $# -gt 0 ]; do
    [ -s "$1" ] || { say "spectrum: $1 is missing or empty"; exit 1; }
    plots+="$sep'$1' using 3:(\$2 > 0 ? \$2 : 1e-3) with linespoints pt 7 ps 0.4 lw 2 title '$2'"
    sep=", "
    shift 2
  done
  gnuplot <<GP
set terminal pngcairo size 1000,600 font "sans,10" noenhanced
set output '$out'
set datafile separator ','
set title "$title"
set logscale x 10
set logscale y 10
set xlabel 'percentile'
set ylabel 'latency (ms)'
set xtics ("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000, "99.9999%%" 1000000)
set grid xtics ytics mytics
set key top left
plot $plots
GP
}

timeline() {
  local out=$1 title=$2 csv=$3
  [ -s "$csv" ] || { say "timeline: $csv is missing or empty"; exit 1; }
  # The answered rate per second, from the cumulative counts (within a step).
  local rate="$csv.rate"
  awk -F, 'NR > 1 { if ($1 != s) { s = $1; pr = 0; pt = 0 } dt = $3 - pt; if (dt > 0.05) print $4 "," ($6 - pr) / dt; pr = $6; pt = $3 }' "$csv" >"$rate"
  local bounds
  bounds=$(awk -F, 'NR > 1 && $1 != s { s = $1; if (NR > 2) printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb \"gray\"\n", prev, prev } { prev = $4 }' "$csv")
  gnuplot <<GP
set terminal pngcairo size 1000,600 font "sans,10" noenhanced
set output '$out'
set datafile separator ','
set title "$title"
set logscale y 10
set xlabel 'time (s)'
set ylabel 'latency from intended send (ms)'
set y2label 'answered per second'
set y2tics
set y2range [0:*]
set ytics nomirror
set grid
set key top left
$bounds
plot '$csv' every ::1 using 4:(\$9 > 0 ? \$9 : 1e-3) with lines lw 2 title 'p50', \
     '' every ::1 using 4:(\$10 > 0 ? \$10 : 1e-3) with lines lw 2 title 'p90', \
     '' every ::1 using 4:(\$11 > 0 ? \$11 : 1e-3) with lines lw 2 title 'p99', \
     '' every ::1 using 4:(\$12 > 0 ? \$12 : 1e-3) with lines lw 2 title 'p99.9', \
     '' every ::1 using 4:(\$13 > 0 ? \$13 : 1e-3) with lines lw 1 lc rgb 'gray40' title 'max', \
     '$rate' using 1:2 axes x1y2 with lines lw 1 lc rgb 'black' title 'answered/s (right)'
GP
  rm -f "$rate"
}

run() {
  local dir=$1 title=${2:-http_load}
  [ -s "$dir/steps.csv" ] || { say "run: $dir/steps.csv is missing (http_load --out=$dir)"; exit 1; }
  timeline "$dir/latency_over_time.png" "$title: latency percentiles over time" "$dir/timeline.csv"
  local args=() step rate
  while IFS=, read -r step rate _; do
    [ "$step" = step ] && continue
    [ -s "$dir/spectrum_$step.csv" ] && args+=("$dir/spectrum_$step.csv" "$(printf '%.0f/s' "$rate")")
  done <"$dir/steps.csv"
  spectrum "$dir/latency_spectrum.png" "$title: latency distribution per step" "${args[@]}"
}

case "${1:-}" in
  spectrum) shift; spectrum "$@" ;;
  timeline) shift; timeline "$@" ;;
  run) shift; run "$@" ;;
  *) say "usage: tools/plot_latency.sh spectrum|timeline|run ... (see the header)"; exit 2 ;;
esac
