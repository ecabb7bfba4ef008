// apps/echo — the seed's echo service on the mnvkd runtime, one shard per chosen core.
//
//   bazel run //apps/echo -- --port=8080 --shards=2 --poller=epoll
//   bazel run //apps/echo -- --config=shard/sample_affinity.toml
//   bazel run //apps/echo -- --help            (every knob, with its default)
//
// Everything but echo itself is the server skeleton's (shard/server.h): flags and config file,
// the "listening on HOST:PORT" line, shards, balancing, SIGTERM/SIGINT/SIGHUP and exit codes.
// Echo adds one table to the config:
//
//   [echo]
//   fault_injection = false   # chaos testing: lines !segv, !fpe, !oom, !hang (echo_service.h)
#include <cstdio>
#include <string>

#include "apps/echo/echo_service.h"
#include "shard/server.h"

int main(int argc, char** argv) {
  mnv::Service echo;
  echo.name = "echo";
  echo.about = "the seed's echo service: each line is answered with \"Line N: <line>\"";
  echo.handler = mnv::echo::serve;
  echo.add_knobs = [](mnv::Config& config) {
    config.add_bool("echo", "fault_injection", false,
                    "chaos testing: a line !segv, !fpe or !oom makes that connection's handler fault, !hang makes "
                    "it spin until max_run_ms traps it");
  };
  echo.configure = [](const mnv::Config& config, std::string*) {
    mnv::echo::g_fault_injection = config.boolean("fault_injection");
    if (mnv::echo::g_fault_injection) std::fprintf(stderr, "echo: fault injection on\n");
    return true;
  };
  return mnv::run_server(argc, argv, echo);
}
