// apps/rtb/redis_caps.cc — frequency caps shared through Redis (redis_caps.h).
#include "apps/rtb/redis_caps.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>

#include "apps/rtb/fleet_redis.h"
#include "apps/rtb/hex.h"
#include "mem/log.h"
#include "redis/connection.h"
#include "runtime/blocking_op.h"
#include "runtime/clock.h"
#include "shard/shard.h"

namespace mnv::rtb {

void CapsMetrics::add(metrics::Registry& reg) {
  on = true;
  up = reg.gauge("rtb_caps_redis_up", "1 while this shard's last frequency cap call to Redis worked, else 0.");
  const char* lookups = "Capped campaigns checked: answered from the owner's fresh cached count (hit) or not (miss).";
  hits = reg.counter("rtb_caps_cache_lookups", lookups, {{"result", "hit"}});
  misses = reg.counter("rtb_caps_cache_lookups", lookups, {{"result", "miss"}});
  const char* calls = "Frequency cap calls to Redis: reads (MGET) of stale counts, increments (INCR) of wins.";
  reads_ok = reg.counter("rtb_caps_redis_calls", calls, {{"op", "read"}, {"result", "ok"}});
  reads_failed = reg.counter("rtb_caps_redis_calls", calls, {{"op", "read"}, {"result", "failed"}});
  incrs_ok = reg.counter("rtb_caps_redis_calls", calls, {{"op", "incr"}, {"result", "ok"}});
  incrs_failed = reg.counter("rtb_caps_redis_calls", calls, {{"op", "incr"}, {"result", "failed"}});
  const char* fallbacks = "Capped campaigns Redis did not answer for in time: the owner's cached count decided, or "
                          "none was known and [rtb] cap_timeout did.";
  fallback_cache = reg.counter("rtb_caps_fallbacks", fallbacks, {{"to", "cache"}});
  fallback_none = reg.counter("rtb_caps_fallbacks", fallbacks, {{"to", "cap_timeout"}});
  latency = reg.histogram("rtb_caps_redis_seconds", "Latency of a frequency cap call to Redis (send to reply).");
}

struct RedisCaps::Job {
  enum class Kind : std::uint8_t { kRead, kIncr };
  enum class State : std::uint8_t { kFree, kQueued, kSent, kDone };
  Kind kind = Kind::kRead;
  State state = State::kFree;
  bool abandoned = false;  // nobody waits for it any more: the caps thread frees it when done
  int error = 0;
  int next = -1;           // the free list
  int n = 0;               // items
  int cmds_sent = 0;
  std::uint64_t user = 0;
  std::int64_t asked_ms = 0;
  std::int64_t sent_ns = 0;
  ThreadState* waiter = nullptr;
  std::uint32_t waiter_slot = 0;
  std::uint32_t slot[FreqCaps::kMaxCheck];
  std::uint32_t window[FreqCaps::kMaxCheck];
  std::uint32_t count[FreqCaps::kMaxCheck];
  std::uint8_t item[FreqCaps::kMaxCheck];  // (reads) the query item each stands for
  std::uint8_t key_len[FreqCaps::kMaxCheck];
  char keys[FreqCaps::kMaxCheck][kKeyLen];
};

// An asker waits for its job: the caps thread readies it when the job is done, or the deadline
// passes first (then the job is left to the caps thread).
class RedisCaps::JobWait : public BlockingOp<JobWait> {
 public:
  struct Result {
    bool done;  // the job is done and still the asker's (it frees it); else it timed out
    int error;
  };
  JobWait(RedisCaps* caps, int job, std::int64_t timeout_ns)
      : BlockingOp(std::source_location::current()), caps_(caps), job_(job), timeout_(timeout_ns > 0 ? timeout_ns : 1) {}
  ~JobWait() {
    if (waiting_) caps_->detach(job_);  // (the thread ended while it waited)
  }
  R attempt() {
    Job& j = caps_->jobs_[job_];
    if (j.state == Job::State::kDone) {
      j.waiter = nullptr;
      waiting_ = false;
      result_ = Result{true, j.error};
      return R::kDone;
    }
    if (timed_out_) {
      caps_->detach(job_);
      waiting_ = false;
      result_ = Result{false, ETIMEDOUT};
      return R::kDone;
    }
    j.waiter = &this_thread();
    j.waiter_slot = this_process().kernel_slot();
    waiting_ = true;
    return R::kWait;  // (no fd: the caps thread readies it, or the deadline passes)
  }
  std::int64_t timeout_ns() const { return timeout_; }
  bool timeout_is_retry() const { return true; }  // attempt() reports it
  void on_woken(const Block& b) { timed_out_ = timed_out_ || b.timed_out; }
  Result await_resume() const noexcept { return result_; }

 private:
  RedisCaps* caps_;
  int job_;
  std::int64_t timeout_;
  bool waiting_ = false;
  bool timed_out_ = false;
  Result result_{false, ETIMEDOUT};
};

// The caps thread waits for jobs (readied by enqueue; a 50 ms timeout so that it sees the kernel
// stopping).
class RedisCaps::IdleWait : public BlockingOp<IdleWait> {
 public:
  explicit IdleWait(RedisCaps* caps) : BlockingOp(std::source_location::current()), caps_(caps) {}
  ~IdleWait() {
    if (caps_->idle_ == me_ && me_ != nullptr) caps_->idle_ = nullptr;
  }
  R attempt() {
    if (caps_->queue_len_ > 0 || timed_out_ || Kernel::current()->stopping()) {
      caps_->idle_ = nullptr;
      return R::kDone;
    }
    me_ = &this_thread();
    caps_->idle_ = me_;
    caps_->idle_slot_ = this_process().kernel_slot();
    return R::kWait;
  }
  std::int64_t timeout_ns() const { return 50'000'000; }
  bool timeout_is_retry() const { return true; }
  void on_woken(const Block& b) { timed_out_ = timed_out_ || b.timed_out; }
  void await_resume() const noexcept {}

 private:
  RedisCaps* caps_;
  ThreadState* me_ = nullptr;
  bool timed_out_ = false;
};

RedisCaps::RedisCaps(FreqCaps* owner_side, const Options& options, const CapsMetrics* metrics)
    : caps_(owner_side), options_(options), metrics_(metrics), jobs_(std::make_unique<Job[]>(kMaxJobs)) {
  for (int i = static_cast<int>(kMaxJobs) - 1; i >= 0; --i) free_job(i);
  campaign_keys_.assign(options.max_slots, 0);
  windows_.assign(options.max_slots, 0);
}

RedisCaps::~RedisCaps() = default;

std::size_t RedisCaps::write_key(std::uint64_t user, std::uint64_t campaign_key, char* out) {
  // "cap:{<user, 16 hex>}:<campaign, 16 hex>" (per check: no snprintf)
  char* p = out;
  std::memcpy(p, "cap:{", 5);
  p += 5;
  p += put_hex64(p, user);
  std::memcpy(p, "}:", 2);
  p += 2;
  p += put_hex64(p, campaign_key);
  *p = '\0';
  MNV_ASSERT(static_cast<std::size_t>(p - out) < kKeyLen);
  return static_cast<std::size_t>(p - out);
}

bool RedisCaps::start(Kernel& kernel, std::string* error) {
  pool_ = std::make_unique<HeapPool>(64, 1);
  if (!pool_->ok() || kernel.start(*pool_, main, this) == nullptr) {
    *error = "rtb: the frequency caps' Redis thread could not start";
    return false;
  }
  running_ = true;
  return true;
}

void RedisCaps::track(std::uint32_t slot, std::uint64_t campaign_key, std::uint32_t window_s) {
  MNV_ASSERT(slot < campaign_keys_.size());
  campaign_keys_[slot] = campaign_key;
  windows_[slot] = window_s;
}

void RedisCaps::count(metrics::Counter c, std::uint64_t n) const {
  if (metrics_->on && n > 0) Shard::current()->metrics().add(c, n);
}

int RedisCaps::take_job() {
  if (free_ < 0) return -1;
  int j = free_;
  Job& job = jobs_[j];
  free_ = job.next;
  job = Job{};
  return j;
}

void RedisCaps::free_job(int j) {
  Job& job = jobs_[j];
  job.state = Job::State::kFree;
  job.waiter = nullptr;
  job.next = free_;
  free_ = j;
}

void RedisCaps::enqueue(int j) {
  MNV_ASSERT(queue_len_ < kMaxJobs);
  jobs_[j].state = Job::State::kQueued;
  queue_[(queue_head_ + queue_len_) % kMaxJobs] = j;
  ++queue_len_;
  if (ThreadState* t = idle_; t != nullptr && t->status == ThreadState::Status::kBlocked) {
    idle_ = nullptr;
    Kernel::current()->ready_thread(idle_slot_, t);
  }
}

void RedisCaps::detach(int j) {
  Job& job = jobs_[j];
  job.waiter = nullptr;
  if (job.state == Job::State::kDone) {
    free_job(j);
  } else {
    job.abandoned = true;
  }
}

void RedisCaps::finish(int j, int error) {
  Job& job = jobs_[j];
  job.state = Job::State::kDone;
  job.error = error;
  bool read = job.kind == Job::Kind::kRead;
  count(error == 0 ? (read ? metrics_->reads_ok : metrics_->incrs_ok) : (read ? metrics_->reads_failed : metrics_->incrs_failed));
  if (error == 0) {  // the counts to the owner's cache, fresh
    Shard* shard = Shard::current();
    std::size_t owner = cap_owner(job.user, shard->set().size());
    std::int64_t now_ms = monotonic_ns() / 1'000'000;
    for (int m = 0; m < job.n; ++m) {
      FreqCaps::Fill f{job.user, job.slot[m], job.window[m], job.count[m], job.asked_ms};
      if (owner == shard->index()) {
        caps_->fill(f, now_ms);
      } else {
        shard->post(owner, kCapFill, &f, sizeof f);  // (a full ring: the next read fills it)
      }
    }
  }
  if (job.abandoned) {
    free_job(j);
    return;
  }
  if (ThreadState* t = job.waiter; t != nullptr && t->status == ThreadState::Status::kBlocked) {
    job.waiter = nullptr;
    Kernel::current()->ready_thread(job.waiter_slot, t);
  }
}

namespace {

// A counter's value from an MGET element: nil is 0.
bool parse_count(const redis::Reply& r, std::uint32_t* out) {
  if (r.is_null()) {
    *out = 0;
    return true;
  }
  if (r.type() != redis::Type::kBulkString) return false;
  ByteSpans s = r.str();
  if (s.size() == 0 || s.size() > 9) return false;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(ch - '0');
  }
  *out = v;
  return true;
}

}  // namespace

Thread RedisCaps::main(RedisCaps* self) {
  redis::Connection c(fleet_connection_options(self->options_.call_timeout_ns));
  c.set_address(reinterpret_cast<const sockaddr*>(&self->options_.redis), sizeof self->options_.redis);
  const CapsMetrics* m = self->metrics_->on ? self->metrics_ : nullptr;
  const metrics::ShardCells* cells = m != nullptr ? &Shard::current()->metrics() : nullptr;
  std::size_t shard = Shard::current()->index();
  Kernel* k = Kernel::current();
  int last_error = 0;
  int batch[kMaxBatch];
  while (!k->stopping()) {
    if (self->queue_len_ == 0) {
      co_await IdleWait(self);
      continue;
    }
    std::size_t n = 0;
    while (self->queue_len_ > 0 && n < kMaxBatch) {
      batch[n++] = self->queue_[self->queue_head_];
      self->queue_head_ = (self->queue_head_ + 1) % kMaxJobs;
      --self->queue_len_;
    }
    // Every job's commands into the send ring, then every reply: one write, one pipeline.
    for (std::size_t i = 0; i < n; ++i) {
      Job& j = self->jobs_[batch[i]];
      j.state = Job::State::kSent;
      j.sent_ns = monotonic_ns();
      j.asked_ms = j.sent_ns / 1'000'000;
      int e = 0;
      if (j.kind == Job::Kind::kRead) {
        std::string_view argv[1 + FreqCaps::kMaxCheck];
        argv[0] = "MGET";
        for (int x = 0; x < j.n; ++x) argv[1 + x] = std::string_view(j.keys[x], j.key_len[x]);
        e = co_await c.send(std::span<const std::string_view>(argv, static_cast<std::size_t>(1 + j.n)));
        if (e == 0) j.cmds_sent = 1;
      } else {
        std::string_view key(j.keys[0], j.key_len[0]);
        e = co_await c.send_args("INCR", key);
        if (e == 0) {
          j.cmds_sent = 1;
          redis::Int window(j.window[0]);
          e = co_await c.send_args("EXPIRE", key, window, "NX");
          if (e == 0) j.cmds_sent = 2;
        }
      }
      j.error = e;
    }
    for (std::size_t i = 0; i < n; ++i) {
      Job& j = self->jobs_[batch[i]];
      for (int x = 0; x < j.cmds_sent; ++x) {
        redis::Reply r;
        int e = co_await c.receive(&r);
        if (e != 0 || j.error != 0) {
          if (j.error == 0) j.error = e;
          continue;
        }
        if (r.is_error()) {
          j.error = EPROTO;
        } else if (x == 0 && j.kind == Job::Kind::kIncr) {
          if (r.type() != redis::Type::kInteger || r.integer() < 0) {
            j.error = EPROTO;
          } else {
            j.count[0] = r.integer() > 0xffffffffll ? 0xffffffffu : static_cast<std::uint32_t>(r.integer());
          }
        } else if (x == 0) {
          if (r.type() != redis::Type::kArray || r.size() != static_cast<std::size_t>(j.n)) {
            j.error = EPROTO;
          } else {
            for (int y = 0; y < j.n && j.error == 0; ++y) {
              if (!parse_count(r[static_cast<std::size_t>(y)], &j.count[y])) j.error = EPROTO;
            }
          }
        }
      }
    }
    std::int64_t now = monotonic_ns();
    int batch_error = 0;
    for (std::size_t i = 0; i < n; ++i) {
      Job& j = self->jobs_[batch[i]];
      if (cells != nullptr && j.error == 0) cells->record(m->latency, static_cast<std::uint64_t>(now - j.sent_ns));
      if (j.error != 0) batch_error = j.error;
      self->finish(batch[i], j.error);
    }
    if (cells != nullptr) cells->set(m->up, batch_error == 0 ? 1 : 0);
    if (batch_error != 0 && last_error == 0) {
      std::fprintf(stderr, "rtb: shard %zu: frequency caps: Redis: %s (checks fall back to the owner's cache and "
                   "[rtb] cap_timeout; wins are counted locally; retrying)\n", shard,
                   batch_error == EPROTO ? "a reply that is not a counter (an error reply, or not a number)" : c.why());
    } else if (batch_error == 0 && last_error != 0) {
      std::fprintf(stderr, "rtb: shard %zu: frequency caps: Redis answers again\n", shard);
    }
    last_error = batch_error;
  }
  // Stopping: what is still queued fails at once (its askers fall back).
  self->running_ = false;
  while (self->queue_len_ > 0) {
    int j = self->queue_[self->queue_head_];
    self->queue_head_ = (self->queue_head_ + 1) % kMaxJobs;
    --self->queue_len_;
    self->finish(j, ECANCELED);
  }
  co_return;
}

Task<CapAnswer> RedisCaps::check(const FreqCaps::Query& q, std::int64_t deadline_ns) {
  CapAnswer a = co_await ask_caps(*caps_, q, deadline_ns);
  if (a.error != 0) co_return a;
  std::uint32_t asked = 0;
  for (int i = 0; i < FreqCaps::kMaxCheck; ++i) {
    if (q.items[i].slot != ~0u) asked |= 1u << i;
  }
  std::uint32_t stale = asked & ~a.fresh;
  count(metrics_->hits, static_cast<std::uint64_t>(__builtin_popcount(asked & a.fresh)));
  count(metrics_->misses, static_cast<std::uint64_t>(__builtin_popcount(stale)));
  if (stale == 0) co_return a;
  std::int64_t left = deadline_ns - monotonic_ns();
  int j = left > 0 && running_ ? take_job() : -1;
  if (j < 0) count(metrics_->reads_failed);
  if (j >= 0) {
    Job& job = jobs_[j];
    job.kind = Job::Kind::kRead;
    job.user = q.user;
    for (int i = 0; i < FreqCaps::kMaxCheck; ++i) {
      if ((stale & (1u << i)) == 0) continue;
      std::uint32_t slot = q.items[i].slot;
      MNV_ASSERT(slot < campaign_keys_.size());
      int x = job.n++;
      job.slot[x] = slot;
      job.window[x] = windows_[slot];
      job.item[x] = static_cast<std::uint8_t>(i);
      job.key_len[x] = static_cast<std::uint8_t>(write_key(q.user, campaign_keys_[slot], job.keys[x]));
    }
    enqueue(j);
    JobWait::Result w = co_await JobWait(this, j, left);
    if (w.done) {
      if (w.error == 0) {
        Job& done = jobs_[j];
        for (int x = 0; x < done.n; ++x) {
          std::uint32_t bit = 1u << done.item[x];
          if (done.count[x] < q.items[done.item[x]].limit) {
            a.allowed |= bit;
          } else {
            a.allowed &= ~bit;
          }
          a.known |= bit;
          a.fresh |= bit;
        }
        stale = 0;
      }
      free_job(j);
    }
  }
  // Redis did not answer in time: a cached count decides; an item with none is unknown.
  count(metrics_->fallback_cache, static_cast<std::uint64_t>(__builtin_popcount(stale & a.known)));
  count(metrics_->fallback_none, static_cast<std::uint64_t>(__builtin_popcount(stale & ~a.known)));
  a.unknown = stale & ~a.known;
  co_return a;
}

Task<> RedisCaps::record(const FreqCaps::Record& r) {
  int j = running_ && r.slot < campaign_keys_.size() ? take_job() : -1;
  if (j < 0) count(metrics_->incrs_failed);
  if (j >= 0) {
    Job& job = jobs_[j];
    job.kind = Job::Kind::kIncr;
    job.user = r.user;
    job.n = 1;
    job.slot[0] = r.slot;
    job.window[0] = r.window_s;
    job.key_len[0] = static_cast<std::uint8_t>(write_key(r.user, campaign_keys_[r.slot], job.keys[0]));
    enqueue(j);
    JobWait::Result w = co_await JobWait(this, j, kRecordWaitNs);
    if (w.done) {
      int e = w.error;
      free_job(j);
      if (e == 0) co_return;
    }
  }
  record_at_owner(*caps_, r);  // Redis could not count it (in time): the owner's table does
}

}  // namespace mnv::rtb
