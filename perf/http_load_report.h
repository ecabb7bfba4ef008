// perf/http_load_report.h — what perf/http_load writes about a run of steps: the step table for
// people, and for plotting (tools/plot_latency.sh) steps.csv (one line per step), timeline.csv
// (one line per second: the percentiles over time) and spectrum_<step>.csv (the percentile
// spectrum of the step's latency and service time, HdrHistogram's layout: percentile, value,
// 1/(1-p) for a log x axis).
#pragma once

#include <string>
#include <vector>

#include "perf/http_load_run.h"

namespace mnv::perf {

struct HttpLoadStep {
  HttpLoadResult result;
  double start_s = 0;  // when the step started, seconds after the first step's start
};

// A Markdown table, one row per step: offered and achieved rate, answers per status, percentiles
// (from the intended send time), timeouts, errors, late sends, valid.
std::string step_table(const std::vector<HttpLoadStep>& steps);

// Writes steps.csv, timeline.csv and spectrum_<k>.csv (k = 1..) into `dir` (which must exist).
// False, with the reason in *error, when a file cannot be written.
bool write_step_files(const std::string& dir, const std::vector<HttpLoadStep>& steps, std::string* error);

// The percentile spectrum of `h` as CSV lines "percentile,value_ms,one_over_one_minus_p", from 0
// to the largest value, 4 points per halving of the remaining share.
std::string spectrum_csv(const metrics::LatencyHistogram& h);

}  // namespace mnv::perf
