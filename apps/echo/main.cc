// apps/echo — the seed's echo service on the mnvkd runtime.
//
//   bazel run //apps/echo -- --port=8080 --poller=epoll
//
// The first line on stdout is "listening on HOST:PORT" with the bound port (--port=0 picks a
// free one), so scripts and tests can find it. SIGTERM/SIGINT stop it cleanly (exit 0).
#include <sys/resource.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "apps/echo/echo_service.h"
#include "net/service.h"
#include "runtime/kernel.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on (numeric IPv4 or IPv6)");
ABSL_FLAG(int, port, 0, "port to listen on; 0 picks a free one");
ABSL_FLAG(std::string, poller, "io_uring", "io_uring, epoll or poll");
ABSL_FLAG(int, heap_pages, 8, "page budget of each connection's micro-heap");
ABSL_FLAG(int, pool_size, 16384, "connections served at once");
ABSL_FLAG(int, grace_ms, 2000, "on SIGTERM, time in-flight connections get to finish");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("the seed's echo service: each line is answered with \"Line N: <line>\"");
  absl::ParseCommandLine(argc, argv);

  mnv::KernelConfig kc;
  if (!mnv::parse_poller(absl::GetFlag(FLAGS_poller).c_str(), &kc.poller)) {
    std::fprintf(stderr, "echo: --poller=%s: must be io_uring, epoll or poll\n", absl::GetFlag(FLAGS_poller).c_str());
    return 2;
  }
  int port = absl::GetFlag(FLAGS_port);
  int heap_pages = absl::GetFlag(FLAGS_heap_pages);
  int pool_size = absl::GetFlag(FLAGS_pool_size);
  if (port < 0 || port > 65535 || heap_pages < 1 || pool_size < 1) {
    std::fprintf(stderr, "echo: --port must be 0..65535, --heap_pages and --pool_size at least 1\n");
    return 2;
  }
  // Serve as many connections as the hard limit on open files allows.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  kc.max_fds = nofile.rlim_cur > 1'048'576 ? 1'048'576 : (nofile.rlim_cur < 1024 ? 1024 : nofile.rlim_cur);
  kc.grace_ns = static_cast<std::int64_t>(absl::GetFlag(FLAGS_grace_ms)) * 1'000'000;
  kc.max_processes = static_cast<std::size_t>(pool_size) + 16;
  auto kernel = mnv::Kernel::create(kc);
  if (kernel == nullptr) return 1;

  mnv::ServerConfig sc;
  sc.host = absl::GetFlag(FLAGS_host);
  sc.port = static_cast<std::uint16_t>(port);
  sc.handler = mnv::echo::serve;
  sc.heap_pages = static_cast<std::size_t>(heap_pages);
  sc.pool_size = static_cast<std::size_t>(pool_size);
  std::string error;
  auto server = mnv::Server::listen(*kernel, sc, &error);
  if (server == nullptr) {
    std::fprintf(stderr, "echo: %s\n", error.c_str());
    return 1;
  }
  std::printf("listening on %s:%u\n", sc.host.c_str(), server->port());
  std::fflush(stdout);
  std::fprintf(stderr, "echo: poller %s, %d heap pages per connection, up to %d connections\n",
               mnv::poller_name(kernel->poller_kind()), heap_pages, pool_size);
  mnv::Kernel::install_signal_handlers();
  return kernel->run();
}
