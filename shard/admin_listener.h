// shard/admin_listener.h — the admin listener: GET /metrics (shard/metrics_page.h) served by our
// HTTP server, on a kernel of its own in a thread beside the shards (not pinned, asleep between
// scrapes).
//
// Why a thread of its own: rendering a scrape reads every shard's cells and formats them (tens
// of µs to a few ms with many series), and no shard should hold its connections for that. Here
// a scrape only loads the cells (relaxed): the shards never wait for it, and it never waits for
// them (tests/metrics_server_test.cc holds a shard in a handler and still gets its page). With
// shards as processes it runs in the process that started them, which maps the same cells.
//
// run_server() starts one when admin_port is not -1 (shard/server.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "net/http/server.h"
#include "runtime/kernel.h"

namespace mnv {

class AdminListener {
 public:
  // Binds host:port (0: a free port) and starts serving; null with *error when it cannot.
  static std::unique_ptr<AdminListener> start(const std::string& host, std::uint16_t port, PollerKind poller,
                                              std::string* error);
  // Stops its kernel and joins its thread.
  ~AdminListener();
  AdminListener(const AdminListener&) = delete;
  AdminListener& operator=(const AdminListener&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  AdminListener() = default;
  void run();

  http::Site site_;
  std::unique_ptr<Kernel> kernel_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace mnv
