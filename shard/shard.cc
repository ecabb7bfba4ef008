#include "shard/shard.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "mem/log.h"
#include "runtime/process.h"
#include "runtime/raise.h"
#include "runtime/trap.h"
#include "shard/cross_call.h"

namespace mnv {

namespace {
constinit thread_local Shard* tl_shard = nullptr;
constexpr std::uint32_t kCallBits = 12;  // call id = gen << 12 | index (kMaxCalls = 4096)
static_assert((1u << kCallBits) == Shard::kMaxCalls);
}  // namespace

Shard* Shard::current() { return tl_shard; }

Shard::Shard(ShardSet* set, std::size_t index, int cpu)
    : set_(set),
      index_(index),
      cpu_(cpu),
      calls_(kMaxCalls + 1),
      requests_(kMaxCalls),
      request_to_(kMaxCalls),
      outbox_(set->options().mailbox_capacity * (set->options().affinity.shards + 1)) {
  // Free list of call slots 1..kMaxCalls-1 (slot 0 is "no call").
  for (std::uint32_t i = 1; i < kMaxCalls; ++i) calls_[i].next_free = i + 1 < kMaxCalls ? i + 1 : 0;
  free_call_ = 1;
}

void Shard::handle(std::uint32_t kind, CrossHandler fn, void* ctx) {
  MNV_ASSERT(kind < kMaxKinds);
  handlers_[kind].call = fn;
  handlers_[kind].ctx = ctx;
}

void Shard::on_post(std::uint32_t kind, PostHandler fn, void* ctx) {
  MNV_ASSERT(kind < kMaxKinds);
  handlers_[kind].post = fn;
  handlers_[kind].ctx = ctx;
}

void Shard::fail_calls_to_the_dead() {
  deaths_seen_ = set_->deaths_->total.load(std::memory_order_acquire);
  for (std::size_t j = 0; j < set_->size(); ++j) {
    std::uint32_t died = set_->died_[j].load(std::memory_order_acquire);
    if (died == died_seen_[j]) continue;
    died_seen_[j] = died;
    // Shard j's process died since we last looked: whatever it took and never answered is lost.
    // Every call to it ends now (ECONNRESET); one whose request is still in the ring may yet run
    // on the restarted shard, and its reply is then dropped (the call is gone).
    for (std::uint32_t i = 1; i < kMaxCalls; ++i) {
      Call& c = calls_[i];
      if (!c.live || c.to != j) continue;
      kernel_->open_process(c.slot);
      c.op->complete(ShardMessage{}, ECONNRESET);
      kernel_->ready_thread(c.slot, c.caller);
      c.live = false;
      c.next_free = free_call_;
      free_call_ = i;
    }
  }
}

void Shard::seed_calls(std::uint32_t incarnation) {
  // A reply to the last incarnation's call may still be in a ring: start this one's call
  // generations elsewhere (a gen is 20 bits; 4096 calls per slot apart per incarnation).
  for (Call& c : calls_) c.gen = (incarnation << kCallBits) & ((1u << (32 - kCallBits)) - 1);
}

bool Shard::post(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len) {
  MNV_ASSERT(to < set_->size() && to != index_ && kind < kMaxKinds && len <= kShardPayload);
  ShardMessage m{};
  m.kind = kind | kPostBit;
  if (len > 0) std::memcpy(m.payload, payload, len);
  return set_->mailboxes().send(index_, to, m);
}

bool Shard::post_fd(std::size_t to, std::uint32_t kind, int fd, const void* payload, std::size_t len) {
  MNV_ASSERT(to < set_->size() && to != index_ && kind < kMaxKinds && len <= kShardPayload && fd >= 0);
  ShardMessage m{};
  m.kind = kind | kPostBit | kFdBit;
  m.from = static_cast<std::uint32_t>(index_);
  if (len > 0) std::memcpy(m.payload, payload, len);
  Mailboxes& mail = set_->mailboxes();
  if (!set_->processes_) {
    m.id = static_cast<std::uint64_t>(fd);  // one fd table: the number is the fd
    return mail.send(index_, to, m);
  }
  // The wake-up first (it is what makes `to` read its socket; one with nothing to read is
  // harmless), then the message and the fd in one datagram, so they cannot be paired wrongly.
  ShardMessage hint{};
  hint.kind = kFdBit;
  if (!mail.send(index_, to, hint)) return false;
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
  if (::sendmsg(set_->fd_sockets_[to][1], &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof m)) {
    return false;
  }
  ::close(fd);  // (`to` has its own now)
  return true;
}

void Shard::receive_fds() {
  for (;;) {
    ShardMessage m;
    iovec iov{&m, sizeof m};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(set_->fd_sockets_[index_][0], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
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
    std::uint32_t kind = m.kind & ~(kPostBit | kFdBit);
    if (kind < kMaxKinds && handlers_[kind].post != nullptr) {
      handlers_[kind].post(m, handlers_[kind].ctx);
    } else {
      ::close(fd);  // nobody takes it
    }
  }
}

std::uint32_t Shard::begin_call(ThreadRef caller, CrossCallOp* op, std::size_t to, const ShardMessage& request) {
  if (free_call_ == 0) return 0;
  std::uint32_t i = free_call_;
  Call& c = calls_[i];
  free_call_ = c.next_free;
  c.caller = caller;
  c.op = op;
  c.slot = caller->process->kernel_slot();
  c.to = static_cast<std::uint32_t>(to);
  c.live = true;
  c.gen = (c.gen + 1) & ((1u << (32 - kCallBits)) - 1);
  ShardMessage m = request;
  m.id = (std::uint64_t{c.gen} << kCallBits) | i;
  ++stats_.calls;
  if (backlog_len_ == 0 && set_->mailboxes().send(index_, to, m)) {
    c.sent = true;
  } else {
    // Back-pressure: the ring is full; the call waits here (within its deadline) for room.
    c.sent = false;
    std::size_t slot = (backlog_head_ + backlog_len_) % requests_.size();
    requests_[slot] = m;
    request_to_[slot] = to;
    ++backlog_len_;
    ++stats_.backlogged;
  }
  return static_cast<std::uint32_t>(m.id & ((1u << kCallBits) - 1)) | (c.gen << kCallBits);
}

void Shard::cancel_call(std::uint32_t call) {
  std::uint32_t i = call & ((1u << kCallBits) - 1);
  Call& c = calls_[i];
  if (!c.live || c.gen != call >> kCallBits) return;
  c.live = false;  // a late reply finds it dead; a backlogged request is still sent, its reply dropped
  c.next_free = free_call_;
  free_call_ = i;
}

bool Shard::run_local(const ShardMessage& request, ShardMessage* reply) {
  std::uint32_t kind = request.kind;
  if (kind >= kMaxKinds || handlers_[kind].call == nullptr) return false;
  *reply = ShardMessage{};
  reply->kind = kind | kReplyBit;
  reply->id = request.id;
  handlers_[kind].call(request, reply, handlers_[kind].ctx);
  ++stats_.requests_served;
  return true;
}

void Shard::deliver(const ShardMessage& m) {
  Mailboxes& mail = set_->mailboxes();
  if (m.kind & kReplyBit) {
    std::uint32_t i = static_cast<std::uint32_t>(m.id & ((1u << kCallBits) - 1));
    std::uint32_t gen = static_cast<std::uint32_t>(m.id >> kCallBits);
    if (i == 0 || i >= kMaxCalls) return;
    Call& c = calls_[i];
    if (!c.live || c.gen != gen) return;  // timed out meanwhile: dropped
    ++stats_.replies;
    kernel_->open_process(c.slot);
    c.op->complete(m, (m.kind & kNoHandlerBit) ? ENOSYS : 0);
    kernel_->ready_thread(c.slot, c.caller);
    c.live = false;
    c.next_free = free_call_;
    free_call_ = i;
    return;
  }
  if (m.kind == kFdBit) {  // (processes) fds were posted to this shard's socket
    receive_fds();
    return;
  }
  if (m.kind & kPostBit) {
    std::uint32_t kind = m.kind & ~(kPostBit | kFdBit);
    if (kind < kMaxKinds && handlers_[kind].post != nullptr) {
      handlers_[kind].post(m, handlers_[kind].ctx);
    } else if (int fd = posted_fd(m); fd >= 0) {
      ::close(fd);  // nobody takes it
    }
    return;
  }
  ShardMessage reply{};
  if (!run_local(m, &reply)) {
    reply.kind = m.kind | kReplyBit | kNoHandlerBit;
    reply.id = m.id;
  }
  if (outbox_len_ == 0 && mail.send(index_, m.from, reply)) return;
  MNV_ASSERT(outbox_len_ < outbox_.size());
  reply.from = m.from;  // while queued here: the requester it goes back to
  outbox_[(outbox_head_ + outbox_len_++) % outbox_.size()] = reply;
}

void Shard::retry_backlog() {
  Mailboxes& mail = set_->mailboxes();
  while (outbox_len_ > 0) {
    const ShardMessage& r = outbox_[outbox_head_];
    if (!mail.send(index_, r.from, r)) break;  // send() stamps our index as the sender
    outbox_head_ = (outbox_head_ + 1) % outbox_.size();
    --outbox_len_;
  }
  while (backlog_len_ > 0) {
    ShardMessage& m = requests_[backlog_head_];
    std::size_t to = request_to_[backlog_head_];
    if (!mail.send(index_, to, m)) break;
    std::uint32_t i = static_cast<std::uint32_t>(m.id & ((1u << kCallBits) - 1));
    if (calls_[i].live) calls_[i].sent = true;
    backlog_head_ = (backlog_head_ + 1) % requests_.size();
    --backlog_len_;
  }
}

void Shard::on_turn() {
  if (set_->processes_) {
    std::atomic<std::uint64_t>& turns = set_->beats_[index_].turns;  // (the watchdog's heartbeat)
    turns.store(turns.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (!stop_seen_ && set_->stop_requested()) {  // request_stop() in the parent
      stop_seen_ = true;
      kernel_->request_stop();
    }
    if (set_->deaths_->total.load(std::memory_order_acquire) != deaths_seen_) fail_calls_to_the_dead();
  }
  Mailboxes& mail = set_->mailboxes();
  ShardMessage batch[32];
  // Bounded per turn, and not while replies are backed up (the senders then wait: back-pressure).
  for (int rounds = 0; rounds < 8 && outbox_len_ < outbox_.size() / 2; ++rounds) {
    std::size_t n = mail.receive(index_, batch, 32);
    for (std::size_t k = 0; k < n; ++k) deliver(batch[k]);
    if (n < 32) break;
  }
  retry_backlog();
}

bool Shard::before_wait(bool will_block) {
  Mailboxes& mail = set_->mailboxes();
  mail.flush(index_);
  if (!will_block) return true;
  if (backlog_len_ > 0 || outbox_len_ > 0) return false;  // keep retrying until the rings drain
  mail.prepare_sleep(index_);
  if (mail.has_messages(index_)) {
    mail.cancel_sleep(index_);
    return false;
  }
  return true;
}

bool Shard::set_up(const Topology& topology, std::string* error) {
  char name[16];
  std::snprintf(name, sizeof name, "shard-%zu", index_);
  ::pthread_setname_np(::pthread_self(), name);
  if (!topology.pin_current_thread(cpu_, error)) {
    *error = "shard " + std::to_string(index_) + ": " + *error;
    return false;
  }
  KernelConfig kc;
  const AffinityConfig& a = set_->options().affinity;
  kc.poller = a.poller;
  switch (a.isolation) {
    case Isolation::kOff: kc.isolation = IsolationMode::kOff; break;
    case Isolation::kMprotect: kc.isolation = IsolationMode::kMprotect; break;
    case Isolation::kStrict: kc.isolation = IsolationMode::kStrict; break;
    case Isolation::kPkeys: kc.isolation = IsolationMode::kPkeys; break;
  }
  kc.grace_ns = a.grace_ms * 1'000'000;
  kc.max_processes = a.pool_size + 64;
  kc.max_fds = set_->options().max_fds;
  kc.completion_io = set_->options().completion_io;
  kc.recv_multishot = set_->options().recv_multishot;
  if (set_->processes_) kc.wake_fd = set_->wake_fds_[index_];
  if (kc.max_fds == 0) {
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    kc.max_fds = r.rlim_cur > 1'048'576 ? 1'048'576 : (r.rlim_cur < 1024 ? 1024 : r.rlim_cur);
  }
  std::unique_ptr<Kernel> kernel = Kernel::create(kc);
  swap_kernel(kernel);
  if (kernel_ == nullptr) {
    *error = "shard " + std::to_string(index_) + ": the kernel could not be created";
    return false;
  }
  // The kernel heap on this CPU's NUMA node. (Heap pools are created and first touched on this
  // pinned thread too, so the default local policy already places their pages on it.)
  const Segment& kseg = kernel_->heap_segment();
  std::string bind_error;
  if (topology.bind_memory(kseg.base(), kseg.bytes(), topology.numa_node_of(cpu_), &bind_error) == MemBind::kFailed) {
    log_line("mnv: shard %zu: kernel heap not bound to its NUMA node: %s", index_, bind_error.c_str());
  }
  install_trap_handlers();  // this thread's alternate signal stack
  tl_shard = this;
  KernelHooks hooks;
  hooks.ctx = this;
  hooks.on_turn = [](void* s) { static_cast<Shard*>(s)->on_turn(); };
  hooks.before_wait = [](void* s, bool block) { return static_cast<Shard*>(s)->before_wait(block); };
  hooks.after_sleep = [](void* s) {
    auto* shard = static_cast<Shard*>(s);
    shard->set_->mailboxes().wake_done(shard->index_);
  };
  kernel_->set_hooks(hooks);
  if (set_->processes_) {  // deaths before this incarnation are not news to it
    deaths_seen_ = set_->deaths_->total.load(std::memory_order_acquire);
    died_seen_.resize(set_->size());
    for (std::size_t j = 0; j < set_->size(); ++j) died_seen_[j] = set_->died_[j].load(std::memory_order_acquire);
  }
  // (Processes: the set made every shard's waker, an eventfd write, before forking.)
  if (!set_->processes_) {
    set_->mailboxes().set_waker(index_, [](void* p) { static_cast<Poller*>(p)->wake(); }, &kernel_->poller());
  }
  return true;
}

Shard::Outcome Shard::run(const Topology& topology) {
  std::string error;
  Outcome outcome = Outcome::kNotStarted;
  if (!set_up(topology, &error)) {
    set_->report(index_, false, error);
  } else if (set_->await_turn(index_)) {
    bool ok = true;
    if (set_->options().init) ok = set_->options().init(*this, &error);
    set_->report(index_, ok, ok ? "" : "shard " + std::to_string(index_) + ": " + error);
    if (ok && set_->await_go()) {
      // (Processes: a restarted shard takes what was posted to the one that died.)
      if (set_->processes_) receive_fds();
      kernel_->run();
      if (set_->options().fini) set_->options().fini(*this);
      outcome = Outcome::kRan;
    }
  }
  std::unique_ptr<Kernel> done;
  swap_kernel(done);
  done.reset();  // (outside the set's mutex)
  tl_shard = nullptr;
  return outcome;
}

void Shard::swap_kernel(std::unique_ptr<Kernel>& kernel) {
  if (set_->processes_) {
    kernel_.swap(kernel);
    return;
  }
  // Threads: request_stop() and a failing shard's report() reach kernel_ from other threads
  // under the set's mutex, so it changes only under it.
  std::lock_guard<std::mutex> lock(set_->mu_);
  kernel_.swap(kernel);
}

ShardSet::ShardSet(ShardSetOptions options)
    : options_(std::move(options)),
      processes_(runs_as_processes(options_.affinity)),
      mailboxes_(static_cast<std::size_t>(options_.affinity.shards), options_.mailbox_capacity) {}

bool ShardSet::runs_as_processes(const AffinityConfig& affinity) {
  switch (affinity.shard_mode) {
    case ShardMode::kThreads: return false;
    case ShardMode::kProcesses: return true;
    case ShardMode::kAuto:
      return affinity.shards > 1 &&
             (affinity.isolation == Isolation::kMprotect || affinity.isolation == Isolation::kStrict);
  }
  return false;
}

namespace {

constexpr std::size_t kMaxReport = 1024;  // a start-up report: ok byte + error text (< PIPE_BUF)

// One read: a start-up report is one write of under PIPE_BUF bytes, so one read takes it whole.
ssize_t read_once(int fd, void* buf, std::size_t n) {
  for (;;) {
    ssize_t r = ::read(fd, buf, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

void write_eventfd(void* fd) {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(static_cast<int>(reinterpret_cast<std::intptr_t>(fd)), &one, sizeof one);
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("died of SIG") + (name != nullptr ? name : "?") + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended (status " + std::to_string(status) + ")";
}

}  // namespace

void ShardSet::report(std::size_t index, bool ok, const std::string& error) {
  if (processes_) {  // in the shard's process: one write (atomic under PIPE_BUF), read by fork_shard
    char buf[kMaxReport];
    std::size_t n = error.size() < kMaxReport - 1 ? error.size() : kMaxReport - 1;
    buf[0] = ok ? 1 : 0;
    std::memcpy(buf + 1, error.data(), n);
    [[maybe_unused]] ssize_t w = ::write(report_fd_, buf, n + 1);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok) {
    if (!failed_) error_ = error;
    failed_ = true;
    for (auto& s : shards_) {
      if (s->kernel_ != nullptr && s->index_ != index) s->kernel_->request_stop();
    }
  } else {
    ++started_;
    if (started_ == shards_.size()) go_ = true;
  }
  cv_.notify_all();
}

bool ShardSet::await_turn(std::size_t index) {
  if (processes_) return true;  // forked only once the previous shard reported
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return failed_ || started_ == index; });
  return !failed_;
}

bool ShardSet::await_go() {
  if (processes_) {
    char c = 0;
    return read_once(go_fd_, &c, 1) == 1 && c == 'g';  // EOF: the start was called off
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return failed_ || go_; });
  return !failed_;
}

bool ShardSet::fork_shard(std::size_t i, std::string* error) {
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
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);  // the parent died before the line above
    report_fd_ = report[1];
    go_fd_ = go[0];
    shards_[i]->seed_calls(c.incarnation);
    Shard::Outcome outcome = shards_[i]->run(*topology_);
    std::fflush(nullptr);
    ::_exit(outcome == Shard::Outcome::kRan ? 0 : 1);
  }
  ::close(report[1]);
  ::close(go[0]);
  c.pid = pid;
  c.reaped = false;
  c.watchdog_killed = false;
  c.last_turns = beats_[i].turns.load(std::memory_order_relaxed);
  c.progress_ns = monotonic_ns();
  c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  c.report_fd = report[0];
  c.go_fd = go[1];
  if (c.pidfd < 0) {
    *error = std::string("shard processes: pidfd_open: ") + std::strerror(errno);
    return false;
  }
  char buf[kMaxReport];
  ssize_t n = read_once(c.report_fd, buf, sizeof buf);  // its report, or EOF if it died first
  if (n > 0 && buf[0] == 1) return true;
  if (n > 0) {
    error->assign(buf + 1, static_cast<std::size_t>(n - 1));
    return false;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  c.reaped = true;
  *error = "shard " + std::to_string(i) + ": its process " + describe_exit(status) + " during start-up";
  return false;
}

bool ShardSet::restart(std::size_t i, int status) {
  std::string how = children_[i].watchdog_killed
                        ? "made no progress for " + std::to_string(options_.watchdog_ms) + " ms and was killed by the watchdog"
                        : describe_exit(status);
  bool restarted = restart(i, how);
  if (options_.on_death) options_.on_death(i, how, restarted);
  return restarted;
}

bool ShardSet::restart(std::size_t i, const std::string& how) {
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

void ShardSet::call_off_start() {
  for (Child& c : children_) {
    if (c.go_fd >= 0) ::close(c.go_fd);  // its await_go() reads EOF: it stops without running
    c.go_fd = -1;
  }
  for (Child& c : children_) {
    if (c.pid <= 0 || c.reaped) continue;
    int status;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    c.reaped = true;
  }
}

std::unique_ptr<ShardSet> ShardSet::start(const Topology& topology, ShardSetOptions options, std::string* error) {
  MNV_ASSERT(options.affinity.shards >= 1 &&
             options.affinity.cpus.size() == static_cast<std::size_t>(options.affinity.shards));
  std::unique_ptr<ShardSet> set(new ShardSet(std::move(options)));
  for (int i = 0; i < set->options_.affinity.shards; ++i) {
    set->shards_.push_back(std::unique_ptr<Shard>(new Shard(set.get(), static_cast<std::size_t>(i),
                                                            set->options_.affinity.cpus[static_cast<std::size_t>(i)])));
  }
  if (set->processes_) {
    set->shared_ = std::make_unique<SharedObject<SharedState>>();
    std::size_t n = set->shards_.size();
    std::size_t bytes = SharedRegion::grow(0, sizeof(Beat) * n, alignof(Beat));
    bytes = SharedRegion::grow(bytes, sizeof(Deaths), alignof(Deaths));
    bytes = SharedRegion::grow(bytes, sizeof(std::atomic<std::uint32_t>) * n, alignof(std::atomic<std::uint32_t>));
    set->beats_region_ = std::make_unique<SharedRegion>(bytes);
    set->beats_ = set->beats_region_->make_array<Beat>(n);
    set->deaths_ = set->beats_region_->make<Deaths>();
    set->died_ = set->beats_region_->make_array<std::atomic<std::uint32_t>>(n);
    for (std::size_t i = 0; i < set->shards_.size(); ++i) {
      int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd < 0) {
        *error = std::string("shard processes: eventfd: ") + std::strerror(errno);
        return nullptr;
      }
      set->wake_fds_.push_back(fd);
      set->mailboxes_.set_waker(i, write_eventfd, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
    }
    for (std::size_t i = 0; i < set->shards_.size(); ++i) {
      std::array<int, 2> pair{-1, -1};
      if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair.data()) != 0) {
        *error = std::string("shard processes: socketpair: ") + std::strerror(errno);
        return nullptr;
      }
      set->fd_sockets_.push_back(pair);
    }
    set->stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (set->stop_fd_ < 0) {
      *error = std::string("shard processes: eventfd: ") + std::strerror(errno);
      return nullptr;
    }
    set->topology_ = &topology;
    set->children_.assign(set->shards_.size(), Child{});
    for (std::size_t i = 0; i < set->shards_.size(); ++i) {
      if (!set->fork_shard(i, error)) {
        set->call_off_start();
        return nullptr;
      }
    }
    for (Child& c : set->children_) {
      char go = 'g';
      [[maybe_unused]] ssize_t w = ::write(c.go_fd, &go, 1);
    }
    Kernel::set_stop_signal_fd(set->stop_fd_);  // SIGTERM/SIGINT here: passed on by wait()
    return set;
  }
  for (auto& s : set->shards_) {
    Shard* shard = s.get();
    set->threads_.emplace_back([shard, &topology] { shard->run(topology); });
  }
  {
    std::unique_lock<std::mutex> lock(set->mu_);
    set->cv_.wait(lock, [&] { return set->failed_ || set->go_; });
    if (!set->failed_) return set;
    *error = set->error_;
  }
  for (auto& t : set->threads_) t.join();
  set->threads_.clear();
  return nullptr;
}

void ShardSet::request_stop() {
  if (processes_) {
    (*shared_)->stop.store(true, std::memory_order_release);
    for (int fd : wake_fds_) write_eventfd(reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : shards_) {
    if (s->kernel_ != nullptr) s->kernel_->request_stop();
  }
}

int ShardSet::wait() {
  if (!processes_) {
    for (auto& t : threads_) t.join();
    threads_.clear();
    return 0;
  }
  int rc = 0;
  for (;;) {
    std::vector<pollfd> fds;
    for (std::size_t i = 0; i < children_.size(); ++i) {
      Child& c = children_[i];
      if (c.reaped) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.reaped = true;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;  // it stopped when asked
        // The others fail their calls to it at their next loop turn (woken for it).
        died_[i].fetch_add(1, std::memory_order_release);
        deaths_->total.fetch_add(1, std::memory_order_release);
        for (std::size_t j = 0; j < children_.size(); ++j) {
          if (j != i) write_eventfd(reinterpret_cast<void*>(static_cast<std::intptr_t>(wake_fds_[j])));
        }
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
    // With a watchdog, a look at every shard's progress a few times per watchdog period.
    int timeout_ms = options_.watchdog_ms > 0 ? static_cast<int>(std::max<std::int64_t>(options_.watchdog_ms / 4, 1)) : -1;
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      panic("mnv: shard processes: poll: %s", std::strerror(errno));
    }
    if (fds.back().revents & POLLIN) {
      std::uint64_t count;
      [[maybe_unused]] ssize_t r = ::read(stop_fd_, &count, sizeof count);
      request_stop();
    }
    if (options_.watchdog_ms > 0) watch(monotonic_ns());
  }
  return rc;
}

void ShardSet::watch(std::int64_t now) {
  for (std::size_t i = 0; i < children_.size(); ++i) {
    Child& c = children_[i];
    if (c.reaped || c.watchdog_killed) continue;
    std::uint64_t turns = beats_[i].turns.load(std::memory_order_relaxed);
    // Asleep in its poller (nothing to do) is not stuck.
    if (turns != c.last_turns || mailboxes_.asleep(i)) {
      c.last_turns = turns;
      c.progress_ns = now;
      continue;
    }
    if (now - c.progress_ns < options_.watchdog_ms * 1'000'000) continue;
    log_line("mnv: shard %zu (process %d) made no progress for %lld ms (a micro-thread that never yields, or a hang): "
             "killing it",
             i, c.pid, static_cast<long long>((now - c.progress_ns) / 1'000'000));
    c.watchdog_killed = true;
    ::kill(c.pid, SIGKILL);
  }
}

ShardSet::~ShardSet() {
  if (processes_) {
    if (std::any_of(children_.begin(), children_.end(), [](const Child& c) { return c.pid > 0 && !c.reaped; })) {
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
    return;
  }
  if (!threads_.empty()) {
    request_stop();
    wait();
  }
}

// ---- CrossCallOp ------------------------------------------------------------------------------

CrossCallOp::CrossCallOp(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len,
                         std::int64_t timeout_ns, std::source_location where)
    : to_(to), timeout_ns_(timeout_ns), where_(where) {
  request_.kind = kind;
  if (len <= kShardPayload && payload != nullptr) std::memcpy(request_.payload, payload, len);
  Shard* shard = Shard::current();
  if (shard == nullptr || to >= shard->set().size() || kind >= Shard::kMaxKinds || len > kShardPayload) {
    error_ = EINVAL;
    done_ = true;
    return;
  }
  if (to == shard->index()) {  // a call to oneself runs the handler now
    if (!shard->run_local(request_, &reply_)) error_ = ENOSYS;
    done_ = true;
  }
}

CrossCallOp::~CrossCallOp() {
  if (call_ != 0) {
    if (Shard* shard = Shard::current()) shard->cancel_call(call_);
  }
}

std::coroutine_handle<> CrossCallOp::raise_now(ThreadState& t, int code) {
  reply_ = ShardMessage{};
  return t.raise(h_, Error{.code = code, .where = where_});
}

std::coroutine_handle<> CrossCallOp::await_suspend(std::coroutine_handle<> h) noexcept {
  h_ = h;
  ThreadState& t = this_thread();
  t.resume_at = h;
  if (done_) return raise_now(t, error_);
  Shard& shard = *Shard::current();
  call_ = shard.begin_call(&t, this, to_, request_);
  if (call_ == 0) return raise_now(t, ENOBUFS);
  block_ = Block{};
  if (timeout_ns_ > 0) block_.deadline_ns = monotonic_ns() + timeout_ns_;
  t.op = this;
  t.process->block(&t, &block_);
  return std::noop_coroutine();
}

Op::Step CrossCallOp::step() {
  ThreadState& t = this_thread();
  int code = 0;
  if (done_) {
    code = error_;
  } else if (block_.timed_out) {
    Shard::current()->cancel_call(call_);
    call_ = 0;
    code = ETIMEDOUT;
  } else {  // spurious: keep waiting
    block_.clear();
    t.process->block(&t, &block_);
    return Step::kBlocked;
  }
  t.op = nullptr;
  if (code == 0) {
    t.resume_at = h_;
    return Step::kResume;
  }
  bool ends = !t.finally_at || t.in_finally;
  raise_now(t, code);
  return ends ? Step::kEnded : Step::kResume;
}

}  // namespace mnv
