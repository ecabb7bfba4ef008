// net/http/http_metrics.cc — the HTTP server's series, by name.
#include "net/http/http_metrics.h"

#include <string>

namespace mnv::http {

HttpMetrics HttpMetrics::add_to(metrics::Registry& r) {
  static constexpr const char* kMethodNames[kMethods] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                         "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"};
  static_assert(static_cast<int>(Method::kPatch) == 8 && static_cast<int>(Method::kOther) == 9);
  HttpMetrics m;
  for (int i = 0; i < kMethods; ++i) {
    for (int c = 0; c < kClasses; ++c) {
      m.requests[i][c] = r.counter("mnv_http_requests", "HTTP requests answered, by method and status class.",
                                   {{"method", kMethodNames[i]}, {"status", std::to_string(c + 1) + "xx"}});
    }
  }
  m.latency = r.histogram("mnv_http_request_duration_seconds",
                          "HTTP requests, from the loop's wake-up that brought the head to the response buffered.");
  for (int i = 0; i < kBadKinds; ++i) {
    m.bad[i] = r.counter("mnv_http_bad_requests", "HTTP requests refused as bad input, by the status they got.",
                         {{"status", i < kBadKinds - 1 ? std::to_string(kBadStatuses[i]) : std::string("other")}});
  }
  return m;
}

}  // namespace mnv::http
