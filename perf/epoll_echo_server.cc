// perf/epoll_echo_server.cc — the plain-epoll baseline for the echo benchmark.
//
// What: a single-threaded, non-blocking TCP server speaking the echo protocol of the C mnvkd
// seed: every line a client sends ('\n'-terminated, at most 8191 bytes) is answered with
// "Line N: <line>" (the line including its '\n'), N counting from 0 per connection. A run of
// 8191 bytes without a '\n' is answered as a line of its own, as the seed's
// readline(8191) does; a partial line at end of file is dropped.
//
// Why: DESIGN.md's goal for apps/echo is "beat a plain epoll loop written in perf/". This is that
// loop, written the way a competent C programmer writes a baseline, with no tricks in either
// direction:
//   * one epoll set, level-triggered: one read() per readiness report, so a ping-pong message
//     costs one read and one write (edge-triggered would need a read until EAGAIN, or rely on
//     short reads); EPOLLOUT is watched only while a reply is partly unsent;
//   * per connection: a small struct with the line counter and a fixed 8 KiB input buffer (the
//     longest line), malloc'ed at accept and found through a table indexed by fd;
//   * replies are formatted into one shared 64 KiB output buffer and sent with one write() per
//     read; a short write copies the rest into a per-connection malloc'ed buffer and stops
//     reading that connection until the rest is sent (backpressure, no unbounded queue);
//   * TCP_NODELAY on every connection; RLIMIT_NOFILE raised to the hard limit so it can hold
//     10,000+ idle connections; on EMFILE the listener is unwatched until a connection closes.
//
// Flags: --host (default 127.0.0.1), --port (default 0 = pick a free port). The first stdout
// line is "listening on HOST:PORT" (flushed); scripts read the port from it.
//
// Run: bazel build --config=opt //perf:epoll_echo_server && bazel-bin/perf/epoll_echo_server
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on (numeric or a name)");
ABSL_FLAG(int, port, 0, "TCP port to listen on; 0 picks a free port");

namespace {

constexpr size_t kLineMax = 8191;          // longest line, without counting a '\0'
constexpr size_t kInCap = kLineMax;        // input buffer: one longest line
constexpr size_t kOutCap = 64 * 1024;      // shared output buffer
constexpr size_t kPrefixMax = 32;          // "Line " + 20 digits + ": "
constexpr int kMaxEvents = 256;

struct Conn {
  int fd;
  uint64_t line;       // number of the next reply
  size_t in_len;       // bytes in `in`
  char* pending;       // unsent reply bytes (malloc'ed), or nullptr
  size_t pending_len;
  size_t pending_off;
  char in[kInCap];
};

int g_epoll = -1;
int g_listen = -1;
bool g_listen_watched = true;
Conn** g_conns = nullptr;  // indexed by fd
size_t g_conns_cap = 0;
char g_out[kOutCap];

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "epoll_echo_server: %s: %s\n", what, strerror(errno));
  exit(1);
}

void watch(int op, int fd, uint32_t events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(g_epoll, op, fd, &ev) < 0) die("epoll_ctl");
}

void close_conn(Conn* c) {
  // close() removes the fd from the epoll set (no dup()s exist).
  close(c->fd);
  g_conns[c->fd] = nullptr;
  free(c->pending);
  free(c);
  if (!g_listen_watched) {  // a descriptor is free again: accept again
    watch(EPOLL_CTL_ADD, g_listen, EPOLLIN);
    g_listen_watched = true;
  }
}

// Writes "Line N: " into p; returns the length.
size_t put_prefix(char* p, uint64_t n) {
  char digits[20];
  size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  memcpy(p, "Line ", 5);
  size_t len = 5;
  while (d > 0) p[len++] = digits[--d];
  p[len++] = ':';
  p[len++] = ' ';
  return len;
}

// Sends g_out[0, len). Returns false if the connection failed (and was closed). On a short write
// the rest is kept in c->pending and EPOLLOUT is watched instead of EPOLLIN.
bool send_out(Conn* c, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(c->fd, g_out + off, len - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      c->pending_len = len - off;
      c->pending_off = 0;
      c->pending = static_cast<char*>(malloc(c->pending_len));
      if (c->pending == nullptr) die("malloc");
      memcpy(c->pending, g_out + off, c->pending_len);
      watch(EPOLL_CTL_MOD, c->fd, EPOLLOUT);
      return true;
    } else {
      close_conn(c);
      return false;
    }
  }
  return true;
}

// Answers every complete line in c->in. Stops early if a reply could not be sent in full (the
// remaining lines are answered once it has been). Returns false if the connection was closed.
bool answer_lines(Conn* c) {
  size_t start = 0;
  size_t out = 0;
  while (c->pending == nullptr) {
    const char* nl = static_cast<const char*>(memchr(c->in + start, '\n', c->in_len - start));
    size_t line_len;
    if (nl != nullptr) {
      line_len = static_cast<size_t>(nl - (c->in + start)) + 1;
    } else if (start == 0 && c->in_len == kInCap) {
      line_len = kInCap;  // a full buffer without '\n' is a line of its own
    } else {
      break;
    }
    if (out + kPrefixMax + line_len > kOutCap) {
      if (!send_out(c, out)) return false;
      out = 0;
      if (c->pending != nullptr) break;
    }
    out += put_prefix(g_out + out, c->line++);
    memcpy(g_out + out, c->in + start, line_len);
    out += line_len;
    start += line_len;
  }
  if (start > 0) {
    c->in_len -= start;
    memmove(c->in, c->in + start, c->in_len);
  }
  if (out > 0 && c->pending == nullptr) return send_out(c, out);
  return true;
}

void on_readable(Conn* c) {
  ssize_t n = read(c->fd, c->in + c->in_len, kInCap - c->in_len);
  if (n > 0) {
    c->in_len += static_cast<size_t>(n);
    answer_lines(c);
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    close_conn(c);  // end of file (a partial line is dropped) or a reset
  }
}

void on_writable(Conn* c) {
  while (c->pending_off < c->pending_len) {
    ssize_t n = write(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off);
    if (n > 0) {
      c->pending_off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      close_conn(c);
      return;
    }
  }
  free(c->pending);
  c->pending = nullptr;
  watch(EPOLL_CTL_MOD, c->fd, EPOLLIN);
  answer_lines(c);  // lines that arrived while the reply was stuck
}

void on_accept() {
  for (;;) {
    int fd = accept4(g_listen, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: stop watching the listener until a connection closes,
        // instead of spinning on it.
        fprintf(stderr, "epoll_echo_server: accept: %s; pausing accepts\n", strerror(errno));
        watch(EPOLL_CTL_DEL, g_listen, 0);
        g_listen_watched = false;
        return;
      }
      die("accept4");
    }
    if (static_cast<size_t>(fd) >= g_conns_cap) {  // cannot happen: the table covers RLIMIT_NOFILE
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn* c = static_cast<Conn*>(malloc(sizeof(Conn)));
    if (c == nullptr) die("malloc");
    c->fd = fd;
    c->line = 0;
    c->in_len = 0;
    c->pending = nullptr;
    c->pending_len = 0;
    c->pending_off = 0;
    g_conns[fd] = c;
    watch(EPOLL_CTL_ADD, fd, EPOLLIN);
  }
}

// Binds and listens on host:port; prints nothing. Exits on failure.
int open_listener(const std::string& host, int port, std::string* bound) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  struct addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "epoll_echo_server: cannot resolve %s: %s\n", host.c_str(), gai_strerror(rc));
    exit(1);
  }
  int fd = -1;
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) die("bind/listen");

  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) < 0) die("getsockname");
  char addr[INET6_ADDRSTRLEN];
  int bound_port;
  if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
    bound_port = ntohs(s6->sin6_port);
    *bound = std::string("[") + addr + "]:" + std::to_string(bound_port);
  } else {
    auto* s4 = reinterpret_cast<struct sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
    bound_port = ntohs(s4->sin_port);
    *bound = std::string(addr) + ":" + std::to_string(bound_port);
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);

  // As many descriptors as the hard limit allows (10,000 idle connections need more than 1024).
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
  g_conns_cap = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : static_cast<size_t>(rl.rlim_cur);
  g_conns = static_cast<Conn**>(calloc(g_conns_cap, sizeof(Conn*)));
  if (g_conns == nullptr) die("calloc");

  std::string bound;
  g_listen = open_listener(absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port), &bound);
  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  if (g_epoll < 0) die("epoll_create1");
  watch(EPOLL_CTL_ADD, g_listen, EPOLLIN);

  printf("listening on %s\n", bound.c_str());
  fflush(stdout);

  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(g_epoll, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == g_listen) {
        on_accept();
        continue;
      }
      Conn* c = g_conns[fd];
      if (c == nullptr) continue;  // closed earlier in this batch
      if (c->pending != nullptr) {
        if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(c);
      } else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c);
      }
    }
  }
}
