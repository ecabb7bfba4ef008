// examples/embed/greeter.cc — a service built outside mnvkd's workspace, on its public targets:
// every line a client sends is answered with "<greeting>, <line>". The server skeleton
// (shard/server.h) gives it every knob (--help), "listening on HOST:PORT", the shards, signals
// (SIGTERM: a graceful stop, exit 0) and exit codes; greeter adds one knob, [greeter] greeting.
#include <string>
#include <string_view>

#include "net/io.h"
#include "shard/server.h"

namespace {

std::string g_greeting;  // set before any shard starts, then only read

mnv::Task<> greet(mnv::Accepted&) {
  char line[256];
  while (std::size_t n = co_await mnv::readline(line, sizeof line)) {
    co_await mnv::write(g_greeting.data(), g_greeting.size());
    co_await mnv::write(", ", 2);
    co_await mnv::write(line, n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  mnv::Service greeter;
  greeter.name = "greeter";
  greeter.about = "answers each line with \"<greeting>, <line>\"";
  greeter.handler = greet;
  greeter.add_knobs = [](mnv::Config& config) {
    config.add_text("greeter", "greeting", "hello", "a non-empty string",
                    [](std::string_view value, std::string*) { return !value.empty(); },
                    "what each line is answered with, before the line");
  };
  greeter.configure = [](const mnv::Config& config, std::string*) {
    g_greeting = config.text("greeting");
    return true;
  };
  return mnv::run_server(argc, argv, greeter);
}
