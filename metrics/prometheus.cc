// metrics/prometheus.cc — the text exposition: families in registration order, one line per
// series per shard.
#include "metrics/prometheus.h"

#include <charconv>

namespace mnv::metrics {
namespace {

template <typename Int>
void append_int(Int v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// name{l1="v1",...,shard="i"[,le="b"]}
void append_series_name(const Registry::Family& f, const Registry::Series& s, std::string_view suffix, int shard,
                        std::string_view le, std::string* out) {
  out->append(f.name);
  out->append(suffix);
  out->push_back('{');
  for (std::size_t i = 0; i < f.label_names.size(); ++i) {
    out->append(f.label_names[i]);
    out->append("=\"");
    append_label_value(s.label_values[i], out);
    out->append("\",");
  }
  out->append("shard=\"");
  append_int(shard, out);
  out->push_back('"');
  if (!le.empty()) {
    out->append(",le=\"");
    out->append(le);
    out->push_back('"');
  }
  out->append("} ");
}

void append_histogram(const Registry& r, const Registry::Family& f, const Registry::Series& s, int shard,
                      std::string* out) {
  HistogramSnapshot h = r.histogram_at(s.cell, shard);
  constexpr std::size_t kBounds = sizeof kPrometheusBoundsNs / sizeof kPrometheusBoundsNs[0];
  std::uint64_t counts[kBounds];
  h.counts_at_most(kPrometheusBoundsNs, kBounds, counts);
  std::string le;
  for (std::size_t b = 0; b < kBounds; ++b) {
    le.clear();
    append_seconds(kPrometheusBoundsNs[b], &le);
    append_series_name(f, s, "_bucket", shard, le, out);
    append_int(counts[b], out);
    out->push_back('\n');
  }
  append_series_name(f, s, "_bucket", shard, "+Inf", out);
  append_int(h.count(), out);
  out->push_back('\n');
  append_series_name(f, s, "_sum", shard, "", out);
  append_seconds(h.sum_ns(), out);
  out->push_back('\n');
  append_series_name(f, s, "_count", shard, "", out);
  append_int(h.count(), out);
  out->push_back('\n');
}

}  // namespace

void append_seconds(std::uint64_t ns, std::string* out) {
  append_int(ns / 1'000'000'000, out);
  std::uint64_t frac = ns % 1'000'000'000;
  if (frac == 0) return;
  char digits[9];
  for (int i = 8; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  int n = 9;
  while (digits[n - 1] == '0') --n;
  out->push_back('.');
  out->append(digits, static_cast<std::size_t>(n));
}

void append_label_value(std::string_view value, std::string* out) {
  for (char c : value) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

void append_help_text(std::string_view help, std::string* out) {
  for (char c : help) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

void append_prometheus(const Registry& r, std::string* out) {
  for (const Registry::Family& f : r.families()) {
    out->append("# HELP ");
    out->append(f.name);
    out->push_back(' ');
    append_help_text(f.help, out);
    out->append("\n# TYPE ");
    out->append(f.name);
    out->append(f.kind == Kind::kCounter ? " counter\n" : f.kind == Kind::kGauge ? " gauge\n" : " histogram\n");
    for (const Registry::Series& s : f.series) {
      for (int shard = 0; shard < r.shards(); ++shard) {
        if (f.kind == Kind::kHistogram) {
          append_histogram(r, f, s, shard, out);
          continue;
        }
        append_series_name(f, s, "", shard, "", out);
        std::uint64_t v = r.cell_value(s.cell, shard);
        if (f.kind == Kind::kGauge) {
          append_int(static_cast<std::int64_t>(v), out);
        } else {
          append_int(v, out);
        }
        out->push_back('\n');
      }
    }
  }
}

}  // namespace mnv::metrics
