// net/http/http_metrics.h — what the HTTP server counts into its shard's metric cells
// (Kernel::metrics()): requests by method and status class, their latency (from the loop's
// wake-up that brought the head's last bytes — the kernel's now_ns(), so a request that waited
// behind others in that turn counts its wait — to the response's last byte buffered), and
// requests refused as bad input by status.
// Set Site::metrics to count; null counts nothing.
#pragma once

#include <cstdint>

#include "metrics/registry.h"
#include "net/http/request_parser.h"

namespace mnv::http {

struct HttpMetrics {
  static constexpr int kMethods = static_cast<int>(Method::kOther) + 1;
  static constexpr int kClasses = 5;  // 1xx .. 5xx
  // The statuses bad input earns (net/http/server.h), and "other".
  static constexpr int kBadStatuses[] = {400, 413, 414, 431, 501, 505};
  static constexpr int kBadKinds = sizeof kBadStatuses / sizeof kBadStatuses[0] + 1;

  // Requests whose head parsed, by method and by the class of the status they were answered with.
  metrics::Counter requests[kMethods][kClasses];
  metrics::Histogram latency;
  // Requests refused for bad input (a head or body the server cannot take), by status.
  metrics::Counter bad[kBadKinds];

  metrics::Counter request(Method m, int status) const {
    int c = status / 100 - 1;
    return requests[static_cast<int>(m)][c < 0 ? 0 : (c >= kClasses ? kClasses - 1 : c)];
  }
  metrics::Counter bad_request(int status) const {
    for (int i = 0; i < kBadKinds - 1; ++i) {
      if (kBadStatuses[i] == status) return bad[i];
    }
    return bad[kBadKinds - 1];
  }

  // Registers every series (before the registry is placed).
  static HttpMetrics add_to(metrics::Registry& registry);
};

}  // namespace mnv::http
