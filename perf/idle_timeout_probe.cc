// perf/idle_timeout_probe.cc — does a server close connections that send nothing (or next to
// nothing), and serve new clients afterwards? (ServerConfig::idle_timeout_ns, net/service.h.)
//
// Opens --trickle connections that each send one byte (no newline) every --trickle_ms, and
// --silent connections that send nothing, then watches them for up to --max_s seconds: a
// connection counts as closed when the server ends it (EOF or reset). Reports how many were
// closed and when (the first and last close, in seconds since they opened), then opens one new
// connection and checks that an echo line is answered (a server whose pool is full of idle
// connections refuses it).
//
// Output: one human-readable line, then "RESULT mode=idle_timeout key=value ...". Exit status 0
// when every connection was closed and the new client was served, 1 otherwise, 2 on bad flags.
//
// Run: bazel-bin/perf/idle_timeout_probe --port=PORT --trickle=500 --silent=0 --max_s=90
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address (numeric IPv4)");
ABSL_FLAG(int, port, 0, "server port (required)");
ABSL_FLAG(int, trickle, 500, "connections sending one byte every --trickle_ms");
ABSL_FLAG(int, trickle_ms, 2000, "pause between a trickling connection's bytes");
ABSL_FLAG(int, silent, 0, "connections sending nothing");
ABSL_FLAG(double, max_s, 90.0, "how long to wait for the server to close them");

namespace {

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int open_to(const sockaddr_in& a) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int port = absl::GetFlag(FLAGS_port), trickle = absl::GetFlag(FLAGS_trickle),
            silent = absl::GetFlag(FLAGS_silent), trickle_ms = absl::GetFlag(FLAGS_trickle_ms);
  const double max_s = absl::GetFlag(FLAGS_max_s);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (port <= 0 || port > 65535 || trickle < 0 || silent < 0 || trickle + silent == 0 || trickle_ms <= 0 ||
      max_s <= 0 || ::inet_pton(AF_INET, absl::GetFlag(FLAGS_host).c_str(), &a.sin_addr) != 1) {
    fprintf(stderr, "idle_timeout_probe: needs --port (1..65535), a numeric IPv4 --host, --trickle + --silent > 0, "
                    "--trickle_ms > 0, --max_s > 0\n");
    return 2;
  }
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  signal(SIGPIPE, SIG_IGN);
  const int n = trickle + silent;
  std::vector<pollfd> fds(static_cast<std::size_t>(n));
  std::vector<double> closed_at(static_cast<std::size_t>(n), -1);
  const double t0 = now_s();
  int opened = 0;
  for (int i = 0; i < n; ++i) {
    int fd = open_to(a);
    if (fd < 0) {
      fprintf(stderr, "idle_timeout_probe: connection %d: %s\n", i, strerror(errno));
      fds[static_cast<std::size_t>(i)] = {-1, 0, 0};
      continue;
    }
    fds[static_cast<std::size_t>(i)] = {fd, POLLIN, 0};
    ++opened;
  }
  int open_now = opened;
  double next_byte = t0;
  while (open_now > 0 && now_s() - t0 < max_s) {
    if (now_s() >= next_byte) {
      for (int i = 0; i < trickle; ++i) {
        if (fds[static_cast<std::size_t>(i)].fd >= 0) (void)::send(fds[static_cast<std::size_t>(i)].fd, "x", 1, MSG_NOSIGNAL);
      }
      next_byte += trickle_ms / 1000.0;
    }
    int wait_ms = static_cast<int>((next_byte - now_s()) * 1000) + 1;
    if (::poll(fds.data(), fds.size(), wait_ms < 1 ? 1 : (wait_ms > 200 ? 200 : wait_ms)) <= 0) continue;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[256];
      if (::recv(fds[i].fd, buf, sizeof buf, 0) > 0) continue;  // (an echo server answers nothing here)
      closed_at[i] = now_s() - t0;
      ::close(fds[i].fd);
      fds[i].fd = -1;
      --open_now;
    }
  }
  double first = -1, last = -1;
  for (double c : closed_at) {
    if (c < 0) continue;
    if (first < 0 || c < first) first = c;
    if (c > last) last = c;
  }
  // A new client: served now?
  bool served = false;
  if (int fd = open_to(a); fd >= 0) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    if (::send(fd, "new\n", 4, MSG_NOSIGNAL) == 4) {
      char c;
      while (::recv(fd, &c, 1, 0) == 1 && c != '\n') got.push_back(c);
    }
    served = got.find("new") != std::string::npos;
    ::close(fd);
  }
  for (auto& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  const int closed = opened - open_now;
  printf("idle_timeout_probe %s:%d: %d trickling (1 byte every %d ms) + %d silent connections opened %d; %d closed by "
         "the server within %.0f s (first after %.1f s, last after %.1f s); a new client %s\n",
         absl::GetFlag(FLAGS_host).c_str(), port, trickle, trickle_ms, silent, opened, closed, max_s, first, last,
         served ? "was served" : "was NOT served");
  printf("RESULT mode=idle_timeout trickle=%d trickle_ms=%d silent=%d opened=%d closed=%d first_close_s=%.1f "
         "last_close_s=%.1f new_client_served=%d\n",
         trickle, trickle_ms, silent, opened, closed, first, last, served ? 1 : 0);
  return closed == opened && opened == n && served ? 0 : 1;
}
