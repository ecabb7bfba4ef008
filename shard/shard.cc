// shard/shard.cc — a shard (its kernel and hooks, cross-shard calls and posts), what every
// launcher shares (ShardSet), and CrossCallOp. The launchers themselves are shard_threads.cc and
// shard_processes.cc.
#include "shard/shard.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>

#include "mem/critical_section.h"
#include "mem/log.h"
#include "runtime/clock.h"
#include "runtime/process.h"
#include "runtime/trap.h"
#include "shard/cross_call.h"
#include "shard/shard_processes.h"
#include "shard/shard_threads.h"

namespace mnv {

namespace {
constinit thread_local Shard* tl_shard = nullptr;
// A call id (the message's id, and the handle CrossCallOp keeps): gen << kCallBits | slot index.
constexpr std::uint32_t kCallBits = 12;
static_assert((1u << kCallBits) == Shard::kMaxCalls);
constexpr std::uint32_t kGenMask = (1u << (32 - kCallBits)) - 1;  // a gen has 20 bits
std::uint32_t call_id(std::uint32_t gen, std::uint32_t index) { return (gen << kCallBits) | index; }
std::uint32_t call_index(std::uint64_t id) { return static_cast<std::uint32_t>(id) & ((1u << kCallBits) - 1); }
std::uint32_t call_gen(std::uint64_t id) { return static_cast<std::uint32_t>(id >> kCallBits) & kGenMask; }
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
  // (4096 calls per slot apart per incarnation.)
  for (Call& c : calls_) c.gen = (incarnation << kCallBits) & kGenMask;
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
  return send(to, make_post(to, kind, payload, len));
}

bool Shard::send(std::size_t to, const ShardMessage& m) {
  bool ok = set_->mailboxes().send(index_, to, m);
  if (const ShardMetrics* sm = set_->options().shard_metrics) kernel_->metrics().add(ok ? sm->mail_sent : sm->mail_refused);
  return ok;
}

std::size_t Shard::receive(ShardMessage* out, std::size_t max) {
  std::size_t n = set_->mailboxes().receive(index_, out, max);
  if (n > 0) {
    if (const ShardMetrics* sm = set_->options().shard_metrics) kernel_->metrics().add(sm->mail_received, n);
  }
  return n;
}

bool Shard::post_fd(std::size_t to, std::uint32_t kind, int fd, const void* payload, std::size_t len) {
  CriticalSection cs;  // (called from micro-threads: see mem/critical_section.h)
  MNV_ASSERT(fd >= 0);
  ShardMessage m = make_post(to, kind, payload, len);
  m.kind |= kFdBit;
  return set_->send_fd(index_, to, m, fd);
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
  c.gen = (c.gen + 1) & kGenMask;
  ShardMessage m = request;
  m.id = call_id(c.gen, i);
  ++stats_.calls;
  if (set_->options().shard_metrics != nullptr) c.started_ns = monotonic_ns();
  if (backlog_len_ == 0 && send(to, m)) {
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
  return call_id(c.gen, i);
}

void Shard::cancel_call(std::uint32_t call) {
  CriticalSection cs;  // (called from micro-threads: see mem/critical_section.h)
  std::uint32_t i = call_index(call);
  Call& c = calls_[i];
  if (!c.live || c.gen != call_gen(call)) return;
  free_call(i);  // a late reply finds it dead; a backlogged request is still sent, its reply dropped
}

void Shard::complete_call(std::uint32_t i, const ShardMessage& reply, int error) {
  Call& c = calls_[i];
  kernel_->open_process(c.slot);  // (the caller's heap may be hidden between its dispatches)
  c.op->complete(reply, error);
  if (const ShardMetrics* sm = set_->options().shard_metrics; sm != nullptr && error == 0) {
    kernel_->metrics().record(sm->call_latency, static_cast<std::uint64_t>(monotonic_ns() - c.started_ns));
  }
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
  if (m.kind & kReplyBit) {
    std::uint32_t i = call_index(m.id);
    std::uint32_t gen = call_gen(m.id);
    if (i == 0 || i >= kMaxCalls) return;
    Call& c = calls_[i];
    if (!c.live || c.gen != gen) return;  // timed out meanwhile: dropped
    ++stats_.replies;
    complete_call(i, m, (m.kind & kNoHandlerBit) ? ENOSYS : 0);
    return;
  }
  if (m.kind == kFdBit) {  // (processes) fds were posted to this shard's socket
    set_->receive_fds(*this);
    return;
  }
  if (m.kind & kPostBit) {
    deliver_post(m);
    return;
  }
  ShardMessage reply{};
  if (!run_local(m, &reply)) {
    reply.kind = m.kind | kReplyBit | kNoHandlerBit;
    reply.id = m.id;
  }
  if (outbox_len_ == 0 && send(m.from, reply)) return;
  MNV_ASSERT(outbox_len_ < outbox_.size());
  reply.from = m.from;  // while queued here: the requester it goes back to
  outbox_[(outbox_head_ + outbox_len_++) % outbox_.size()] = reply;
}

void Shard::deliver_post(const ShardMessage& m) {
  std::uint32_t kind = m.kind & ~(kPostBit | kFdBit);
  if (kind < kMaxKinds && handlers_[kind].post != nullptr) {
    handlers_[kind].post(m, handlers_[kind].ctx);
  } else if (int fd = posted_fd(m); fd >= 0) {
    ::close(fd);  // nobody takes it
  }
}

void Shard::fail_calls_to(std::size_t to) {
  // Whatever `to` took and never answered is lost. A call whose request is still in the ring may
  // yet run on the restarted shard; its reply is then dropped (the call is gone).
  for (std::uint32_t i = 1; i < kMaxCalls; ++i) {
    if (calls_[i].live && calls_[i].to == to) complete_call(i, ShardMessage{}, ECONNRESET);
  }
}

void Shard::retry_backlog() {
  while (outbox_len_ > 0) {
    const ShardMessage& r = outbox_[outbox_head_];
    if (!send(r.from, r)) break;  // send() stamps our index as the sender
    outbox_head_ = (outbox_head_ + 1) % outbox_.size();
    --outbox_len_;
  }
  while (backlog_len_ > 0) {
    ShardMessage& m = requests_[backlog_head_];
    std::size_t to = request_to_[backlog_head_];
    if (!send(to, m)) break;
    std::uint32_t i = call_index(m.id);
    if (calls_[i].live) calls_[i].sent = true;
    backlog_head_ = (backlog_head_ + 1) % requests_.size();
    --backlog_len_;
  }
}

void Shard::on_turn() {
  set_->on_turn(*this);
  if (!stop_told_ && kernel_->stopping()) {
    stop_told_ = true;
    if (set_->options().on_stop) set_->options().on_stop(*this);
  }
  ShardMessage batch[32];
  // Bounded per turn, and not while replies are backed up (the senders then wait: back-pressure).
  for (int rounds = 0; rounds < 8 && outbox_len_ < outbox_.size() / 2; ++rounds) {
    std::size_t n = receive(batch, 32);
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
  kc.isolation = a.isolation;
  kc.grace_ns = a.grace_ms * 1'000'000;
  kc.max_processes = a.pool_size + 64;
  kc.max_fds = set_->options().max_fds;
  kc.completion_io = set_->options().completion_io;
  kc.recv_multishot = set_->options().recv_multishot;
  kc.max_run_ns = set_->options().max_run_ms * 1'000'000;
  if (const metrics::Registry* m = set_->options().metrics) {
    if (m->shards() != static_cast<int>(set_->size())) {
      *error = "shard " + std::to_string(index_) + ": the metrics registry has " + std::to_string(m->shards()) +
               " shard(s), the set " + std::to_string(set_->size()) + ": make it with Registry(shards)";
      return false;
    }
    kc.metrics = m->shard(static_cast<int>(index_));
    kc.kernel_metrics = set_->options().kernel_metrics;
    m->reset_gauges(static_cast<int>(index_));  // (a restarted shard's predecessor's are stale)
  }
  set_->configure_kernel(index_, &kc);
  if (kc.max_fds == 0) {
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    kc.max_fds = r.rlim_cur > 1'048'576 ? 1'048'576 : (r.rlim_cur < 1024 ? 1024 : r.rlim_cur);
  }
  std::unique_ptr<Kernel> kernel = Kernel::create(kc);
  set_->swap_kernel(*this, kernel);
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
  set_->attach(*this);
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
      set_->before_run(*this);
      kernel_->run();
      set_->loop_ended(*this);
      if (set_->options().fini) set_->options().fini(*this);
      outcome = Outcome::kRan;
    }
  }
  std::unique_ptr<Kernel> done;
  set_->swap_kernel(*this, done);
  done.reset();  // (outside any lock of the set)
  tl_shard = nullptr;
  return outcome;
}

ShardSet::ShardSet(ShardSetOptions options)
    : options_(std::move(options)),
      mailboxes_(static_cast<std::size_t>(options_.affinity.shards), options_.mailbox_capacity) {}

ShardSet::~ShardSet() = default;

void ShardSet::make_shards() {
  for (int i = 0; i < options_.affinity.shards; ++i) {
    auto index = static_cast<std::size_t>(i);
    shards_.push_back(std::unique_ptr<Shard>(new Shard(this, index, options_.affinity.cpus[index])));
  }
}

bool ShardSet::runs_as_processes(const AffinityConfig& affinity) {
  switch (affinity.shard_mode) {
    case ShardMode::kThreads: return false;
    case ShardMode::kProcesses: return true;
    case ShardMode::kAuto:
      return affinity.shards > 1 &&
             (affinity.isolation == IsolationMode::kMprotect || affinity.isolation == IsolationMode::kStrict);
  }
  return false;
}

std::unique_ptr<ShardSet> ShardSet::start(const Topology& topology, ShardSetOptions options, std::string* error) {
  MNV_ASSERT(options.affinity.shards >= 1 &&
             options.affinity.cpus.size() == static_cast<std::size_t>(options.affinity.shards));
  if (runs_as_processes(options.affinity)) return ShardProcesses::start(topology, std::move(options), error);
  return ShardThreads::start(topology, std::move(options), error);
}

// ---- CrossCallOp ------------------------------------------------------------------------------

CrossCallOp::CrossCallOp(std::size_t to, std::uint32_t kind, const void* payload, std::size_t len,
                         std::int64_t timeout_ns, std::source_location where, int* status)
    : BlockingOp(where), to_(to), timeout_ns_(timeout_ns), status_(status) {
  if (status != nullptr) *status = 0;
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

CrossCallOp::R CrossCallOp::attempt() {
  if (done_) {
    if (error_ == 0) return R::kDone;
    reply_ = ShardMessage{};
    if (status_ != nullptr) {
      *status_ = error_;
      return R::kDone;
    }
    return fail(error_);
  }
  if (!staged_) {
    staged_ = true;
    call_ = Shard::current()->begin_call(&this_thread(), this, to_, request_);
    if (call_ == 0 && status_ != nullptr) {
      *status_ = ENOBUFS;
      return R::kDone;
    }
    if (call_ == 0) return fail(ENOBUFS);
  }
  return R::kWait;  // (block_ names no fd: the reply readies the thread, or the deadline passes)
}

void CrossCallOp::on_woken(const Block& b) {
  if (b.timed_out && !done_ && call_ != 0) {  // ETIMEDOUT follows: a late reply finds no call
    Shard::current()->cancel_call(call_);
    call_ = 0;
    reply_ = ShardMessage{};
    if (status_ != nullptr) {  // cross_call_status(): attempt() reports it
      error_ = ETIMEDOUT;
      done_ = true;
    }
  }
}

}  // namespace mnv
