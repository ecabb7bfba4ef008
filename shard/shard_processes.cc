// shard/shard_processes.cc — shards as processes (shard/shard_processes.h).
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "mem/log.h"
#include "shard/cross_call.h"
#include "runtime/wake_fd.h"
#include "shard/shard_processes.h"

namespace mnv {

namespace {

constexpr std::size_t kMaxReport = 1024;  // a start-up report: ok byte + error text (< PIPE_BUF)

// One read: a start-up report is one write of under PIPE_BUF bytes, so one read takes it whole.
ssize_t read_once(int fd, void* buf, std::size_t n) {
  for (;;) {
    ssize_t r = ::read(fd, buf, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

// Waits for child `pid` to end; its wait status.
int wait_for_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// A mailbox waker: signals the shard's wake eventfd (ctx is the fd).
void wake_shard(void* fd) { signal_wake_fd(static_cast<int>(reinterpret_cast<std::intptr_t>(fd))); }

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("died of SIG") + (name != nullptr ? name : "?") + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended (status " + std::to_string(status) + ")";
}

}  // namespace

std::unique_ptr<ShardSet> ShardProcesses::start(const Topology& topology, ShardSetOptions options, std::string* error) {
  std::unique_ptr<ShardProcesses> set(new ShardProcesses(std::move(options)));
  set->make_shards();
  if (!set->start_all(topology, error)) return nullptr;
  return set;
}

// In a shard's process: one write (atomic under PIPE_BUF), read whole by fork_shard().
void ShardProcesses::report(std::size_t, bool ok, const std::string& error) {
  char buf[kMaxReport];
  std::size_t n = error.size() < kMaxReport - 1 ? error.size() : kMaxReport - 1;
  buf[0] = ok ? 1 : 0;
  std::memcpy(buf + 1, error.data(), n);
  [[maybe_unused]] ssize_t w = ::write(report_fd_, buf, n + 1);
}

bool ShardProcesses::await_go() {
  char c = 0;
  return read_once(go_fd_, &c, 1) == 1 && c == 'g';  // EOF: the start was called off
}

bool ShardProcesses::start_all(const Topology& topology, std::string* error) {
  std::size_t n = shards_.size();
  std::size_t bytes = SharedRegion::grow(0, sizeof(Control), alignof(Control));
  bytes = SharedRegion::grow(bytes, sizeof(Turns) * n, alignof(Turns));
  bytes = SharedRegion::grow(bytes, sizeof(std::atomic<std::uint32_t>) * n, alignof(std::atomic<std::uint32_t>));
  shared_ = std::make_unique<SharedRegion>(bytes);
  control_ = shared_->make<Control>();
  turns_ = shared_->make_array<Turns>(n);
  died_ = shared_->make_array<std::atomic<std::uint32_t>>(n);
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    int fd = open_wake_fd();
    if (fd < 0) {
      *error = std::string("shard processes: eventfd: ") + std::strerror(errno);
      return false;
    }
    wake_fds_.push_back(fd);
    mailboxes_.set_waker(i, wake_shard, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  }
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    std::array<int, 2> pair{-1, -1};
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair.data()) != 0) {
      *error = std::string("shard processes: socketpair: ") + std::strerror(errno);
      return false;
    }
    fd_sockets_.push_back(pair);
  }
  stop_fd_ = open_wake_fd();
  if (stop_fd_ < 0) {
    *error = std::string("shard processes: eventfd: ") + std::strerror(errno);
    return false;
  }
  topology_ = &topology;
  children_.assign(shards_.size(), Child{});
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    if (!fork_shard(i, error)) {
      call_off_start();
      return false;
    }
  }
  for (Child& c : children_) {
    char go = 'g';
    [[maybe_unused]] ssize_t w = ::write(c.go_fd, &go, 1);
  }
  Kernel::set_stop_signal_fd(stop_fd_);  // SIGTERM/SIGINT here: passed on by wait()
  return true;
}

void ShardProcesses::request_stop() {
  control_->stop.store(true, std::memory_order_release);  // (seen by each shard's on_turn)
  for (int fd : wake_fds_) signal_wake_fd(fd);
}

int ShardProcesses::wait() {
  int rc = 0;
  for (;;) {
    std::vector<pollfd> fds;
    for (std::size_t i = 0; i < children_.size(); ++i) {
      Child& c = children_[i];
      if (c.exited) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = true;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {  // it stopped (when asked, normally)
          if (!stop_requested() && !Kernel::stop_signalled()) {
            log_line("mnv: shard %zu (process %d) stopped by itself (a SIGTERM sent to it alone?); the other shards "
                     "go on",
                     i, c.pid);
          }
          continue;
        }
        // The others fail their calls to it at their next loop turn (woken for it).
        died_[i].fetch_add(1, std::memory_order_release);
        control_->deaths.fetch_add(1, std::memory_order_release);
        wake_all_but(i);
        if (!restart(i, status)) {
          rc = 1;  // down for good
          continue;
        }
      }
      fds.push_back(pollfd{c.pidfd, POLLIN, 0});  // readable once it has exited
    }
    if (fds.empty()) break;
    if (Kernel::stop_signalled() && !stop_requested()) request_stop();
    fds.push_back(pollfd{stop_fd_, POLLIN, 0});
    // A look at every shard's progress a few times per restart_stuck_ms.
    int timeout_ms = options_.restart_stuck_ms > 0
                         ? static_cast<int>(std::max<std::int64_t>(options_.restart_stuck_ms / 4, 1))
                         : -1;
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      panic("mnv: shard processes: poll: %s", std::strerror(errno));
    }
    if (fds.back().revents & POLLIN) {
      drain_wake_fd(stop_fd_);
      request_stop();
    }
    if (options_.restart_stuck_ms > 0) kill_stuck_shards(monotonic_ns());
  }
  return rc;
}

void ShardProcesses::wake_all_but(std::size_t skip) {
  for (std::size_t j = 0; j < wake_fds_.size(); ++j) {
    if (j != skip) signal_wake_fd(wake_fds_[j]);
  }
}

ShardProcesses::~ShardProcesses() {
  if (std::any_of(children_.begin(), children_.end(), [](const Child& c) { return c.pid > 0 && !c.exited; })) {
    request_stop();
    wait();
  }
  Kernel::set_stop_signal_fd(-1);
  for (Child& c : children_) {
    for (int fd : {c.pidfd, c.report_fd, c.go_fd}) {
      if (fd >= 0) ::close(fd);
    }
  }
  for (int fd : wake_fds_) ::close(fd);
  for (const auto& pair : fd_sockets_) {
    for (int fd : pair) ::close(fd);
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

bool ShardProcesses::send_fd(std::size_t from, std::size_t to, ShardMessage m, int fd) {
  // The wake-up first (it is what makes `to` read its socket; one with nothing to read is
  // harmless), then the message and the fd in one datagram, so they cannot be paired wrongly.
  ShardMessage hint{};
  hint.kind = Shard::kFdBit;
  if (!mailboxes_.send(from, to, hint)) return false;
  iovec iov{&m, sizeof m};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (::sendmsg(fd_sockets_[to][1], &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof m)) {
    return false;
  }
  ::close(fd);  // (`to` has its own now)
  return true;
}


// ---- In a shard's process ---------------------------------------------------------------------

void ShardProcesses::configure_kernel(std::size_t index, KernelConfig* config) {
  config->wake_fd = wake_fds_[index];  // (every shard's waker, an eventfd write, was set before the forks)
}

void ShardProcesses::attach(Shard&) {
  // Deaths before this incarnation are not news to it.
  deaths_seen_ = control_->deaths.load(std::memory_order_acquire);
  died_seen_.resize(size());
  for (std::size_t j = 0; j < size(); ++j) died_seen_[j] = died_[j].load(std::memory_order_acquire);
}

void ShardProcesses::on_turn(Shard& shard) {
  std::atomic<std::uint64_t>& turns = turns_[shard.index()].count;  // (read by kill_stuck_shards)
  turns.store(turns.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (!stop_seen_ && stop_requested()) {  // request_stop() in the parent
    stop_seen_ = true;
    shard.kernel().request_stop();
  }
  if (control_->deaths.load(std::memory_order_acquire) == deaths_seen_) return;
  deaths_seen_ = control_->deaths.load(std::memory_order_acquire);
  for (std::size_t j = 0; j < size(); ++j) {
    std::uint32_t died = died_[j].load(std::memory_order_acquire);
    if (died == died_seen_[j]) continue;
    died_seen_[j] = died;
    shard.fail_calls_to(j);  // shard j's process died since we last looked
  }
}

void ShardProcesses::receive_fds(Shard& shard) {
  for (;;) {
    ShardMessage m;
    iovec iov{&m, sizeof m};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_sockets_[shard.index()][0], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // (EAGAIN: all taken)
    int fd = -1;
    if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    }
    if (n != static_cast<ssize_t>(sizeof m) || fd < 0) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    m.id = static_cast<std::uint64_t>(fd);
    shard.deliver_post(m);
  }
}

// ---- In the caller's process ------------------------------------------------------------------


bool ShardProcesses::fork_shard(std::size_t i, std::string* error) {
  Child& c = children_[i];
  for (int* fd : {&c.pidfd, &c.report_fd, &c.go_fd}) {  // (a restart: the last incarnation's)
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  ++c.incarnation;
  int report[2], go[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    *error = std::string("shard processes: pipe2: ") + std::strerror(errno);
    return false;
  }
  if (::pipe2(go, O_CLOEXEC) != 0) {
    *error = std::string("shard processes: pipe2: ") + std::strerror(errno);
    ::close(report[0]);
    ::close(report[1]);
    return false;
  }
  turns_[i].ended.store(false, std::memory_order_release);  // (a restart: the last incarnation's loop ended)
  pid_t parent = ::getpid();
  std::fflush(nullptr);  // (or the child would write out the caller's buffered output again)
  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("shard processes: fork: ") + std::strerror(errno);
    for (int fd : {report[0], report[1], go[0], go[1]}) ::close(fd);
    return false;
  }
  if (pid == 0) {  // the shard's process: run it, never return into the caller's code
    ::close(report[0]);
    ::close(go[1]);
    for (Child& other : children_) {
      for (int fd : {other.pidfd, other.report_fd, other.go_fd}) {
        if (fd >= 0) ::close(fd);
      }
    }
    ::close(stop_fd_);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // (the caller's hard exit must not leave shards behind)
    if (::getppid() != parent) ::_exit(1);  // the parent died before the line above
    report_fd_ = report[1];
    go_fd_ = go[0];
    shards_[i]->seed_calls(c.incarnation);
    bool ran = run_shard(*shards_[i], *topology_);
    std::fflush(nullptr);
    ::_exit(ran ? 0 : 1);
  }
  ::close(report[1]);
  ::close(go[0]);
  c.pid = pid;
  c.exited = false;
  c.killed_as_stuck = false;
  c.last_turns = turns_[i].count.load(std::memory_order_relaxed);
  c.progress_ns = monotonic_ns();
  c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  c.report_fd = report[0];
  c.go_fd = go[1];
  if (c.pidfd < 0) {
    *error = std::string("shard processes: pidfd_open: ") + std::strerror(errno);
    return false;
  }
  char buf[kMaxReport];
  std::string why;
  ssize_t n = await_report(i, buf, sizeof buf, &why);
  if (n < 0) {  // it is killed: a start that hangs must not hold the caller (nor wait()) forever
    ::kill(pid, SIGKILL);
    wait_for_exit(pid);
    c.exited = true;
    *error = "shard " + std::to_string(i) + ": its process " + why + " (killed)";
    return false;
  }
  if (n > 0 && buf[0] == 1) return true;
  if (n > 0) {
    error->assign(buf + 1, static_cast<std::size_t>(n - 1));
    return false;
  }
  int status = wait_for_exit(pid);
  c.exited = true;
  *error = "shard " + std::to_string(i) + ": its process " + describe_exit(status) + " during start-up";
  return false;
}

ssize_t ShardProcesses::await_report(std::size_t i, char* buf, std::size_t len, std::string* why) {
  const Child& c = children_[i];
  std::int64_t start = monotonic_ns();
  for (;;) {
    // Slices of at most 100 ms, to see a stop requested meanwhile (SIGTERM during a restart).
    std::int64_t waited_ms = (monotonic_ns() - start) / 1'000'000;
    std::int64_t slice_ms = 100;
    if (options_.start_timeout_ms > 0) slice_ms = std::min(slice_ms, std::max<std::int64_t>(options_.start_timeout_ms - waited_ms, 0));
    pollfd p{c.report_fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(slice_ms));
    if (r > 0) return read_once(c.report_fd, buf, len);  // its report, or EOF if it died first
    if (r < 0 && errno != EINTR) panic("mnv: shard processes: poll: %s", std::strerror(errno));
    if (stop_requested() || Kernel::stop_signalled()) {
      *why = "was still starting when the shards were asked to stop";
      return -1;
    }
    if (options_.start_timeout_ms > 0 && monotonic_ns() - start >= options_.start_timeout_ms * 1'000'000) {
      *why = "did not finish starting within " + std::to_string(options_.start_timeout_ms) + " ms";
      return -1;
    }
  }
}

bool ShardProcesses::restart(std::size_t i, int status) {
  std::string how = children_[i].killed_as_stuck
                        ? "made no progress for " + std::to_string(options_.restart_stuck_ms) +
                              " ms and was killed as stuck"
                        : describe_exit(status);
  bool restarted = try_restart(i, how);
  if (options_.on_death) options_.on_death(i, how, restarted);
  return restarted;
}

bool ShardProcesses::try_restart(std::size_t i, const std::string& how) {
  Child& c = children_[i];
  if (stop_requested() || Kernel::stop_signalled()) {
    log_line("mnv: shard %zu (process %d) %s while stopping", i, c.pid, how.c_str());
    return false;
  }
  std::int64_t now = monotonic_ns();
  if (c.restarts == 0 || now - c.window_ns > kRestartWindowNs) {
    c.window_ns = now;
    c.restarts = 0;
  }
  if (c.restarts == kMaxRestarts) {
    log_line("mnv: shard %zu (process %d) %s; not restarted: it died %d times within %lld s (the other shards go on)",
             i, c.pid, how.c_str(), kMaxRestarts + 1, static_cast<long long>(kRestartWindowNs / 1'000'000'000));
    return false;
  }
  ++c.restarts;
  int old = c.pid;
  // What it staged and never published is dropped; messages it published are delivered.
  mailboxes_.drop_staged(i);
  std::string error;
  if (!fork_shard(i, &error)) {
    log_line("mnv: shard %zu (process %d) %s; its restart failed: %s (the other shards go on)", i, old, how.c_str(),
             error.c_str());
    return false;
  }
  char go = 'g';
  [[maybe_unused]] ssize_t w = ::write(c.go_fd, &go, 1);
  log_line("mnv: shard %zu (process %d) %s; restarted as process %d (the other shards went on)", i, old, how.c_str(),
           c.pid);
  return true;
}

void ShardProcesses::call_off_start() {
  for (Child& c : children_) {
    if (c.go_fd >= 0) ::close(c.go_fd);  // its await_go() reads EOF: it stops without running
    c.go_fd = -1;
  }
  for (Child& c : children_) {
    if (c.pid <= 0 || c.exited) continue;
    wait_for_exit(c.pid);
    c.exited = true;
  }
}


void ShardProcesses::kill_stuck_shards(std::int64_t now) {
  for (std::size_t i = 0; i < children_.size(); ++i) {
    Child& c = children_[i];
    if (c.exited || c.killed_as_stuck) continue;
    std::uint64_t turns = turns_[i].count.load(std::memory_order_relaxed);
    // Asleep in its poller (nothing to do) is not stuck.
    if (turns != c.last_turns || mailboxes_.asleep(i)) {
      c.last_turns = turns;
      c.progress_ns = now;
      continue;
    }
    if (now - c.progress_ns < options_.restart_stuck_ms * 1'000'000) continue;
    log_line("mnv: shard %zu (process %d) made no progress for %lld ms (a micro-thread that never yields, or a hang): "
             "killing it",
             i, c.pid, static_cast<long long>((now - c.progress_ns) / 1'000'000));
    c.killed_as_stuck = true;
    ::kill(c.pid, SIGKILL);
  }
}

}  // namespace mnv
