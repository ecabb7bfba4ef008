// perf/echo_client.cc — see echo_client.h.
#include "perf/echo_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <utility>
#include <cstdlib>
#include <memory>
#include <vector>

#include "metrics/latency_histogram.h"

namespace mnv::perf {
namespace {

constexpr int kMaxEvents = 512;
constexpr int kPrefixMax = 27;      // "Line " + 20 digits + ": "
constexpr int kRecvSlack = 64;      // room past the expected reply, to see extra bytes
constexpr int kPatternPeriod = 95;  // printable ASCII ' '..'~'

std::int64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::int64_t self_cpu_us() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (static_cast<std::int64_t>(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1000000 +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

int put_prefix(char* p, std::uint64_t n) {
  char digits[20];
  int d = 0;
  do {
    digits[d++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  memcpy(p, "Line ", 5);
  int len = 5;
  while (d > 0) p[len++] = digits[--d];
  p[len++] = ':';
  p[len++] = ' ';
  return len;
}

bool resolve(const std::string& host, int port, sockaddr_storage* addr, socklen_t* len,
             std::string* err) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  struct addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    *err = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

// The connection set and its event loop, shared by the load and idle runs.
class Engine {
 public:
  enum State : std::uint8_t { kUnstarted, kConnecting, kActive, kFailed };

  struct Conn {
    int fd = -1;
    State state = kUnstarted;
    bool answered = false;  // has received its first reply
    bool busy = false;      // a line is outstanding
    bool tagged = false;    // the outstanding line was sent while measuring (count mode)
    bool want_out = false;  // EPOLLOUT is watched: the outstanding line is partly written
    int sent = 0;           // bytes of the outstanding line written so far
    int got = 0;            // bytes of its reply received so far
    int expect = 0;         // length of the whole reply
    std::uint64_t seq = 0;  // number of the outstanding line (the N of its reply)
    std::int64_t t_send = 0;
  };

  Engine(const sockaddr_storage& addr, socklen_t addr_len, int connections, int msg_size,
         int max_connecting, bool one_message)
      : addr_(addr),
        addr_len_(addr_len),
        n_(connections),
        msg_(msg_size),
        rcap_(msg_size + kPrefixMax + kRecvSlack),
        max_connecting_(std::max(1, max_connecting)),
        one_message_(one_message),
        conns_(static_cast<std::size_t>(connections)),
        send_(static_cast<std::size_t>(connections) * static_cast<std::size_t>(msg_size)),
        recv_(static_cast<std::size_t>(connections) * static_cast<std::size_t>(rcap_)),
        pattern_(static_cast<std::size_t>(msg_size + kPatternPeriod)),
        hist_(std::make_unique<metrics::LatencyHistogram>()) {
    for (std::size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = static_cast<char>(' ' + i % kPatternPeriod);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) fail_all(std::string("epoll_create1: ") + strerror(errno));
  }

  ~Engine() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (epoll_ >= 0) close(epoll_);
  }

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs the loop until done() is true, or every connection has failed, or `deadline` (ns,
  // CLOCK_MONOTONIC) passes; also wakes up by `wake_at` to let done() look at the clock. Returns
  // false on the deadline.
  template <class Done>
  bool loop(Done done, std::int64_t deadline, std::int64_t wake_at) {
    struct epoll_event events[kMaxEvents];
    for (;;) {
      start_connections();
      now_ = now_ns();
      if (done(now_)) return true;
      if (started_ == n_ && failed_ == n_) return true;
      if (now_ >= deadline) return false;
      std::int64_t until = std::min(deadline, wake_at > now_ ? wake_at : deadline);
      int timeout_ms = static_cast<int>((until - now_ + 999999) / 1000000);
      int k = epoll_wait(epoll_, events, kMaxEvents, std::max(timeout_ms, 0));
      if (k < 0) {
        if (errno == EINTR) continue;
        fail_all(std::string("epoll_wait: ") + strerror(errno));
        return true;
      }
      for (int i = 0; i < k; ++i) handle(events[i].data.u32, events[i].events);
    }
  }

  // Measurement control.
  void begin_measuring(bool count_mode, std::int64_t budget) {
    measuring_ = true;
    count_mode_ = count_mode;
    budget_ = budget;
    completed_ = 0;
    hist_->reset();
    if (count_mode_) kick_idle();  // idle connections pick up work from the budget
  }
  void end_measuring() { measuring_ = false; }

  // Every connection has answered once or failed before it could (one that answered and failed
  // later counts once: it is in answered_ and not in failed_unanswered_).
  bool all_answered() const { return answered_ + failed_unanswered_ == n_; }
  int answered() const { return answered_; }
  int healthy() const {
    int h = 0;
    for (const Conn& c : conns_) h += c.state == kActive ? 1 : 0;
    return h;
  }
  std::uint64_t completed() const { return completed_; }
  std::int64_t budget() const { return budget_; }
  const metrics::LatencyHistogram& histogram() const { return *hist_; }
  std::uint64_t mismatches() const { return mismatches_; }
  std::uint64_t conn_errors() const { return conn_errors_; }
  const std::string& first_error() const { return first_error_; }

 private:
  char* sbuf(int i) { return send_.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(msg_); }
  char* rbuf(int i) { return recv_.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(rcap_); }

  void note_error(const std::string& what) {
    if (first_error_.empty()) first_error_ = what;
  }

  void fail_all(const std::string& what) {
    note_error(what);
    for (int i = 0; i < n_; ++i) {
      if (conns_[static_cast<std::size_t>(i)].state != kFailed) fail(i, nullptr, false);
    }
    started_ = n_;
  }

  // Takes connection i out of the run. `mismatch`: a bad reply rather than a connection error.
  void fail(int i, const char* what, bool mismatch) {
    Conn& c = conns_[static_cast<std::size_t>(i)];
    if (what != nullptr) {
      note_error("connection " + std::to_string(i) + ": " + what);
      ++(mismatch ? mismatches_ : conn_errors_);
    }
    if (c.fd >= 0) close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    if (c.state != kUnstarted && !c.answered) --opening_;
    if (!c.answered) ++failed_unanswered_;
    c.state = kFailed;
    ++failed_;
    if (measuring_ && count_mode_ && c.busy && c.tagged) {
      // Its measured line is lost: hand it to a connection that is still healthy and idle, so a
      // count-mode run still measures exactly `messages` lines.
      c.busy = false;
      ++budget_;
      kick_idle();
    }
  }

  void kick_idle() {
    std::int64_t t = now_ns();
    for (int i = 0; i < n_ && budget_ > 0; ++i) {
      Conn& c = conns_[static_cast<std::size_t>(i)];
      if (c.state == kActive && c.answered && !c.busy) send_line(i, t);
    }
  }

  void start_connections() {
    while (started_ < n_ && opening_ < max_connecting_) {
      int i = started_++;
      Conn& c = conns_[static_cast<std::size_t>(i)];
      ++opening_;
      c.state = kConnecting;
      c.fd = socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) {
        std::string what = std::string("socket: ") + strerror(errno);
        fail(i, what.c_str(), false);
        continue;
      }
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      struct epoll_event ev;
      memset(&ev, 0, sizeof ev);
      ev.events = EPOLLOUT;
      ev.data.u32 = static_cast<std::uint32_t>(i);
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
        std::string what = std::string("epoll_ctl: ") + strerror(errno);
        fail(i, what.c_str(), false);
        continue;
      }
      if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), addr_len_) == 0) {
        connected(i);
      } else if (errno != EINPROGRESS) {
        std::string what = std::string("connect: ") + strerror(errno);
        fail(i, what.c_str(), false);
      }
    }
  }

  void connected(int i) {
    Conn& c = conns_[static_cast<std::size_t>(i)];
    c.state = kActive;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev) < 0) {
      std::string what = std::string("epoll_ctl: ") + strerror(errno);
      fail(i, what.c_str(), false);
      return;
    }
    send_line(i, now_ns());
  }

  void watch_out(int i, bool out) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = out ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    epoll_ctl(epoll_, EPOLL_CTL_MOD, conns_[static_cast<std::size_t>(i)].fd, &ev);
  }

  // Sends line number c.seq on connection i, its payload depending on (i, seq).
  void send_line(int i, std::int64_t t) {
    Conn& c = conns_[static_cast<std::size_t>(i)];
    if (count_mode_ && measuring_ && c.answered) {
      if (budget_ <= 0) return;  // the measured count is reached: stay idle
      --budget_;
      c.tagged = true;
    } else {
      c.tagged = false;
    }
    char* s = sbuf(i);
    std::size_t off = static_cast<std::size_t>((c.seq * 7 + static_cast<std::uint64_t>(i)) % kPatternPeriod);
    memcpy(s, pattern_.data() + off, static_cast<std::size_t>(msg_ - 1));
    s[msg_ - 1] = '\n';
    char prefix[kPrefixMax];
    c.expect = put_prefix(prefix, c.seq) + msg_;
    c.got = 0;
    c.sent = 0;
    c.busy = true;
    c.t_send = t;
    write_some(i);
  }

  // Writes what is left of the outstanding line. A full socket buffer (rare: one short line is
  // outstanding) watches EPOLLOUT until the line is out.
  void write_some(int i) {
    Conn& c = conns_[static_cast<std::size_t>(i)];
    while (c.sent < msg_) {
      ssize_t w = write(c.fd, sbuf(i) + c.sent, static_cast<std::size_t>(msg_ - c.sent));
      if (w > 0) {
        c.sent += static_cast<int>(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && errno == EAGAIN) {
        if (!c.want_out) watch_out(i, true);
        c.want_out = true;
        return;
      } else {
        std::string what = std::string("write: ") + strerror(errno);
        fail(i, what.c_str(), false);
        return;
      }
    }
    if (c.want_out) watch_out(i, false);
    c.want_out = false;
  }

  void handle(std::uint32_t i, std::uint32_t events) {
    if (i >= static_cast<std::uint32_t>(n_)) return;
    Conn& c = conns_[i];
    int ii = static_cast<int>(i);
    switch (c.state) {
      case kConnecting: {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err != 0) {
          std::string what = std::string("connect: ") + strerror(err);
          fail(ii, what.c_str(), false);
        } else if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
          connected(ii);
        }
        return;
      }
      case kActive:
        if ((events & EPOLLOUT) && c.busy && c.sent < msg_) {
          write_some(ii);
          if (c.state != kActive) return;
        }
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_reply(ii);
        return;
      default:
        return;  // a stale event for a connection already closed
    }
  }

  void read_reply(int i) {
    Conn& c = conns_[static_cast<std::size_t>(i)];
    char* r = rbuf(i);
    ssize_t n = read(c.fd, r + c.got, static_cast<std::size_t>(rcap_ - c.got));
    if (n == 0) {
      fail(i, "closed by the server", false);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      std::string what = std::string("read: ") + strerror(errno);
      fail(i, what.c_str(), false);
      return;
    }
    if (!c.busy) {
      fail(i, "bytes received with no line outstanding", true);
      return;
    }
    int before = c.got;
    c.got += static_cast<int>(n);
    if (c.got < c.expect) {
      // The reply's only '\n' is its last byte: an earlier one means a short or wrong reply.
      if (memchr(r + before, '\n', static_cast<std::size_t>(c.got - before)) != nullptr) {
        fail(i, "reply shorter than expected", true);
      }
      return;
    }
    if (c.got > c.expect) {
      fail(i, "reply longer than expected", true);
      return;
    }
    char prefix[kPrefixMax];
    int plen = put_prefix(prefix, c.seq);
    if (memcmp(r, prefix, static_cast<std::size_t>(plen)) != 0) {
      fail(i, ("wrong prefix, expected \"" + std::string(prefix, static_cast<std::size_t>(plen)) + "\", got \"" +
               std::string(r, static_cast<std::size_t>(std::min(plen + 8, c.got))) + "\"")
                  .c_str(),
           true);
      return;
    }
    if (memcmp(r + plen, sbuf(i), static_cast<std::size_t>(msg_)) != 0) {
      fail(i, "payload differs from the line sent", true);
      return;
    }
    std::int64_t t = now_ns();
    c.busy = false;
    ++c.seq;
    if (!c.answered) {
      c.answered = true;
      ++answered_;
      --opening_;
    }
    if (measuring_ && (!count_mode_ || c.tagged)) {
      ++completed_;
      hist_->record(static_cast<std::uint64_t>(t - c.t_send));
    }
    if (!one_message_) send_line(i, t);
  }

  const sockaddr_storage addr_;
  const socklen_t addr_len_;
  const int n_;
  const int msg_;
  const int rcap_;
  const int max_connecting_;
  const bool one_message_;
  int epoll_ = -1;
  std::vector<Conn> conns_;
  std::vector<char> send_;
  std::vector<char> recv_;
  std::vector<char> pattern_;
  std::unique_ptr<metrics::LatencyHistogram> hist_;

  int started_ = 0;   // connections [0, started_) have been started
  int opening_ = 0;   // started, not yet answered, not failed
  int answered_ = 0;  // have received their first reply (including ones that failed later)
  int failed_ = 0;
  int failed_unanswered_ = 0;  // failed before their first reply
  std::int64_t now_ = 0;

  bool measuring_ = false;
  bool count_mode_ = false;
  std::int64_t budget_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t mismatches_ = 0;
  std::uint64_t conn_errors_ = 0;
  std::string first_error_;
};

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string check_options(int connections, int msg_size, const std::string& host, int port) {
  if (connections < 1) return "connections must be >= 1";
  if (msg_size < 1 || msg_size > 8191) return "msg_size must be in [1, 8191]";
  if (port <= 0 || port > 65535) return "port must be in [1, 65535]";
  if (host.empty()) return "host is empty";
  return "";
}

}  // namespace

namespace {

// The parent pid in /proc/PID/stat (field 4, after the parenthesised command name); -1 if gone.
int parent_of(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = fopen(path, "re");
  if (f == nullptr) return -1;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');
  int ppid = -1;
  if (p == nullptr || sscanf(p + 1, " %*c %d", &ppid) != 1) return -1;
  return ppid;
}

// `pid` and every process below it: a server whose shards are processes is the whole tree.
// (From each process's parent pid: /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN,
// which not every kernel has.)
std::vector<int> process_tree(int pid) {
  std::vector<std::pair<int, int>> all;  // (pid, parent)
  if (DIR* dir = opendir("/proc")) {
    while (dirent* e = readdir(dir)) {
      char* end;
      long p = strtol(e->d_name, &end, 10);
      if (*end != '\0' || p <= 0 || p == pid) continue;
      int parent = parent_of(static_cast<int>(p));
      if (parent > 0) all.emplace_back(static_cast<int>(p), parent);
    }
    closedir(dir);
  }
  std::vector<int> tree{pid};
  for (std::size_t i = 0; i < tree.size(); ++i) {
    for (const auto& [p, parent] : all) {
      if (parent == tree[i]) tree.push_back(p);
    }
  }
  return tree;
}

bool read_one_cpu_us(int pid, std::int64_t* us);
bool read_one_rss_kib(int pid, std::int64_t* kib);

// read_one() summed over `pid`'s process tree; false if `pid`'s own is unreadable (a child's
// is skipped: it may just have exited).
bool sum_over_tree(int pid, bool (*read_one)(int, std::int64_t*), std::int64_t* out) {
  std::int64_t sum = 0;
  for (int p : process_tree(pid)) {
    std::int64_t one;
    if (read_one(p, &one)) {
      sum += one;
    } else if (p == pid) {
      return false;
    }
  }
  *out = sum;
  return true;
}

}  // namespace

bool read_proc_cpu_us(int pid, std::int64_t* us) { return sum_over_tree(pid, read_one_cpu_us, us); }

bool read_proc_rss_kib(int pid, std::int64_t* kib) { return sum_over_tree(pid, read_one_rss_kib, kib); }

namespace {

bool read_one_cpu_us(int pid, std::int64_t* us) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // Fields after the command name (which may hold spaces and parentheses): state is field 3,
  // utime field 14, stime field 15.
  char* p = strrchr(buf, ')');
  if (p == nullptr) return false;
  ++p;
  unsigned long long utime = 0, stime = 0;
  int field = 2;
  char* save = nullptr;
  for (char* tok = strtok_r(p, " ", &save); tok != nullptr; tok = strtok_r(nullptr, " ", &save)) {
    ++field;
    if (field == 14) utime = strtoull(tok, nullptr, 10);
    if (field == 15) {
      stime = strtoull(tok, nullptr, 10);
      long hz = sysconf(_SC_CLK_TCK);
      if (hz <= 0) return false;
      *us = static_cast<std::int64_t>((utime + stime) * 1000000ULL / static_cast<unsigned long long>(hz));
      return true;
    }
  }
  return false;
}

bool read_one_rss_kib(int pid, std::int64_t* kib) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* f = fopen(path, "re");
  if (f == nullptr) return false;
  char line[256];
  bool ok = false;
  while (fgets(line, sizeof line, f) != nullptr) {
    long long v;
    if (sscanf(line, "VmRSS: %lld kB", &v) == 1) {
      *kib = v;
      ok = true;
      break;
    }
  }
  fclose(f);
  return ok;
}

}  // namespace

long raise_nofile_limit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
  if (rl.rlim_cur != rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
  }
  return rl.rlim_cur == RLIM_INFINITY ? (1L << 30) : static_cast<long>(rl.rlim_cur);
}

LoadResult run_load(const LoadOptions& opt) {
  LoadResult r;
  signal(SIGPIPE, SIG_IGN);
  std::string bad = check_options(opt.connections, opt.msg_size, opt.host, opt.port);
  if (!bad.empty()) {
    r.first_error = bad;
    r.conn_errors = 1;
    return r;
  }
  long limit = raise_nofile_limit();
  if (limit >= 0 && limit < opt.connections + 16) {
    r.first_error = fmt("RLIMIT_NOFILE is %ld, too low for %d connections (raise it: ulimit -n)", limit,
                        opt.connections);
    r.conn_errors = 1;
    return r;
  }
  sockaddr_storage addr;
  socklen_t addr_len = 0;
  if (!resolve(opt.host, opt.port, &addr, &addr_len, &r.first_error)) {
    r.conn_errors = 1;
    return r;
  }

  Engine e(addr, addr_len, opt.connections, opt.msg_size, opt.max_connecting, /*one_message=*/false);
  const std::int64_t t0 = now_ns();
  const std::int64_t deadline = t0 + static_cast<std::int64_t>(opt.timeout_s * 1e9);
  const std::int64_t warm_end = t0 + static_cast<std::int64_t>(opt.warmup_s * 1e9);

  // Warm-up: open every connection, ping-pong until warmup_s has passed.
  bool in_time = e.loop([&](std::int64_t now) { return e.all_answered() && now >= warm_end; }, deadline, warm_end);

  std::int64_t cpu0 = 0, cpu1 = 0;
  bool cpu_ok = in_time && opt.server_pid > 0 && read_proc_cpu_us(opt.server_pid, &cpu0);
  std::int64_t self0 = self_cpu_us();
  std::int64_t t_start = now_ns();
  std::int64_t t_end = t_start;
  const bool count_mode = opt.messages > 0;
  if (in_time) {
    e.begin_measuring(count_mode, opt.messages);
    if (count_mode) {
      in_time = e.loop([&](std::int64_t) { return e.completed() >= static_cast<std::uint64_t>(opt.messages); },
                       deadline, deadline);
    } else {
      const std::int64_t end = t_start + static_cast<std::int64_t>(opt.duration_s * 1e9);
      in_time = e.loop([&](std::int64_t now) { return now >= end; }, std::max(deadline, end + 1), end);
    }
    t_end = now_ns();
    e.end_measuring();
  }
  std::int64_t self1 = self_cpu_us();
  if (cpu_ok) cpu_ok = read_proc_cpu_us(opt.server_pid, &cpu1);

  r.connections_ok = e.healthy();
  r.messages = e.completed();
  r.seconds = static_cast<double>(t_end - t_start) / 1e9;
  r.msgs_per_s = r.seconds > 0 ? static_cast<double>(r.messages) / r.seconds : 0;
  const metrics::LatencyHistogram& h = e.histogram();
  r.p50_ns = h.percentile(50);
  r.p90_ns = h.percentile(90);
  r.p99_ns = h.percentile(99);
  r.p999_ns = h.percentile(99.9);
  r.max_ns = h.max();
  r.mean_ns = h.mean();
  r.mismatches = e.mismatches();
  r.conn_errors = e.conn_errors();
  r.first_error = e.first_error();
  if (!in_time) {
    if (count_mode) {
      r.timeouts = static_cast<std::uint64_t>(opt.messages) - std::min<std::uint64_t>(r.messages, static_cast<std::uint64_t>(opt.messages));
    } else {
      r.timeouts = static_cast<std::uint64_t>(opt.connections - e.answered());
    }
    if (r.timeouts == 0) r.timeouts = 1;
    if (r.first_error.empty()) r.first_error = fmt("timed out after %.1f s", opt.timeout_s);
  } else if (count_mode && r.messages < static_cast<std::uint64_t>(opt.messages)) {
    // Every connection failed before the count was reached.
    r.timeouts = static_cast<std::uint64_t>(opt.messages) - r.messages;
  }
  if (cpu_ok) {
    r.server_cpu_us = cpu1 - cpu0;
    if (r.messages > 0) r.server_cpu_us_per_msg = static_cast<double>(r.server_cpu_us) / static_cast<double>(r.messages);
    if (r.server_cpu_us > 0) r.msgs_per_server_cpu_s = static_cast<double>(r.messages) * 1e6 / static_cast<double>(r.server_cpu_us);
  }
  if (r.seconds > 0) r.client_cpu_pct = static_cast<double>(self1 - self0) / 1e4 / r.seconds;
  return r;
}

IdleResult run_idle(const IdleOptions& opt) {
  IdleResult r;
  signal(SIGPIPE, SIG_IGN);
  std::string bad = check_options(opt.connections, opt.msg_size, opt.host, opt.port);
  if (!bad.empty()) {
    r.first_error = bad;
    r.errors = 1;
    return r;
  }
  long limit = raise_nofile_limit();
  if (limit >= 0 && limit < opt.connections + 16) {
    r.first_error = fmt("RLIMIT_NOFILE is %ld, too low for %d connections (raise it: ulimit -n)", limit,
                        opt.connections);
    r.errors = 1;
    return r;
  }
  sockaddr_storage addr;
  socklen_t addr_len = 0;
  if (!resolve(opt.host, opt.port, &addr, &addr_len, &r.first_error)) {
    r.errors = 1;
    return r;
  }
  if (opt.server_pid > 0 && !read_proc_rss_kib(opt.server_pid, &r.rss_before_kib)) r.rss_before_kib = -1;

  Engine e(addr, addr_len, opt.connections, opt.msg_size, opt.max_connecting, /*one_message=*/true);
  const std::int64_t t0 = now_ns();
  const std::int64_t deadline = t0 + static_cast<std::int64_t>(opt.timeout_s * 1e9);
  bool in_time = e.loop([&](std::int64_t) { return e.all_answered(); }, deadline, deadline);
  r.setup_s = static_cast<double>(now_ns() - t0) / 1e9;
  r.connections_ok = e.healthy();
  if (opt.server_pid > 0 && !read_proc_rss_kib(opt.server_pid, &r.rss_fresh_kib)) r.rss_fresh_kib = -1;
  // An idle connection is one that stays idle: servers may give memory back after a while.
  if (opt.settle_s > 0) {
    timespec ts{static_cast<time_t>(opt.settle_s), static_cast<long>((opt.settle_s - static_cast<time_t>(opt.settle_s)) * 1e9)};
    nanosleep(&ts, nullptr);
  }
  if (opt.server_pid > 0 && !read_proc_rss_kib(opt.server_pid, &r.rss_after_kib)) r.rss_after_kib = -1;
  r.errors = e.mismatches() + e.conn_errors();
  r.first_error = e.first_error();
  if (!in_time) {
    r.errors += static_cast<std::uint64_t>(opt.connections - e.answered());
    if (r.first_error.empty()) r.first_error = fmt("timed out after %.1f s", opt.timeout_s);
  }
  if (r.rss_before_kib >= 0 && r.rss_after_kib >= 0 && r.connections_ok > 0) {
    r.kib_per_conn = static_cast<double>(r.rss_after_kib - r.rss_before_kib) / r.connections_ok;
  }
  return r;  // ~Engine closes every connection
}

std::string result_line(const LoadOptions& opt, const LoadResult& r) {
  std::string s = fmt(
      "RESULT mode=load conns=%d size=%d seconds=%.3f messages=%llu msgs_per_s=%.0f p50_us=%.1f p90_us=%.1f "
      "p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f errors=%llu mismatches=%llu conn_errors=%llu "
      "timeouts=%llu conns_ok=%d client_cpu_pct=%.0f",
      opt.connections, opt.msg_size, r.seconds, static_cast<unsigned long long>(r.messages), r.msgs_per_s,
      static_cast<double>(r.p50_ns) / 1e3, static_cast<double>(r.p90_ns) / 1e3, static_cast<double>(r.p99_ns) / 1e3,
      static_cast<double>(r.p999_ns) / 1e3, static_cast<double>(r.max_ns) / 1e3, r.mean_ns / 1e3,
      static_cast<unsigned long long>(r.errors()), static_cast<unsigned long long>(r.mismatches),
      static_cast<unsigned long long>(r.conn_errors), static_cast<unsigned long long>(r.timeouts), r.connections_ok,
      r.client_cpu_pct);
  if (r.server_cpu_us >= 0) {
    s += fmt(" server_cpu_us=%lld server_cpu_us_per_msg=%.3f msgs_per_server_cpu_s=%.0f server_cpu_pct=%.0f",
             static_cast<long long>(r.server_cpu_us), r.server_cpu_us_per_msg, r.msgs_per_server_cpu_s,
             r.seconds > 0 ? static_cast<double>(r.server_cpu_us) / 1e4 / r.seconds : 0.0);
  } else {
    s += " server_cpu_us=na server_cpu_us_per_msg=na msgs_per_server_cpu_s=na server_cpu_pct=na";
  }
  return s;
}

std::string result_line(const IdleOptions& opt, const IdleResult& r) {
  std::string s = fmt("RESULT mode=idle conns=%d size=%d conns_ok=%d errors=%llu setup_s=%.3f", opt.connections,
                      opt.msg_size, r.connections_ok, static_cast<unsigned long long>(r.errors), r.setup_s);
  if (r.rss_before_kib >= 0 && r.rss_after_kib >= 0) {
    s += fmt(" rss_before_kib=%lld rss_fresh_kib=%lld rss_after_kib=%lld kib_per_conn=%.2f settle_s=%.1f",
             static_cast<long long>(r.rss_before_kib), static_cast<long long>(r.rss_fresh_kib),
             static_cast<long long>(r.rss_after_kib), r.kib_per_conn, opt.settle_s);
  } else {
    s += " rss_before_kib=na rss_after_kib=na kib_per_conn=na";
  }
  return s;
}

std::string summary_line(const LoadOptions& opt, const LoadResult& r) {
  std::string s = fmt("echo_load %s:%d: %d conns x %d-byte lines, %.2f s: %.0f msgs/s, latency p50 %.1f us, p90 %.1f us, "
                      "p99 %.1f us, p99.9 %.1f us, max %.1f us; %llu errors",
                      opt.host.c_str(), opt.port, opt.connections, opt.msg_size, r.seconds, r.msgs_per_s,
                      static_cast<double>(r.p50_ns) / 1e3, static_cast<double>(r.p90_ns) / 1e3,
                      static_cast<double>(r.p99_ns) / 1e3, static_cast<double>(r.p999_ns) / 1e3,
                      static_cast<double>(r.max_ns) / 1e3, static_cast<unsigned long long>(r.errors()));
  if (r.server_cpu_us >= 0) {
    s += fmt("; server CPU %.3f us/msg, %.0f msgs per server-CPU-second", r.server_cpu_us_per_msg,
             r.msgs_per_server_cpu_s);
  }
  s += fmt("; client CPU %.0f%%", r.client_cpu_pct);
  if (!r.first_error.empty()) s += " (first error: " + r.first_error + ")";
  return s;
}

std::string summary_line(const IdleOptions& opt, const IdleResult& r) {
  std::string s = fmt("idle_memory %s:%d: %d of %d connections idle after %.2f s; %llu errors", opt.host.c_str(),
                      opt.port, r.connections_ok, opt.connections, r.setup_s, static_cast<unsigned long long>(r.errors));
  if (r.rss_before_kib >= 0 && r.rss_after_kib >= 0) {
    s += fmt("; server RSS %lld KiB -> %lld KiB (%lld KiB when just answered), after %.1f s idle: %.2f KiB per idle "
             "connection",
             static_cast<long long>(r.rss_before_kib), static_cast<long long>(r.rss_after_kib),
             static_cast<long long>(r.rss_fresh_kib), opt.settle_s, r.kib_per_conn);
  }
  if (!r.first_error.empty()) s += " (first error: " + r.first_error + ")";
  return s;
}

}  // namespace mnv::perf
