// perf/http_load_common.cc — what both loops share (http_load_common.h).
#include "perf/http_load_common.h"

#include <string_view>

#include "net/service.h"

namespace mnv::perf::detail {

void note_failure(HttpLoadResult* result, Conn* conn) {
  ++result->conn_errors;
  if (result->first_error.empty()) {
    char buf[400];
    if (conn->client != nullptr) {
      result->first_error = conn->client->explain(error(), buf, sizeof buf);
    } else {
      result->first_error = error().describe(buf, sizeof buf);
    }
  }
}

Finally failed(HttpLoadResult* result, Conn* conn) {
  note_failure(result, conn);
  co_return;
}

http::ClientOptions client_options(const HttpLoadOptions& opt, std::span<char> scratch) {
  http::ClientOptions co;
  co.host = opt.host_header;
  co.connect_timeout_ns = static_cast<std::int64_t>(opt.timeout_s * 1e9);
  co.response_timeout_ns = co.connect_timeout_ns;
  co.scratch = scratch;
  return co;
}

bool status_ok(const HttpLoadOptions& opt, int status) {
  if (opt.ok_statuses.empty()) return status == opt.expect_status;
  for (int s : opt.ok_statuses) {
    if (s == status) return true;
  }
  return false;
}

// Counts a response's status and body against the options.
void check(const HttpLoadOptions& opt, const http::Response& r, const char* body, HttpLoadResult* res) {
  if (r.status >= 0 && r.status < static_cast<int>(res->status_counts.size())) {
    ++res->status_counts[static_cast<std::size_t>(r.status)];
  }
  if (!status_ok(opt, r.status)) ++res->bad_status;
  const std::string_view expect = opt.expect_body;
  if (!expect.empty() && (r.body_size != expect.size() || std::string_view(body, r.body_copied) != expect)) {
    ++res->bad_body;
  }
}

void fill_latency(const metrics::LatencyHistogram& h, HttpLoadResult* res) {
  res->p50_ns = h.percentile(50);
  res->p90_ns = h.percentile(90);
  res->p99_ns = h.percentile(99);
  res->p999_ns = h.percentile(99.9);
  res->max_ns = h.max();
  res->mean_ns = h.mean();
}

// Checks the options both loops share; false (with the error in *res) when they are bad.
bool check_options(const HttpLoadOptions& opt, sockaddr_storage* addr, socklen_t* len, HttpLoadResult* res) {
  if (opt.depth < 1 || opt.depth > static_cast<int>(http::Client::kMaxOutstanding) || opt.connections < 1) {
    res->first_error = "--depth must be 1..256 and --conns at least 1";
    ++res->conn_errors;
    return false;
  }
  if (!make_address(opt.host, static_cast<std::uint16_t>(opt.port), addr, len)) {
    res->first_error = "--host '" + opt.host + "' is not a numeric IPv4/IPv6 address";
    ++res->conn_errors;
    return false;
  }
  return true;
}

}  // namespace mnv::perf::detail
