// shard/shard.cc — a shard (its kernel and hooks, cross-shard calls and posts) and the ShardSet
// with shards as threads; what is particular to shards as processes is in shard_processes.cc.
#include "shard/shard.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>

#include "mem/critical_section.h"
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

void Shard::seed_calls(std::uint32_t incarnation) {
  // A reply to the last incarnation's call may still be in a ring: start this one's call
  // generations elsewhere (a gen is 20 bits; 4096 calls per slot apart per incarnation).
  for (Call& c : calls_) c.gen = (incarnation << kCallBits) & ((1u << (32 - kCallBits)) - 1);
}

ShardMessage Shard::make_post(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len) const {
  MNV_ASSERT(to < set_->size() && to != index_ && kind < kMaxKinds && len <= kShardPayload);
  ShardMessage m{};
  m.kind = kind | kPostBit;
  m.from = static_cast<std::uint32_t>(index_);
  if (len > 0) std::memcpy(m.payload, payload, len);
  return m;
}

bool Shard::post(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len) {
  CriticalSection cs;  // (called from micro-threads: see mem/critical_section.h)
  return set_->mailboxes().send(index_, to, make_post(to, kind, payload, len));
}

bool Shard::post_fd(std::size_t to, std::uint32_t kind, int fd, const void* payload, std::size_t len) {
  CriticalSection cs;  // (called from micro-threads: see mem/critical_section.h)
  MNV_ASSERT(fd >= 0);
  ShardMessage m = make_post(to, kind, payload, len);
  m.kind |= kFdBit;
  if (set_->processes_) return set_->send_fd(to, m, fd);
  m.id = static_cast<std::uint64_t>(fd);  // one fd table: the number is the fd
  return set_->mailboxes().send(index_, to, m);
}


std::uint32_t Shard::begin_call(ThreadRef caller, CrossCallOp* op, std::size_t to, const ShardMessage& request) {
  CriticalSection cs;  // (called from micro-threads: see mem/critical_section.h)
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
  CriticalSection cs;  // (called from micro-threads: see mem/critical_section.h)
  std::uint32_t i = call & ((1u << kCallBits) - 1);
  Call& c = calls_[i];
  if (!c.live || c.gen != call >> kCallBits) return;
  free_call(i);  // a late reply finds it dead; a backlogged request is still sent, its reply dropped
}

void Shard::complete_call(std::uint32_t i, const ShardMessage& reply, int error) {
  Call& c = calls_[i];
  kernel_->open_process(c.slot);  // (the caller's heap may be hidden between its dispatches)
  c.op->complete(reply, error);
  kernel_->ready_thread(c.slot, c.caller);
  free_call(i);
}

void Shard::free_call(std::uint32_t i) {
  Call& c = calls_[i];
  c.live = false;
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
    complete_call(i, m, (m.kind & kNoHandlerBit) ? ENOSYS : 0);
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
    if (set_->control_->deaths.load(std::memory_order_acquire) != deaths_seen_) fail_calls_to_the_dead();
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
  kc.max_run_ns = set_->options().max_run_ms * 1'000'000;
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
    deaths_seen_ = set_->control_->deaths.load(std::memory_order_acquire);
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

void ShardSet::report(std::size_t index, bool ok, const std::string& error) {
  if (processes_) {
    report_to_parent(ok, error);
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
  if (processes_) return await_go_from_parent();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return failed_ || go_; });
  return !failed_;
}

std::unique_ptr<ShardSet> ShardSet::start(const Topology& topology, ShardSetOptions options, std::string* error) {
  MNV_ASSERT(options.affinity.shards >= 1 &&
             options.affinity.cpus.size() == static_cast<std::size_t>(options.affinity.shards));
  std::unique_ptr<ShardSet> set(new ShardSet(std::move(options)));
  for (int i = 0; i < set->options_.affinity.shards; ++i) {
    set->shards_.push_back(std::unique_ptr<Shard>(new Shard(set.get(), static_cast<std::size_t>(i),
                                                            set->options_.affinity.cpus[static_cast<std::size_t>(i)])));
  }
  if (set->processes_) return set->start_processes(topology, error) ? std::move(set) : nullptr;
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
    stop_processes();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : shards_) {
    if (s->kernel_ != nullptr) s->kernel_->request_stop();
  }
}

int ShardSet::wait() {
  if (processes_) return wait_processes();
  for (auto& t : threads_) t.join();
  threads_.clear();
  return 0;
}

ShardSet::~ShardSet() {
  if (processes_) {
    close_processes();
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
