// perf/http_load_report.cc — the step table and the CSV files (http_load_report.h).
#include "perf/http_load_report.h"

#include <cmath>
#include <cstdio>
#include <fstream>

namespace mnv::perf {
namespace {

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

std::uint64_t other_statuses(const HttpLoadResult& r) {
  std::uint64_t n = 0;
  for (std::size_t s = 0; s < r.status_counts.size(); ++s) {
    if (s != 200 && s != 204 && s != 400) n += r.status_counts[s];
  }
  return n;
}

bool write_file(const std::string& path, const std::string& text, std::string* error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.good()) {
    *error = path + ": cannot be written (does the directory exist, is it writable?)";
    return false;
  }
  return true;
}

}  // namespace

std::string step_table(const std::vector<HttpLoadStep>& steps) {
  std::string out =
      "| step | offered/s | achieved/s | answered | 200 | 204 | 400 | other | p50 ms | p90 ms | p99 ms | p99.9 ms | "
      "max ms | timeouts | errors | late sends | max lag ms | valid |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const HttpLoadResult& r = steps[k].result;
    std::snprintf(buf, sizeof buf,
                  "| %zu | %.0f | %.1f | %llu | %llu | %llu | %llu | %llu | %.3f | %.3f | %.3f | %.3f | %.3f | %llu | "
                  "%llu | %llu | %.3f | %s |\n",
                  k + 1, r.target_rate, r.achieved_rate, static_cast<unsigned long long>(r.responses),
                  static_cast<unsigned long long>(r.status_counts[200]),
                  static_cast<unsigned long long>(r.status_counts[204]),
                  static_cast<unsigned long long>(r.status_counts[400]),
                  static_cast<unsigned long long>(other_statuses(r)), ms(r.p50_ns), ms(r.p90_ns), ms(r.p99_ns),
                  ms(r.p999_ns), ms(r.max_ns), static_cast<unsigned long long>(r.timeouts),
                  static_cast<unsigned long long>(r.errors()), static_cast<unsigned long long>(r.late_sends),
                  static_cast<double>(r.max_lag_ns) / 1e6, r.valid ? "yes" : "**NO**");
    out += buf;
  }
  return out;
}

std::string spectrum_csv(const metrics::LatencyHistogram& h) {
  std::string out = "percentile,value_ms,one_over_one_minus_p\n";
  if (h.count() == 0) return out;
  char buf[128];
  const double last = 1.0 - 1.0 / static_cast<double>(h.count());
  for (int k = 0;; ++k) {
    double p = 1.0 - std::pow(0.5, k / 4.0);
    if (p > last) break;
    std::snprintf(buf, sizeof buf, "%.6f,%.6f,%.3f\n", p * 100, ms(h.percentile(p * 100)), 1.0 / (1.0 - p));
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "%.6f,%.6f,%.3f\n", last * 100, ms(h.max()), 1.0 / (1.0 - last));
  out += buf;
  return out;
}

bool write_step_files(const std::string& dir, const std::vector<HttpLoadStep>& steps, std::string* error) {
  std::string s =
      "step,target_rate,achieved_rate,valid,sent,responses,s200,s204,s400,s_other,timeouts,errors,late_sends,"
      "max_lag_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,svc_p50_ms,svc_p99_ms,svc_max_ms,wins_sent,win_errors,conns,bills_sent\n";
  std::string t = "step,target_rate,t_s,run_t_s,sent,responses,timeouts,errors,p50_ms,p90_ms,p99_ms,p999_ms,max_ms\n";
  char buf[768];
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const HttpLoadResult& r = steps[k].result;
    std::snprintf(buf, sizeof buf,
                  "%zu,%.1f,%.3f,%d,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,"
                  "%.6f,%.6f,%llu,%llu,%d,%llu\n",
                  k + 1, r.target_rate, r.achieved_rate, r.valid ? 1 : 0, static_cast<unsigned long long>(r.sent),
                  static_cast<unsigned long long>(r.responses), static_cast<unsigned long long>(r.status_counts[200]),
                  static_cast<unsigned long long>(r.status_counts[204]),
                  static_cast<unsigned long long>(r.status_counts[400]),
                  static_cast<unsigned long long>(other_statuses(r)), static_cast<unsigned long long>(r.timeouts),
                  static_cast<unsigned long long>(r.errors()), static_cast<unsigned long long>(r.late_sends),
                  static_cast<double>(r.max_lag_ns) / 1e6, ms(r.p50_ns), ms(r.p90_ns), ms(r.p99_ns), ms(r.p999_ns),
                  ms(r.max_ns), ms(r.service_p50_ns), ms(r.service_p99_ns), ms(r.service_max_ns),
                  static_cast<unsigned long long>(r.wins_sent), static_cast<unsigned long long>(r.win_errors),
                  r.connections_used, static_cast<unsigned long long>(r.bills_sent));
    s += buf;
    for (const HttpLoadTick& tk : r.ticks) {
      std::snprintf(buf, sizeof buf, "%zu,%.1f,%.3f,%.3f,%llu,%llu,%llu,%llu,%.6f,%.6f,%.6f,%.6f,%.6f\n", k + 1,
                    r.target_rate, tk.t_s, steps[k].start_s + tk.t_s, static_cast<unsigned long long>(tk.sent),
                    static_cast<unsigned long long>(tk.responses), static_cast<unsigned long long>(tk.timeouts),
                    static_cast<unsigned long long>(tk.errors), ms(tk.p50_ns), ms(tk.p90_ns), ms(tk.p99_ns),
                    ms(tk.p999_ns), ms(tk.max_ns));
      t += buf;
    }
    if (r.latency != nullptr) {
      if (!write_file(dir + "/spectrum_" + std::to_string(k + 1) + ".csv", spectrum_csv(*r.latency), error)) {
        return false;
      }
    }
    if (r.service != nullptr) {
      if (!write_file(dir + "/service_spectrum_" + std::to_string(k + 1) + ".csv", spectrum_csv(*r.service), error)) {
        return false;
      }
    }
  }
  return write_file(dir + "/steps.csv", s, error) && write_file(dir + "/timeline.csv", t, error);
}

}  // namespace mnv::perf
