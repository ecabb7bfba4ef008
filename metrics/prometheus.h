// metrics/prometheus.h — a registry in the Prometheus text exposition format, version 0.0.4.
//
// Every series is exported once per shard, with a `shard` label after its own labels (sum in
// PromQL: `sum without (shard) (...)`). Counters carry their `_total` suffix; gauges are signed
// integers. A latency histogram's 1,486 fine buckets are far too many for Prometheus, so it is
// exported on a fixed, reduced set of `le` bounds: 1-2-5 steps from 1 µs to 10 s (22 bounds, in
// seconds) and +Inf, cumulative as Prometheus wants; `_sum` (seconds) and `_count`. A bucket
// `le="x"` counts the fine buckets lying wholly at or below x: it never counts a value above x,
// and may miss values within 1.6% below x (the one fine bucket that straddles x). `_count` equals
// the +Inf bucket: both come from one read of the shard's cells.
//
// A scrape only loads the cells (relaxed): it never blocks or slows a writing shard. It appends
// to a caller's string (allocating as it grows: scrapes are not the hot path).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/registry.h"

namespace mnv::metrics {

// The Content-Type of the exposition, for an HTTP response.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// The `le` bounds a histogram is exported on, in nanoseconds (without +Inf).
inline constexpr std::uint64_t kPrometheusBoundsNs[] = {
    1'000,         2'000,         5'000,         10'000,        20'000,         50'000,
    100'000,       200'000,       500'000,       1'000'000,     2'000'000,      5'000'000,
    10'000'000,    20'000'000,    50'000'000,    100'000'000,   200'000'000,    500'000'000,
    1'000'000'000, 2'000'000'000, 5'000'000'000, 10'000'000'000,
};

// Appends the exposition of every registered series to *out.
void append_prometheus(const Registry& registry, std::string* out);

// Formats, as the exposition does (exposed for tests and other exporters):
// nanoseconds as decimal seconds, exact ("0.000001", "1.5", "10");
void append_seconds(std::uint64_t ns, std::string* out);
// a label value with \, " and newline escaped;
void append_label_value(std::string_view value, std::string* out);
// help text with \ and newline escaped.
void append_help_text(std::string_view help, std::string* out);

}  // namespace mnv::metrics
