// shard/admin_listener.cc — the admin listener's thread and kernel (shard/admin_listener.h).
#include "shard/admin_listener.h"

#include <pthread.h>

#include <future>

#include "runtime/trap.h"
#include "shard/metrics_page.h"

namespace mnv {

std::unique_ptr<AdminListener> AdminListener::start(const std::string& host, std::uint16_t port, PollerKind poller,
                                                    std::string* error) {
  std::unique_ptr<AdminListener> a(new AdminListener());
  a->site_.router.add(http::Method::kGet, "/metrics", metrics_page);
  a->site_.options.server_name = "mnv-admin";
  std::promise<std::string> started;
  std::future<std::string> result = started.get_future();
  a->thread_ = std::thread([self = a.get(), host, port, poller, started = std::move(started)]() mutable {
    ::pthread_setname_np(::pthread_self(), "admin");
    install_trap_handlers();  // (this thread's alternate signal stack)
    KernelConfig kc;
    kc.poller = poller;
    kc.max_fds = 1024;
    kc.max_processes = 64;
    kc.grace_ns = 100'000'000;
    self->kernel_ = Kernel::create(kc);
    if (self->kernel_ == nullptr) {
      started.set_value("admin listener: its kernel could not be created");
      return;
    }
    ServerConfig c;
    c.host = host;
    c.port = port;
    c.handler = http::serve;
    c.message = &self->site_;
    c.pool_size = 16;  // scrapers at once
    c.heap_pages = 8;
    c.idle_timeout_ns = 10'000'000'000;
    std::string why;
    self->server_ = Server::listen(*self->kernel_, c, &why);
    if (self->server_ == nullptr) {
      started.set_value("admin listener on " + host + ":" + std::to_string(port) + ": " + why);
      return;
    }
    self->port_ = self->server_->port();
    started.set_value("");
    self->kernel_->run();
    self->server_.reset();
  });
  *error = result.get();
  if (!error->empty()) {
    a->thread_.join();
    return nullptr;
  }
  return a;
}

AdminListener::~AdminListener() {
  if (!thread_.joinable()) return;
  kernel_->request_stop();
  thread_.join();
}

}  // namespace mnv
