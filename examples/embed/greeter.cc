// examples/embed/greeter.cc — a service built outside mnvkd's workspace, on its public targets:
// every line a client sends is answered with "hello, <line>". Prints "listening on HOST:PORT"
// (port 0: a free one, or argv[1]); SIGTERM or SIGINT ends it gracefully, with exit status 0.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "net/io.h"
#include "net/service.h"
#include "runtime/kernel.h"

namespace {

mnv::Task<> greet(mnv::Accepted&) {
  char line[256];
  while (std::size_t n = co_await mnv::readline(line, sizeof line)) {
    co_await mnv::write("hello, ", 7);
    co_await mnv::write(line, n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  mnv::Kernel::install_signal_handlers();
  auto kernel = mnv::Kernel::create(mnv::KernelConfig{});
  if (kernel == nullptr) return 1;  // (it said why)
  mnv::ServerConfig config;
  config.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 0);
  config.handler = greet;
  std::string error;
  auto server = mnv::Server::listen(*kernel, config, &error);
  if (server == nullptr) {
    std::fprintf(stderr, "greeter: %s\n", error.c_str());
    return 1;
  }
  std::printf("listening on %s:%u\n", config.host.c_str(), server->port());
  std::fflush(stdout);
  return kernel->run();
}
