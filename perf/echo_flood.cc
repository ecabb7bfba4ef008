// perf/echo_flood.cc — a flooding client for the echo protocol: what one greedy connection does
// to everyone else on the server.
//
// Opens --conns connections to --host:--port and, on each, keeps sending lines of --size bytes
// (--size-1 printable bytes + '\n') as fast as the socket takes them, in batches of --batch_kib
// KiB, never waiting for the replies, which it reads and counts as they come. Runs for
// --duration_s, then reports the bytes sent and received per second. Run it beside
// perf/echo_load (ping-pong connections that measure latency) to see whether the server shares
// its CPU between the greedy connections and the others (perf/flood_fairness.sh).
//
// One single-threaded epoll loop; the batch is built once. Output: one human-readable line and
// one "RESULT key=value ..." line. Exit status 1 if a connection could not be made or was closed
// by the server, 2 on bad flags.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address (IPv4)");
ABSL_FLAG(int, port, 0, "server port (required)");
ABSL_FLAG(int, conns, 1, "flooding connections");
ABSL_FLAG(int, size, 64, "bytes per line, the '\\n' included (2..8191)");
ABSL_FLAG(int, batch_kib, 64, "bytes written per send, in KiB");
ABSL_FLAG(double, duration_s, 3.0, "seconds to flood");

namespace {

double now_s() {
  timespec t;
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

struct Conn {
  int fd = -1;
  std::size_t offset = 0;  // into the batch: a send that went out in part goes on from here
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string host = absl::GetFlag(FLAGS_host);
  const int port = absl::GetFlag(FLAGS_port);
  const int conns = absl::GetFlag(FLAGS_conns);
  const int size = absl::GetFlag(FLAGS_size);
  const int batch_kib = absl::GetFlag(FLAGS_batch_kib);
  const double duration_s = absl::GetFlag(FLAGS_duration_s);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (port <= 0 || port > 65535 || conns < 1 || conns > 1000 || size < 2 || size > 8191 || batch_kib < 1 ||
      batch_kib > 1024 || duration_s <= 0 || ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    fprintf(stderr, "echo_flood: needs --port (1..65535), --conns 1..1000, --size 2..8191, --batch_kib 1..1024, "
                    "--duration_s > 0 and an IPv4 --host\n");
    return 2;
  }
  // The batch: whole lines, as many as fit.
  std::string line(static_cast<std::size_t>(size - 1), 'f');
  line += '\n';
  std::string batch;
  while (batch.size() + line.size() <= static_cast<std::size_t>(batch_kib) * 1024) batch += line;

  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> c(static_cast<std::size_t>(conns));
  for (std::size_t i = 0; i < c.size(); ++i) {
    c[i].fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(c[i].fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      fprintf(stderr, "echo_flood: connect: %s\n", std::strerror(errno));
      return 1;
    }
    ::fcntl(c[i].fd, F_SETFL, ::fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
  }
  std::vector<char> sink(1 << 20);
  std::uint64_t sent = 0, received = 0;
  bool closed = false;
  const double start = now_s(), end = start + duration_s;
  epoll_event events[64];
  while (!closed && now_s() < end) {
    int n = ::epoll_wait(ep, events, 64, 100);
    for (int k = 0; k < n; ++k) {
      Conn& x = c[events[k].data.u64];
      if (events[k].events & EPOLLIN) {
        for (;;) {
          ssize_t r = ::recv(x.fd, sink.data(), sink.size(), 0);
          if (r > 0) {
            received += static_cast<std::uint64_t>(r);
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EINTR)) closed = true;
          break;
        }
      }
      if (events[k].events & EPOLLOUT) {
        for (;;) {
          ssize_t w = ::send(x.fd, batch.data() + x.offset, batch.size() - x.offset, MSG_NOSIGNAL);
          if (w <= 0) {
            if (w < 0 && errno != EAGAIN && errno != EINTR) closed = true;
            break;
          }
          sent += static_cast<std::uint64_t>(w);
          x.offset = (x.offset + static_cast<std::size_t>(w)) % batch.size();
        }
      }
      if (events[k].events & (EPOLLHUP | EPOLLERR)) closed = true;
    }
  }
  double secs = now_s() - start;
  for (Conn& x : c) ::close(x.fd);
  ::close(ep);
  printf("echo_flood %s:%d: %d conns x %d-byte lines, %.2f s: sent %.1f MB/s, received %.1f MB/s%s\n", host.c_str(), port,
         conns, size, secs, sent / secs / 1e6, received / secs / 1e6, closed ? "; a connection was closed" : "");
  printf("RESULT mode=flood conns=%d size=%d seconds=%.3f sent_mb_per_s=%.1f received_mb_per_s=%.1f closed=%d\n", conns,
         size, secs, sent / secs / 1e6, received / secs / 1e6, closed ? 1 : 0);
  return closed ? 1 : 0;
}
